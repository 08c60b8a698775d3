package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// TestFirstSuccessMigration upgrades a store written before deployments
// kept their first success: the migration takes each one from the status
// history, the maintained outcomes are rebuilt to count each host's first
// success, and History's "all succeeded" no longer follows a host that
// applied the commit again.
func TestFirstSuccessMigration(t *testing.T) {
	ctx := context.Background()
	for _, engine := range testenv.Engines {
		t.Run(engine, func(t *testing.T) {
			st, u := newUpgrade(t, engine, 18, 38)
			base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			ing := ingest.New(st, ingest.WithClock(func() time.Time { return base.Add(3 * time.Hour) }))
			d := model.Descriptor{Workspace: "acme", Application: "shop", Workload: "web", Environment: "prod", Target: "web-prod",
				Manifests: endpoint(t), Version: "1.0.0", Build: "1", Commit: sha(1), AssignedAt: base}
			if _, err := ing.ApplyDescriptor(ctx, d); err != nil {
				t.Fatal(err)
			}
			report := func(host string, status model.Status, after time.Duration) {
				t.Helper()
				r := model.Report{Host: host, Reconciler: "flux-system", ReconcilerType: "flux", Endpoint: endpoint(t),
					Commit: sha(1), Status: status, ObservedAt: base.Add(after)}
				if _, err := ing.ApplyReport(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			report("aks-1", model.StatusSuccess, 10*time.Minute)
			report("aks-2", model.StatusSuccess, 20*time.Minute)
			report("aks-2", model.StatusInProgress, 2*time.Hour) // applies it again
			report("aks-2", model.StatusSuccess, 2*time.Hour+time.Minute)

			// The store as it was before the migration: no first success
			// anywhere, outcomes counting the latest success run.
			st = u.reopen(t, st,
				`ALTER TABLE deployments DROP COLUMN first_success_at`,
				`ALTER TABLE reconciler_assignments DROP COLUMN first_success_at`,
				`UPDATE assignment_outcomes SET last_success_at = (SELECT max(status_since) FROM deployments)`,
				`UPDATE maintained_state SET built_version = 1`)

			want := map[string]time.Time{"aks-1": base.Add(10 * time.Minute), "aks-2": base.Add(20 * time.Minute)}
			rows, err := st.Read().Query(ctx, `SELECT h.name, d.first_success_at FROM deployments d
				JOIN reconcilers r ON r.id = d.reconciler_id JOIN hosts h ON h.id = r.host_id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var host string
				var first time.Time
				if err := rows.Scan(&host, &first); err != nil {
					t.Fatal(err)
				}
				if !first.Equal(want[host]) {
					t.Errorf("%s: first success %v, want %v", host, first.UTC(), want[host])
				}
			}
			rows.Close()
			hist, _, err := reports.New(st).History(ctx, reports.Filter{}, reports.Page{Limit: reports.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 1 || hist[0].AllSucceededAt == nil || !hist[0].AllSucceededAt.Equal(want["aks-2"]) {
				t.Errorf("history after the migration: %+v; want all succeeded at %v", hist, want["aks-2"])
			}
			if diffs, err := st.CheckMaintained(ctx, 10); err != nil || len(diffs) > 0 {
				t.Errorf("maintained state after the migration: %v %v", diffs, err)
			}
		})
	}
}
