package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// tidemark check finds a maintained row that went wrong, names its table,
// exits 1, and --repair puts it right.
func TestCheckFindsAndRepairsDifferences(t *testing.T) {
	for _, engine := range testenv.Engines {
		t.Run(engine, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "tidemark.db")
			if engine == "postgres" {
				db = testenv.SharedPostgres(t).NewDatabase(t)
			}
			st := testenv.OpenStore(t, engine, db)
			ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "dev", "eu")
			if err != nil {
				t.Fatal(err)
			}
			sha := fleetSHA(1)
			now := time.Now().Add(-time.Hour)
			if _, err := ingest.New(st).Apply(context.Background(), ingest.Batch{
				Descriptors: []model.Descriptor{{Workspace: "acme", Application: "shop", Workload: "api", Environment: "dev", Target: "eu",
					Manifests: ep, Version: "1.0.0", Commit: sha, BuildCommit: fleetSHA(2), Source: model.WorkloadSource{Repo: "https://github.com/acme/api"}}},
				Reports: []model.Report{
					{Host: "dev-1", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep, Commit: sha, Status: model.StatusSuccess, ObservedAt: now},
					{Host: "dev-2", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep, Commit: sha, Status: model.StatusFailure, ObservedAt: now},
				},
			}); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, "", "check", "--database", db)
			if code != 0 || !strings.Contains(out, "matches a recomputation") {
				t.Fatalf("check of a consistent store: exit %d\n%s%s", code, out, errOut)
			}

			if _, err := st.Primary().Exec(context.Background(),
				`UPDATE endpoint_counts SET hosts = hosts + 1 WHERE endpoint_id = (SELECT min(endpoint_id) FROM endpoint_counts)`); err != nil {
				t.Fatal(err)
			}
			code, out, errOut = runCLI(t, "", "check", "--database", db)
			if code != 1 || !strings.Contains(out, "- endpoint_counts ") || !strings.Contains(out, "+ endpoint_counts ") ||
				!strings.Contains(errOut, "tidemark check --repair") {
				t.Fatalf("check of a wrong count: exit %d\n%s%s", code, out, errOut)
			}

			code, out, errOut = runCLI(t, "", "check", "--database", db, "--repair")
			if code != 0 || !strings.Contains(out, "rebuilt") || !strings.Contains(out, "matches a recomputation") {
				t.Fatalf("check --repair: exit %d\n%s%s", code, out, errOut)
			}

			// The endpoint's hosts over time, emptied: found, and rebuilt
			// from the history.
			if _, err := st.Primary().Exec(context.Background(), `UPDATE endpoint_snapshots SET groups = '[]'`); err != nil {
				t.Fatal(err)
			}
			code, out, errOut = runCLI(t, "", "check", "--database", db)
			if code != 1 || !strings.Contains(out, "+ endpoint_snapshots ") {
				t.Fatalf("check of an emptied series: exit %d\n%s%s", code, out, errOut)
			}
			code, out, errOut = runCLI(t, "", "check", "--database", db, "--repair")
			if code != 0 || !strings.Contains(out, "matches a recomputation") || strings.Contains(out, "wait for their rebuild") {
				t.Fatalf("check --repair of the series: exit %d\n%s%s", code, out, errOut)
			}

			// Marked from a time (a late report), an endpoint's snapshots
			// before it are still read, so still checked; those from the
			// mark on wait for their rebuild.
			var at time.Time // the snapshot's time: its reconcilers' registration
			if err := st.Primary().QueryRow(context.Background(), `UPDATE endpoint_snapshots SET groups = '[]' RETURNING at`).Scan(&at); err != nil {
				t.Fatal(err)
			}
			for _, m := range []struct {
				since time.Time
				code  int
			}{{at.Add(time.Minute), 1}, {at.Add(-time.Minute), 0}} {
				if _, err := st.Primary().Exec(context.Background(), `INSERT INTO series_dirty (endpoint_id, since) SELECT id, $1 FROM endpoints WHERE TRUE
					ON CONFLICT (endpoint_id) DO UPDATE SET since = excluded.since`, m.since); err != nil {
					t.Fatal(err)
				}
				code, out, errOut = runCLI(t, "", "check", "--database", db)
				if code != m.code || (code == 1) != strings.Contains(out, "+ endpoint_snapshots ") {
					t.Fatalf("check of an emptied series marked from %v after it: exit %d, want %d\n%s%s", m.since.Sub(at), code, m.code, out, errOut)
				}
			}
			code, out, errOut = runCLI(t, "", "check", "--database", db, "--repair")
			if code != 0 || !strings.Contains(out, "matches a recomputation") || strings.Contains(out, "wait for their rebuild") {
				t.Fatalf("check --repair of the marked series: exit %d\n%s%s", code, out, errOut)
			}

			// A group's bounds of its reconcilers' times may be looser
			// than theirs (ingest only raises latest_since and lowers
			// earliest_since), never tighter.
			for _, b := range []struct {
				col          string
				loose, tight time.Time
			}{
				{"latest_since", now.Add(time.Hour), now.Add(-time.Hour)},
				{"earliest_since", now.Add(-time.Hour), now.Add(time.Minute)},
			} {
				if _, err := st.Primary().Exec(context.Background(), `UPDATE endpoint_counts SET `+b.col+` = $1`, b.loose); err != nil {
					t.Fatal(err)
				}
				code, out, errOut = runCLI(t, "", "check", "--database", db)
				if code != 0 {
					t.Fatalf("check of a loose %s: exit %d\n%s%s", b.col, code, out, errOut)
				}
				if _, err := st.Primary().Exec(context.Background(), `UPDATE endpoint_counts SET `+b.col+` = $1`, b.tight); err != nil {
					t.Fatal(err)
				}
				code, out, errOut = runCLI(t, "", "check", "--database", db)
				if code != 1 || strings.Count(out, "< endpoint_counts ") != 2 {
					t.Fatalf("check of a %s that does not bound: exit %d\n%s%s", b.col, code, out, errOut)
				}
				code, out, errOut = runCLI(t, "", "check", "--database", db, "--repair")
				if code != 0 || !strings.Contains(out, "matches a recomputation") {
					t.Fatalf("check --repair of %s: exit %d\n%s%s", b.col, code, out, errOut)
				}
			}
		})
	}
}
