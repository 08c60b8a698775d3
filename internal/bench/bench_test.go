package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var small = Spec{Hosts: 40, ReconcilersPerHost: 3, Workloads: 10, Environments: 4, Regions: 2, History: 3, Workers: 2, Batch: 50}

// The generator builds the fleet its spec describes, and replays cost no
// writes.
func TestGenerate(t *testing.T) {
	ctx := context.Background()
	st := testenv.NewStore(t, "sqlite")
	ing := ingest.New(st)
	res, err := Generate(ctx, ing, small, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := small.Hosts * small.ReconcilersPerHost * small.History * 2; res.Reports != want {
		t.Errorf("%d reports, want %d", res.Reports, want)
	}
	c, err := Counts(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if c["hosts"] != small.Hosts || c["reconcilers"] != small.Hosts*small.ReconcilersPerHost ||
		c["deployments"] != small.Hosts*small.ReconcilersPerHost*small.History ||
		c["targets"] != small.Workloads*small.Environments*small.Regions {
		t.Errorf("fleet %v", c)
	}
	if _, changed, err := Unchanged(ctx, ing, small, 200, 1); err != nil || changed != 0 {
		t.Errorf("unchanged replays wrote %d times (%v)", changed, err)
	}
	checkConverged(t, st)
	ts, err := Queries(ctx, reports.New(st), small, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range ts {
		if q.Rows == 0 && !strings.HasPrefix(q.Name, "drift (") { // a converged fleet has no drift
			t.Errorf("%s returned no rows on a full fleet", q.Name)
		}
	}
	// Smaller pages: no list report shows more rows than a page.
	ts, err = QueriesFor(ctx, reports.New(st), small, 1, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range ts {
		if q.Rows > 5 && q.Name != "headline" && q.Name != "rollout gate" {
			t.Errorf("%s: %d rows in pages of 5", q.Name, q.Rows)
		}
	}
	mc, err := Metrics(ctx, reports.New(st), 3)
	if err != nil {
		t.Fatal(err)
	}
	// 13 state gauges per target: hosts, at scheduled version, 4
	// statuses, 5 drift kinds, rollouts in progress and their age.
	if targets := small.Workloads * small.Environments * small.Regions; mc.StateSeries != 13*targets {
		t.Errorf("%d state series for %d targets, want %d", mc.StateSeries, targets, 13*targets)
	}
}

// checkConverged fails t if any host of the fleet in st drifts.
func checkConverged(t *testing.T, st *store.Store) {
	t.Helper()
	drift, _, err := reports.New(st).Drift(context.Background(), reports.Filter{}, 0, reports.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drift {
		if d.Kind != reports.DriftNoHosts {
			t.Errorf("a converged fleet drifts: %+v", d)
		}
	}
}

// BenchmarkScrape times a scrape of /metrics (the state gauges already
// computed) on a fleet of 200 targets.
func BenchmarkScrape(b *testing.B) {
	ctx := context.Background()
	st := testenv.NewStore(b, "sqlite")
	spec := Spec{Hosts: 400, ReconcilersPerHost: 5, Workloads: 25, Environments: 4, Regions: 2, History: 2, Workers: 2, Batch: 200}
	if _, err := Generate(ctx, ingest.New(st), spec, nil); err != nil {
		b.Fatal(err)
	}
	reg := metrics.NewRegistry()
	m := metrics.New(reg)
	if err := metrics.NewState(m, reports.New(st), metrics.StateOptions{}).Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	h := m.Handler()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkReports times each report and the gate on a small fleet, on
// both engines. `tidemark bench` does the same at any scale.
func BenchmarkReports(b *testing.B) {
	for _, engine := range testenv.Engines {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			st := testenv.NewStore(b, engine)
			spec := Spec{Hosts: 400, ReconcilersPerHost: 5, Workloads: 50, Environments: 4, Regions: 2, History: 3, Workers: 4, Batch: 200}
			if _, err := Generate(ctx, ingest.New(st), spec, nil); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := Queries(ctx, reports.New(st), spec, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Percentiles are by nearest rank: the 99th of 20 runs is the slowest, of
// 200 runs the second slowest; the 50th of 20 is the 10th.
func TestPercentile(t *testing.T) {
	runs := func(n int) []time.Duration {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = time.Duration(i+1) * time.Millisecond
		}
		return ds
	}
	for _, c := range []struct {
		n, p int
		want time.Duration
	}{
		{20, 99, 20 * time.Millisecond}, {20, 50, 10 * time.Millisecond}, {200, 99, 198 * time.Millisecond},
		{100, 99, 99 * time.Millisecond}, {1, 99, time.Millisecond}, {1, 50, time.Millisecond},
	} {
		if got := percentile(runs(c.n), c.p); got != c.want {
			t.Errorf("percentile of %d runs, p%d: %v, want %v", c.n, c.p, got, c.want)
		}
	}
}
