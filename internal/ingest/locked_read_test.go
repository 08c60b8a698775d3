package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A batch that waits for another writer's lock on one of its reconcilers
// compares its reports with what that writer committed, not with what was
// stored when the batch's statement began (PostgreSQL hands a waiting
// locking read the new version of the locked row, but the rows it joined
// as they were before).
func TestWaitingBatchReadsCommittedState(t *testing.T) {
	st := testenv.NewStore(t, "postgres")
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	report := func(host, message string, at time.Time) model.Report {
		r := benchReport(0, 1, model.StatusSuccess)
		r.Host, r.Message, r.ObservedAt = host, message, at
		return r
	}
	first, second := ingest.New(st), ingest.New(st) // two hubs on one store
	if _, err := first.ApplyReports(ctx, []model.Report{report("aks-a", "applied", base), report("aks-b", "applied", base)}); err != nil {
		t.Fatal(err)
	}

	// Hold every reconciler's row lock while both hubs start their batches.
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 3)
	go func() {
		done <- st.Tx(ctx, func(q store.Querier) error {
			if _, err := q.Exec(ctx, `SELECT id FROM reconcilers ORDER BY id FOR UPDATE`); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	waiters := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var waiting int
			if err := st.Primary().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if waiting >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d batches wait for the lock, want %d", waiting, n)
			}
		}
	}
	// The first hub's batch changes aks-a's message; the second hub's,
	// which also changes aks-b (so that it is no replay), reports aks-a's
	// first message again, later: it is the current one.
	go func() {
		_, err := first.ApplyReports(ctx, []model.Report{report("aks-a", "drifted", base.Add(time.Minute))})
		done <- err
	}()
	waiters(1)
	go func() {
		_, err := second.ApplyReports(ctx, []model.Report{report("aks-a", "applied", base.Add(2*time.Minute)), report("aks-b", "changed", base.Add(2*time.Minute))})
		done <- err
	}()
	waiters(2)
	close(release)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	var message string
	var changed time.Time
	if err := st.Primary().QueryRow(ctx, `SELECT d.message, d.last_changed FROM reconcilers r JOIN hosts h ON h.id = r.host_id
		JOIN deployments d ON d.id = r.current_deployment_id WHERE h.name = 'aks-a'`).Scan(&message, &changed); err != nil {
		t.Fatal(err)
	}
	if message != "applied" || !changed.Equal(base.Add(2*time.Minute)) {
		t.Errorf("aks-a's current deployment: %q since %s, want the latest report's %q since %s", message, changed.UTC(), "applied", base.Add(2*time.Minute))
	}
}
