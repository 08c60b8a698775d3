package reports_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// TestTimeTravelPartitionDropped: time travel names the history's monthly
// partitions it probes. When retention drops one of them after the read
// listed them, the read fails on the missing table, is told apart from
// other failures, and is answered by reading again.
func TestTimeTravelPartitionDropped(t *testing.T) {
	st := testenv.NewStore(t, "postgres")
	month := func(n int) time.Time {
		now := time.Now().UTC()
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, n, 0)
	}
	// Three hosts succeed six months ago; one fails two months ago. Four
	// months ago, that one's state is in the history, three months back.
	clock := month(-6).Add(24 * time.Hour)
	ing := ingest.New(st, ingest.WithClock(func() time.Time { return clock }))
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "prod/web")
	if err != nil {
		t.Fatal(err)
	}
	report := func(host string, status model.Status) {
		t.Helper()
		if _, err := ing.ApplyReport(ctx, model.Report{Host: host, Reconciler: "flux-system", ReconcilerType: "flux",
			Endpoint: ep, Commit: fmt.Sprintf("%040x", 1), Status: status, ObservedAt: clock}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"aks-0", "aks-1", "aks-2"} {
		report(h, model.StatusSuccess)
	}
	clock = month(-2).Add(24 * time.Hour)
	report("aks-0", model.StatusFailure)
	if _, err := st.MaintainHistory(ctx, store.HistoryPolicy{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for n := -5; n < -2; n++ {
		if _, err := st.Primary().Exec(ctx, `SELECT deployment_history_add_partition($1)`, month(n)); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := store.Collect(ctx, st.Read(), `SELECT id FROM reconcilers ORDER BY id`, nil, func(r store.Row) (int64, error) {
		var id int64
		err := r.Scan(&id)
		return id, err
	})
	if err != nil {
		t.Fatal(err)
	}

	at := month(-4).Add(12 * time.Hour)
	dropped := fmt.Sprintf("deployment_history_p%04d_%02d", month(-5).Year(), int(month(-5).Month()))
	first, states, err := reports.StatesAfterDrop(ctx, reports.New(st), ids, at, func() error {
		_, err := st.Primary().Exec(ctx, `DROP TABLE `+dropped)
		return err
	})
	if first == nil || !st.PartitionDropped(first) {
		t.Errorf("the read over the dropped %s: %v; want a dropped partition", dropped, first)
	}
	if err != nil || states != 3 {
		t.Errorf("read again: %d states, %v; want all 3 hosts' states", states, err)
	}
	if st.PartitionDropped(fmt.Errorf("another failure")) {
		t.Error("any error counts as a dropped partition")
	}
}
