package prometheus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	promsrc "github.com/tidemark-dev/tidemark/internal/sources/prometheus"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// queryAPI answers /api/v1/query as Prometheus does, with the
// flux_resource_info series of a fleet of clusters × Kustomizations (one
// GitRepository per cluster), at one of two revisions.
func queryAPI(b *testing.B, clusters, perCluster int) (*httptest.Server, *atomic.Int64) {
	var round atomic.Int64
	bodies := make([][]byte, 2)
	for r := range bodies {
		var result []map[string]any
		for c := range clusters {
			cluster := fmt.Sprintf("aks-%04d", c)
			result = append(result, map[string]any{"metric": map[string]string{"__name__": "flux_resource_info", "cluster": cluster,
				"kind": "GitRepository", "name": "flux-system", "exported_namespace": "flux-system", "ready": "True",
				"url": gitops, "ref": "main"}, "value": []any{1.7e9, "1"}})
			for k := range perCluster {
				result = append(result, map[string]any{"metric": map[string]string{"__name__": "flux_resource_info", "cluster": cluster,
					"kind": "Kustomization", "name": fmt.Sprintf("w%d", k), "exported_namespace": "flux-system", "ready": "True",
					"reason": "ReconciliationSucceeded", "suspended": "False", "revision": "main@sha1:" + sha(10+r),
					"source_name": "flux-system", "path": fmt.Sprintf("./w%d", k)}, "value": []any{1.7e9, "1"}})
			}
		}
		body, err := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
		if err != nil {
			b.Fatal(err)
		}
		bodies[r] = body
	}
	empty := []byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.Form.Get("query"), promsrc.MetricFluxResourceInfo) {
			w.Write(bodies[round.Load()%2])
			return
		}
		w.Write(empty)
	}))
	b.Cleanup(srv.Close)
	return srv, &round
}

// BenchmarkPoll: one poll of 1,000 clusters × 10 Kustomizations (11,000
// series with their GitRepositories), in ms per 1,000 series. "unchanged"
// is the steady state: the series are read, joined and compared, nothing
// is written, and the check for vanished reconcilers runs; "changed" has
// every Kustomization at a new revision, written through ingest's batch
// path.
func BenchmarkPoll(b *testing.B) {
	const clusters, perCluster = 1000, 10
	series := float64(clusters * (perCluster + 1))
	for _, engine := range testenv.Engines {
		for _, mode := range []string{"unchanged", "changed"} {
			b.Run(engine+"/"+mode, func(b *testing.B) {
				srv, round := queryAPI(b, clusters, perCluster)
				st := testenv.NewStore(b, engine)
				// The clock moves a minute per poll: past the grace
				// period, every poll checks for vanished reconcilers.
				var now atomic.Int64
				start := time.Now()
				clock := func() time.Time { return start.Add(time.Duration(now.Load()) * time.Minute) }
				cfg, err := promsrc.ParseConfig([]byte(`sources: [{name: bench, url: "`+srv.URL+`", retireAfter: 2m, resync: 1000h}]`), "bench")
				if err != nil {
					b.Fatal(err)
				}
				p, err := promsrc.NewPoller(cfg.Sources[0], ingest.New(st), promsrc.Options{Clock: clock})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				for range 4 { // register the fleet, see both revisions, pass the grace period
					round.Add(1)
					now.Add(1)
					if _, err := p.Poll(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for range b.N {
					if mode == "changed" {
						round.Add(1)
					}
					now.Add(1)
					res, err := p.Poll(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if want := map[string]int{"unchanged": 0, "changed": clusters * perCluster}[mode]; res.Applied != want {
						b.Fatalf("%s poll applied %d reports, want %d", mode, res.Applied, want)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/(series/1000), "ms/1000series")
			})
		}
	}
}
