package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// BenchmarkSeriesRebuild rebuilds the series of one endpoint of 60
// reconcilers with 100 status changes each (the 10,000-host bench fleet's
// endpoints have 62 and ~20): whole (after a retirement, a move,
// retention), and from a late report's time, a minute before the last
// changes (what a late report costs the background rebuild).
func BenchmarkSeriesRebuild(b *testing.B) {
	const reconcilers, changes = 60, 100
	ctx := context.Background()
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "apps")
	if err != nil {
		b.Fatal(err)
	}
	statuses := []model.Status{model.StatusInProgress, model.StatusSuccess, model.StatusFailure}
	for _, engine := range testenv.Engines {
		st := testenv.NewStore(b, engine)
		ing := ingest.New(st)
		start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		at := func(i int) time.Time { return start.Add(time.Duration(i) * time.Minute) }
		for i := range changes {
			batch := make([]model.Report, reconcilers)
			for r := range batch {
				batch[r] = model.Report{Host: fmt.Sprintf("host-%02d", r), Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
					Commit: fmt.Sprintf("%040x", i/2+1), Status: statuses[(i+r)%3], ObservedAt: at(i).Add(time.Duration(r) * time.Second)}
			}
			if _, err := ing.ApplyReports(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		var id int64
		if err := st.Read().QueryRow(ctx, `SELECT endpoint_id FROM reconcilers LIMIT 1`).Scan(&id); err != nil {
			b.Fatal(err)
		}
		for _, mark := range []struct {
			name  string
			since *time.Time
		}{{"whole", nil}, {"late", new(at(changes - 2))}} {
			b.Run(engine+"/"+mark.name, func(b *testing.B) {
				for b.Loop() {
					if _, err := st.Primary().Exec(ctx, `INSERT INTO series_dirty (endpoint_id, since) VALUES ($1, $2)`, id, mark.since); err != nil {
						b.Fatal(err)
					}
					if n, err := st.RebuildSeries(ctx, 1); err != nil || n != 1 {
						b.Fatalf("rebuilt %d: %v", n, err)
					}
				}
			})
		}
		if diffs, err := store.Check(ctx, st.Read(), 5); err != nil || len(diffs) > 0 {
			b.Fatalf("after the rebuilds: %v %v", diffs, err)
		}
	}
}
