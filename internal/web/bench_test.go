package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/bench"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// BenchmarkPages measures every page's HTML on a generated fleet on
// PostgreSQL: time per request (p50, p99) and size. The fleet's size comes
// from TIDEMARK_UI_BENCH_HOSTS (default 200; the README's figures use
// 2000), with 10 reconcilers a host and 5 commits of history:
//
//	TIDEMARK_UI_BENCH_HOSTS=2000 go test -run '^$' -bench Pages -benchtime 1x ./internal/web/
func BenchmarkPages(b *testing.B) {
	hosts := 200
	if v := os.Getenv("TIDEMARK_UI_BENCH_HOSTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 8 {
			b.Fatalf("TIDEMARK_UI_BENCH_HOSTS=%q: give a number of hosts, at least 8", v)
		}
		hosts = n
	}
	st := testenv.NewStore(b, "postgres")
	spec := bench.Spec{Hosts: hosts, ReconcilersPerHost: 10, Workloads: max(20, hosts/10), Environments: 4, Regions: 2, History: 5, Workers: 2, Batch: 500}
	start := time.Now()
	res, err := bench.Generate(ctx, ingest.New(st), spec, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("fleet: %d hosts, %d reconcilers, %d descriptors, %d reports, generated in %v",
		spec.Hosts, spec.Hosts*spec.ReconcilersPerHost, res.Descriptors, res.Reports, time.Since(start).Round(time.Second))
	// What a running hub has a minute after such a load: the statistics
	// of the small tables refreshed (autovacuum analyzes the large ones).
	if _, err := st.RefreshStatistics(ctx); err != nil {
		b.Fatal(err)
	}
	srv, rep := hub(b, st, nil)
	// The middle of the status history (not of the generation, whose start
	// is descriptors): half of every host's changes had happened, so time
	// travel reads as much history as it would on a fleet that has aged.
	var mid time.Time
	if err := st.Read().QueryRow(ctx, `SELECT min(changed_at) + (max(changed_at) - min(changed_at)) / 2 FROM deployment_history`).Scan(&mid); err != nil {
		b.Fatal(err)
	}
	at := url.QueryEscape(mid.UTC().Format(time.RFC3339))
	_ = rep
	pages := []string{
		"/",
		"/environments",
		"/environments?environment=prod",
		"/environments?environment=prod&at=" + at,
		"/environments?at=" + at,
		"/hosts",
		"/hosts?environment=prod&status=success",
		"/hosts?environment=prod&at=" + at,
		"/hosts/aks-prod-00003",
		"/history",
		"/history?workload=workload-001",
		"/discrepancies",
		"/drift",
		"/dora",
		"/rollout?workload=workload-001&environment=prod&target=region-0&version=1.4.0",
		"/search?q=00000001",
		"/search?q=1.4.0",
		"/compare?from=staging&to=prod",
	}
	type result struct {
		page      string
		p50, p99  time.Duration
		bytes     int
		overLimit bool
	}
	var results []result
	const runs = 20
	for range b.N {
		results = results[:0]
		for _, p := range pages {
			var times []time.Duration
			size := 0
			for range runs {
				t0 := time.Now()
				resp, err := http.Get(srv.URL + p)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				times = append(times, time.Since(t0))
				if resp.StatusCode != 200 {
					b.Fatalf("GET %s: %d\n%.400s", p, resp.StatusCode, body)
				}
				size = len(body)
			}
			slices.Sort(times)
			r := result{page: p, p50: times[len(times)/2], p99: times[(len(times)*99+99)/100-1], bytes: size}
			r.overLimit = r.p99 > 200*time.Millisecond || r.bytes > 1<<20
			results = append(results, r)
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| page | p50 | p99 | bytes |\n|---|---:|---:|---:|\n")
	var worst time.Duration
	for _, r := range results {
		worst = max(worst, r.p99)
		mark := ""
		if r.overLimit {
			mark = " (over 200 ms or 1 MB)"
		}
		fmt.Fprintf(&sb, "| `%s` | %.1f ms | %.1f ms | %d%s |\n", r.page, ms(r.p50), ms(r.p99), r.bytes, mark)
	}
	b.ReportMetric(ms(worst), "ms-p99-worst-page")
	// Printed whole: the testing package cuts a benchmark's log short.
	fmt.Println(sb.String())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
