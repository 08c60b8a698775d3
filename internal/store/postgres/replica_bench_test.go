package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/bench"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// BenchmarkReplica ingests a fleet (1,000 hosts, 10,000 reconcilers) into
// a primary with a streaming replica, reporting the largest replica lag
// measured meanwhile; then reads Host State (100-row pages) from the
// replica and, for comparison, from the primary. Primary and replica share
// this machine's cores, so the figures compare costs, not scale-out.
func BenchmarkReplica(b *testing.B) {
	ctx := context.Background()
	pg := testenv.SharedPostgres(b)
	url := pg.NewDatabase(b)
	primaryOnly := testenv.OpenStore(b, "postgres", url)
	replica := pg.StartReplica(b)
	d, err := postgres.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	rep, err := postgres.OpenReplica(replica.DatabaseURL(url))
	if err != nil {
		b.Fatal(err)
	}
	replicated, err := store.New(ctx, d, store.WithReplicas(rep), store.WithReplicaCheckInterval(100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { replicated.Close() })

	var maxLag time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if s := replicated.Replicas()[0]; s.LagKnown {
					maxLag = max(maxLag, s.Lag)
				}
			}
		}
	})
	spec := bench.Spec{Hosts: 1000, ReconcilersPerHost: 10, Workloads: 100, Environments: 4, Regions: 2, History: 2, Workers: 2, Batch: 500}
	res, err := bench.Generate(ctx, ingest.New(replicated), spec, nil)
	close(stop)
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("ingest: %d reports at %.0f/s; largest replica lag measured: %s", res.Reports, res.ReportsPerSecond, maxLag.Round(time.Millisecond))
	replica.WaitReplayed(b)

	for _, c := range []struct {
		name string
		st   *store.Store
	}{{"replica", replicated}, {"primary", primaryOnly}} {
		b.Run("host-state/"+c.name, func(b *testing.B) {
			rs := reports.New(c.st)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rows, _, err := rs.HostState(ctx, reports.Filter{Environment: "prod"}, reports.Page{Limit: 100})
					if err != nil || len(rows) != 100 {
						b.Errorf("Host State: %d rows, %v", len(rows), err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
	if s := replicated.Replicas()[0]; s.Reads == 0 || !s.Healthy {
		b.Errorf("replica %+v: want healthy, with the reads it served", s)
	}
}
