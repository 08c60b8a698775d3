package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

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

// On PostgreSQL a first sweep of hosts makes their tables' statistics out
// of date until autovacuum gets to them; the hub analyzes them at its next
// check, and not again while their size holds.
func TestRefreshStatisticsFollowsFleetGrowth(t *testing.T) {
	ctx := context.Background()
	st := testenv.NewStore(t, "postgres")
	if _, err := st.RefreshStatistics(ctx); err != nil { // the empty store's first analysis
		t.Fatal(err)
	}
	ing := ingest.New(st)
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "apps")
	if err != nil {
		t.Fatal(err)
	}
	// A target on the endpoint: each host deploys to its environment, and
	// reports it (host_counts counts the hosts that reported).
	if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
		Environment: "prod", Target: "eastus", Manifests: ep, Version: "1.0.0", Commit: "3e4afb2c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a"}); err != nil {
		t.Fatal(err)
	}
	fleet := []string{"hosts", "reconcilers", "host_counts", "host_environments", "reconciler_assignments"}
	analyzedAll := func(tables []string) bool {
		for _, f := range fleet {
			if !slices.Contains(tables, f) {
				return false
			}
		}
		return true
	}
	for b := range 3 {
		var rs []model.Report
		for i := range 1000 {
			rs = append(rs, model.Report{Host: fmt.Sprintf("aks-%04d", b*1000+i), Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
				Commit: "3e4afb2c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a", Status: model.StatusSuccess, ObservedAt: time.Now()})
		}
		if _, err := ing.ApplyReports(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	// PostgreSQL counts rows asynchronously (within seconds).
	var tables []string // analyzed by the checks so far
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		analyzed, err := st.RefreshStatistics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, analyzed...)
		if analyzedAll(tables) || time.Now().After(deadline) {
			break
		}
	}
	if !analyzedAll(tables) {
		t.Fatalf("after 3,000 new hosts RefreshStatistics analyzed %v, want %v among them", tables, fleet)
	}
	for _, f := range fleet {
		var estimate float64
		if err := st.Primary().QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = $1::regclass`, f).Scan(&estimate); err != nil {
			t.Fatal(err)
		}
		if estimate < 2900 {
			t.Errorf("the planner's %s rows after the analysis: %.0f, want about 3,000", f, estimate)
		}
	}
	if tables, err := st.RefreshStatistics(ctx); err != nil || slices.ContainsFunc(fleet, func(f string) bool { return slices.Contains(tables, f) }) {
		t.Errorf("RefreshStatistics again with the fleet's size unchanged: %v %v, want none of %v", tables, err, fleet)
	}
}

// Drift swells while a rollout is under way and drains as it completes;
// the hub analyzes it at its next check after each swing, so that the
// planner does not take a drained table for the rollout's thousands of
// rows.
func TestRefreshStatisticsFollowsDrift(t *testing.T) {
	ctx := context.Background()
	st := testenv.NewStore(t, "postgres")
	ing := ingest.New(st)
	if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "web", Environment: "prod",
		Target: "web-prod", Manifests: endpoint(t), Version: "1.0.0", Commit: sha(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RefreshStatistics(ctx); err != nil { // the empty drift table's first analysis
		t.Fatal(err)
	}
	report := func(status model.Status) {
		t.Helper()
		for b := range 3 {
			var rs []model.Report
			for i := range 1000 {
				rs = append(rs, model.Report{Host: fmt.Sprintf("aks-%04d", b*1000+i), Reconciler: "flux-system", ReconcilerType: "flux",
					Endpoint: endpoint(t), Commit: sha(1), Status: status})
			}
			if _, err := ing.ApplyReports(ctx, rs); err != nil {
				t.Fatal(err)
			}
		}
	}
	// refreshUntil runs the hub's check until it analyzes drift
	// (PostgreSQL counts rows asynchronously, within seconds) and returns
	// the planner's drift rows then.
	refreshUntil := func(what string) float64 {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			tables, err := st.RefreshStatistics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(tables, "drift") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s RefreshStatistics analyzed %v, not drift", what, tables)
			}
		}
		var estimate float64
		if err := st.Primary().QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'drift'::regclass`).Scan(&estimate); err != nil {
			t.Fatal(err)
		}
		return estimate
	}
	report(model.StatusFailure) // 3,000 hosts failing at the scheduled version: drifted
	if n := refreshUntil("after 3,000 hosts failed"); n < 2900 {
		t.Errorf("the planner's drift rows with 3,000 hosts failing: %.0f, want about 3,000", n)
	}
	report(model.StatusSuccess) // all recovered: drift drained
	if n := refreshUntil("after 3,000 hosts recovered"); n > 100 {
		t.Errorf("the planner's drift rows once every host recovered: %.0f, want about 0", n)
	}
}
