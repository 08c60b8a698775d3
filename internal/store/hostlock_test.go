package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Two writers change different reconcilers of one host at once: the first
// restores one and is about to commit when the second retires the host's
// other one. They share no row, yet the host keeps its environment and the
// restored reconciler's last-report time: the second one's recomputation
// waits for the first to commit, and then sees the restored reconciler.
func TestHostEnvironmentsOfConcurrentWriters(t *testing.T) {
	st := testenv.NewStore(t, "postgres")
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ing := ingest.New(st, ingest.WithClock(func() time.Time { return now }))
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "prod", "eastus")
	if err != nil {
		t.Fatal(err)
	}
	const commit = "3e4afb2c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a"
	if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
		Environment: "prod", Target: "eastus", Manifests: ep, Version: "1.0.0", Commit: commit}); err != nil {
		t.Fatal(err)
	}
	var reps []model.Report
	for _, name := range []string{"old", "new"} {
		reps = append(reps, model.Report{Host: "aks-1", Reconciler: name, ReconcilerType: "flux", Endpoint: ep, Commit: commit,
			Status: model.StatusSuccess, ObservedAt: now.Add(-time.Minute)})
	}
	if _, err := ing.ApplyReports(ctx, reps); err != nil {
		t.Fatal(err)
	}
	if _, err := ing.RetireReconciler(ctx, "aks-1", "new"); err != nil {
		t.Fatal(err)
	}
	idOf := func(name string) int64 {
		var id int64
		if err := st.Primary().QueryRow(ctx, `SELECT id FROM reconcilers WHERE name = $1`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	restored, retired := idOf("new"), idOf("old")
	// What ingest does for the host of a reconciler it changed.
	refresh := func(q store.Querier, id int64) error {
		hosts, err := store.ReconcilerHosts(ctx, q, "postgres", []int64{id})
		if err != nil {
			return err
		}
		if err := store.LockHosts(ctx, q, "postgres", []int64{hosts[id]}); err != nil {
			return err
		}
		if err := store.RefreshReportTimes(ctx, q, "postgres", []int64{hosts[id]}); err != nil {
			return err
		}
		return store.RefreshHostEnvironments(ctx, q, "postgres", []int64{hosts[id]})
	}

	refreshed, commit1, firstDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		firstDone <- st.Tx(ctx, func(q store.Querier) error {
			if _, err := q.Exec(ctx, `UPDATE reconcilers SET retired_at = NULL WHERE id = $1`, restored); err != nil {
				return err
			}
			if err := refresh(q, restored); err != nil {
				return err
			}
			close(refreshed)
			<-commit1
			return nil
		})
	}()
	<-refreshed
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- st.Tx(ctx, func(q store.Querier) error {
			if _, _, err := store.RetireReconciler(ctx, q, "aks-1", "old", now); err != nil {
				return err
			}
			return refresh(q, retired)
		})
	}()
	// The second writer waits for the first (or, were nothing to hold it,
	// finishes first: the wrong order this test is here to catch).
	select {
	case err := <-secondDone:
		secondDone <- err
	case <-time.After(2 * time.Second):
	}
	close(commit1)
	for _, done := range []chan error{firstDone, secondDone} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var envs int
	if err := st.Primary().QueryRow(ctx, `SELECT count(*) FROM host_environments`).Scan(&envs); err != nil {
		t.Fatal(err)
	}
	if envs != 1 {
		t.Errorf("host aks-1 deploys to %d environments, want 1 (prod, by its restored reconciler)", envs)
	}
	var oldest, restoredAt *time.Time
	if err := st.Primary().QueryRow(ctx, `SELECT (SELECT oldest_report_at FROM host_counts), (SELECT last_report_at FROM reconcilers WHERE id = $1)`,
		restored).Scan(&oldest, &restoredAt); err != nil {
		t.Fatal(err)
	}
	if oldest == nil || !oldest.Equal(*restoredAt) {
		t.Errorf("host aks-1's earliest last-report time is %v, want %v (its restored reconciler's)", oldest, *restoredAt)
	}
}
