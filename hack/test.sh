#!/usr/bin/env bash
# Runs every test. Tests start their own servers (PostgreSQL from the local
# binaries, kube-apiserver and etcd built from the Go module proxy and
# cached under .cache/); under CI=true a missing server fails a test
# instead of skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CI="${CI:-true}"
go vet ./...
# envtest's kube-apiserver, etcd and kubectl: built once (~6 min cold) and
# cached in .cache/; a plain assignment so that a failed build stops here.
KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(hack/envtest-assets.sh)}"
export KUBEBUILDER_ASSETS
# The OpenTelemetry Collector of the OTLP tests: built once (~70 s cold)
# with the collector builder and cached in .cache/.
TIDEMARK_OTELCOL="${TIDEMARK_OTELCOL:-$(hack/otelcol.sh)}"
export TIDEMARK_OTELCOL
# Fuzz seeds run as ordinary tests; a short fuzzing pass on each parser,
# bounded by executions (about 10 s each here) rather than by time: a time
# bound races Go 1.26's fuzzing coordinator (golang/go#75804) and fails
# at random with "context deadline exceeded".
go test -count=1 ./...
go test -run '^$' -fuzz FuzzNormalizeRevision -fuzztime 200000x ./internal/model/
go test -run '^$' -fuzz FuzzEndpointKey -fuzztime 200000x ./internal/model/
go test -run '^$' -fuzz FuzzMap -fuzztime 100000x ./internal/sources/arg/fluxconfig/
# The API: arbitrary push bodies and query strings on both engines.
go test -run '^$' -fuzz '^FuzzPush$' -fuzztime 200x ./internal/api/
go test -run '^$' -fuzz '^FuzzQuery$' -fuzztime 300x ./internal/api/
go test -run '^$' -fuzz '^FuzzBodyText$' -fuzztime 20000x ./internal/api/
go test -run '^$' -fuzz '^FuzzQueryParams$' -fuzztime 500x ./internal/api/
go test -run '^$' -fuzz FuzzParseSeriesGroups -fuzztime 20000x ./internal/store/
go test -run '^$' -fuzz FuzzMapRecord -fuzztime 2000x ./internal/sources/otlp/
