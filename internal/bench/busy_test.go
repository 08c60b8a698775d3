package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// The busy writer stores changes at about its rate while the reports are
// read, every one of them a status change in history, and leaves the
// fleet as converged as it found it.
func TestBusy(t *testing.T) {
	ctx := context.Background()
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ing := ingest.New(st)
		if _, err := Generate(ctx, ing, small, nil); err != nil {
			t.Fatal(err)
		}
		before, err := Counts(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		const rate = 2000
		busy := StartBusy(ctx, ing, small, rate)
		ts, err := Queries(ctx, reports.New(st), small, 2)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // at least a few batches, however fast the queries
		n, changed, perSecond, err := busy.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if n < 2*small.Batch || changed != n {
			t.Errorf("the writer stored %d reports, %d of them changes: want several batches, all changes", n, changed)
		}
		if perSecond > 1.2*rate {
			t.Errorf("the writer ran at %.0f reports/s, above its rate of %d", perSecond, rate)
		}
		after, err := Counts(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if got := after["deployment_history"] - before["deployment_history"]; got != n {
			t.Errorf("status history grew by %d rows for %d changes", got, n)
		}
		if after["deployments"] != before["deployments"] {
			t.Errorf("deployments %d → %d: the writer reports no new commit", before["deployments"], after["deployments"])
		}
		for _, q := range ts {
			if q.Rows == 0 && !strings.HasPrefix(q.Name, "drift (") {
				t.Errorf("%s returned no rows while ingest ran", q.Name)
			}
		}
		state, _, err := reports.New(st).EnvironmentState(ctx, reports.Filter{}, reports.Page{Limit: reports.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range state {
			if r.Hosts > 0 && r.Status != "success" {
				t.Errorf("after the writer stopped, %s/%s/%s: %d hosts %s, want all back at success", r.Workload, r.Environment, r.Target, r.Hosts, r.Status)
			}
		}
		checkConverged(t, st)
	})
}
