package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// TestResolutionVersionMigration upgrades a store written before each
// resolution kept its assignment's version: the migration copies it, the
// reports name the version each host runs, and the check finds nothing
// to report. A copy that is wrong afterwards is a difference the check
// reports and a rebuild repairs.
func TestResolutionVersionMigration(t *testing.T) {
	ctx := context.Background()
	for _, engine := range testenv.Engines {
		t.Run(engine, func(t *testing.T) {
			st, u := newUpgrade(t, engine, 21, 41)
			base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			ing := ingest.New(st, ingest.WithClock(func() time.Time { return base.Add(3 * time.Hour) }))
			for i, version := range []string{"1.0.0", "1.1.0"} {
				d := model.Descriptor{Workspace: "acme", Application: "shop", Workload: "web", Environment: "prod", Target: "web-prod",
					Manifests: endpoint(t), Version: version, Build: "1", Commit: sha(i + 1), AssignedAt: base.Add(time.Duration(i) * time.Hour)}
				if _, err := ing.ApplyDescriptor(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			for host, commit := range map[string]int{"aks-1": 1, "aks-2": 2} {
				r := model.Report{Host: host, Reconciler: "flux-system", ReconcilerType: "flux", Endpoint: endpoint(t),
					Commit: sha(commit), Status: model.StatusSuccess, ObservedAt: base.Add(2 * time.Hour)}
				if _, err := ing.ApplyReport(ctx, r); err != nil {
					t.Fatal(err)
				}
			}

			// The store as it was before the migration.
			undo := []string{`ALTER TABLE resolutions DROP COLUMN version_id`}
			if engine == "postgres" {
				// The reporting views read the column since migration 42:
				// they go with it, and 42 makes them again.
				undo = []string{`ALTER TABLE resolutions DROP COLUMN version_id CASCADE`, `DELETE FROM schema_migrations WHERE version = 42`}
			}
			st = u.reopen(t, st, undo...)
			var copied, resolved int
			if err := st.Read().QueryRow(ctx, `SELECT count(r.version_id), count(*) FROM resolutions r
				JOIN assignments a ON a.id = r.assignment_id WHERE r.version_id = a.version_id OR r.version_id IS NULL`).Scan(&copied, &resolved); err != nil {
				t.Fatal(err)
			}
			if resolved != 2 || copied != 2 {
				t.Errorf("after the migration: %d of %d resolutions carry their assignment's version, want 2 of 2", copied, resolved)
			}
			rows, _, err := reports.New(st).HostState(ctx, reports.Filter{}, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range rows {
				got[r.Host] = r.Version
			}
			if got["aks-1"] != "1.0.0" || got["aks-2"] != "1.1.0" {
				t.Errorf("Host State after the migration: versions %v", got)
			}
			if diffs, err := st.CheckMaintained(ctx, 10); err != nil || len(diffs) > 0 {
				t.Errorf("maintained state after the migration: %v %v", diffs, err)
			}

			// A wrong copy is found, and rebuilt.
			if _, err := st.Primary().Exec(ctx, `UPDATE resolutions SET version_id = NULL`); err != nil {
				t.Fatal(err)
			}
			diffs, err := st.CheckMaintained(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			wrong := 0
			for _, d := range diffs {
				if d.Table == "resolutions" && d.Side == "≠" {
					wrong++
				}
			}
			if wrong != 2 {
				t.Errorf("check after the copies were lost: %d resolutions reported, want 2 (%v)", wrong, diffs)
			}
			if err := st.Tx(ctx, func(q store.Querier) error { return store.Rebuild(ctx, q) }); err != nil {
				t.Fatal(err)
			}
			if diffs, err := st.CheckMaintained(ctx, 10); err != nil || len(diffs) > 0 {
				t.Errorf("maintained state after the rebuild: %v %v", diffs, err)
			}
		})
	}
}
