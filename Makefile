# Tidemark's single entry point for building, testing and generating.
GO       ?= go
BIN      ?= bin/tidemark
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/tidemark-dev/tidemark/internal/cli.Version=$(VERSION)

.PHONY: build test test-short generate lint bench fuzz run clean

build: ## Build bin/tidemark
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tidemark

run: ## Run the hub with demo data on :8080 (SQLite)
	$(GO) run ./cmd/tidemark serve --demo

test: ## Every test, on real PostgreSQL, kube-apiserver+etcd, helm (CI runs this)
	hack/test.sh

test-short: ## Unit tests only (no servers)
	$(GO) test -short ./...

generate: ## Regenerate deepcopy code and CRDs (controller-gen, pinned in go.mod)
	$(GO) generate ./...
	hack/sync-chart-crds.sh

lint: ## gofmt, go vet, staticcheck (pinned)
	@test -z "$$(gofmt -l . | grep -v '^hack/tools/')" || { gofmt -l . ; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

bench: ## Go benchmarks of ingest, reports, the series' rebuild and the telemetry sources (both stores)
	CI=true $(GO) test -run '^$$' -bench . -benchtime 3s ./internal/ingest/ ./internal/bench/
	CI=true $(GO) test -run '^$$' -bench SeriesRebuild -benchtime 2s ./internal/store/
	# the garbage collector's target tidemark serve runs at (internal/cli/gc.go)
	GOGC=200 CI=true $(GO) test -run '^$$' -bench OTLPHTTP -benchtime 200000x ./internal/sources/otlp/
	CI=true $(GO) test -run '^$$' -bench Poll -benchtime 10x ./internal/sources/prometheus/

fuzz: ## Fuzz the parsers (~30 s each; bounded by executions: see hack/test.sh)
	$(GO) test -run '^$$' -fuzz FuzzNormalizeRevision -fuzztime 600000x ./internal/model/
	$(GO) test -run '^$$' -fuzz FuzzEndpointKey -fuzztime 600000x ./internal/model/
	$(GO) test -run '^$$' -fuzz FuzzMap -fuzztime 300000x ./internal/sources/arg/fluxconfig/
	$(GO) test -run '^$$' -fuzz '^FuzzPush$$' -fuzztime 600x ./internal/api/
	$(GO) test -run '^$$' -fuzz '^FuzzQuery$$' -fuzztime 900x ./internal/api/
	$(GO) test -run '^$$' -fuzz '^FuzzBodyText$$' -fuzztime 60000x ./internal/api/
	$(GO) test -run '^$$' -fuzz '^FuzzQueryParams$$' -fuzztime 1500x ./internal/api/
	$(GO) test -run '^$$' -fuzz FuzzParseTime -fuzztime 20000x ./internal/reports/
	$(GO) test -run '^$$' -fuzz FuzzParseSeriesGroups -fuzztime 80000x ./internal/store/
	$(GO) test -run '^$$' -fuzz FuzzMapRecord -fuzztime 6000x ./internal/sources/otlp/

clean:
	rm -rf bin
