package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// AnalyzeSmallTables gives the planner statistics of the small tables,
// which autovacuum would not: PostgreSQL's row estimate of environments
// goes from "never analyzed" to the real count; SQLite records
// sqlite_stat1 rows for them. RefreshStatistics, which a hub runs every
// minute, does the same for tables never analyzed, and then nothing more
// until they change.
func TestAnalyzeSmallTables(t *testing.T) {
	t.Run("AnalyzeSmallTables", func(t *testing.T) {
		testAnalyze(t, func(ctx context.Context, st *store.Store) error { return st.AnalyzeSmallTables(ctx) })
	})
	t.Run("RefreshStatistics", func(t *testing.T) {
		testAnalyze(t, func(ctx context.Context, st *store.Store) error {
			tables, err := st.RefreshStatistics(ctx)
			if err == nil && !slices.Contains(tables, "environments") {
				t.Errorf("RefreshStatistics analyzed %v, not environments, never analyzed before", tables)
			}
			return err
		})
	})
}

func testAnalyze(t *testing.T, analyze func(context.Context, *store.Store) error) {
	ctx := context.Background()
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ing := ingest.New(st)
		for _, env := range []string{"dev", "qa", "prod"} {
			ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", env, "eu")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
				Environment: env, Target: "eu", Manifests: ep, Version: "1.0.0"}); err != nil {
				t.Fatal(err)
			}
		}
		stats := func() int64 {
			var n int64
			q := `SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'environments'`
			if st.Engine() == "postgres" {
				q = `SELECT reltuples::bigint FROM pg_class WHERE oid = 'environments'::regclass`
			}
			if err := st.Primary().QueryRow(ctx, q).Scan(&n); err != nil {
				if st.Engine() == "sqlite" {
					return 0 // sqlite_stat1 does not exist before the first ANALYZE
				}
				t.Fatal(err)
			}
			return n
		}
		if n := stats(); n > 0 {
			t.Fatalf("environments already has statistics (%d) before any ANALYZE: the test proves nothing", n)
		}
		if err := analyze(ctx, st); err != nil {
			t.Fatal(err)
		}
		want := int64(1) // sqlite_stat1: a row per index of the table
		if st.Engine() == "postgres" {
			want = 3 // the three environments
		}
		if n := stats(); n < want {
			t.Errorf("after analyzing: %d, want at least %d", n, want)
		}
		// On SQLite, nothing is out of date then. (PostgreSQL counts
		// changes asynchronously: the ingest above may still be counted.)
		if st.Engine() == "sqlite" {
			if tables, err := st.RefreshStatistics(ctx); err != nil || len(tables) > 0 {
				t.Errorf("RefreshStatistics right after analyzing: %v %v, want nothing", tables, err)
			}
		}
	})
}
