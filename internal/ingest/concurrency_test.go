package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Eight agents push overlapping batches at once (each host is pushed by
// two agents, as when agents fail over, and new hosts go through the
// one-by-one path while known ones go through the batch path): PostgreSQL
// sees no deadlock, and the store ends as one writer leaves it.
func TestConcurrentOverlappingWritersDoNotDeadlock(t *testing.T) {
	const writers, hostsPerWriter, rounds = 8, 50, 6
	pg := testenv.SharedPostgres(t)
	concurrent := testenv.OpenStore(t, "postgres", pg.NewDatabase(t))
	alone := testenv.OpenStore(t, "postgres", pg.NewDatabase(t))
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()

	// Writer w pushes hosts [w*25, w*25+50): each host by two writers.
	batch := func(w, round int) []model.Report {
		var rs []model.Report
		for h := w * hostsPerWriter / 2; h < w*hostsPerWriter/2+hostsPerWriter; h++ {
			host := h % (writers * hostsPerWriter / 2)
			for j, st := range []model.Status{model.StatusInProgress, model.StatusSuccess} {
				r := benchReport(host, round, st)
				r.ObservedAt = base.Add(time.Duration(round)*time.Minute + time.Duration(2*host+j)*time.Millisecond)
				rs = append(rs, r)
			}
		}
		// Rows in a different order per writer, as real agents send them.
		if w%2 == 1 {
			slices.Reverse(rs)
			for i := 0; i+1 < len(rs); i += 2 { // each reconciler's reports stay in order
				rs[i], rs[i+1] = rs[i+1], rs[i]
			}
		}
		return rs
	}
	for _, st := range []*store.Store{concurrent, alone} {
		ing := ingest.New(st)
		for i := range 100 {
			d := benchDescriptor(i)
			d.AssignedAt = base.Add(-time.Duration(100-i) * time.Minute)
			if _, err := ing.ApplyDescriptor(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadlocks := func() int64 {
		time.Sleep(1500 * time.Millisecond) // backends flush their statistics within a second
		var n int64
		if err := concurrent.Read().QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()
	ing := ingest.New(concurrent, ingest.WithClock(func() time.Time { return base.Add(time.Hour) }))
	start := time.Now()
	var pushes int
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				if _, err := ing.ApplyReports(ctx, batch(w, round)); err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, round, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		pushes += writers
	}
	elapsed := time.Since(start)
	if n := deadlocks() - before; n != 0 {
		t.Errorf("%d deadlocks among %d concurrent writers:\n%s", n, writers, pg.Log(""))
	}
	t.Logf("%d pushes of %d reports by %d concurrent writers in %v: %.0f pushes/s",
		pushes, 2*hostsPerWriter, writers, elapsed.Round(time.Millisecond), float64(pushes)/elapsed.Seconds())

	one := ingest.New(alone, ingest.WithClock(func() time.Time { return base.Add(time.Hour) }))
	for round := range rounds {
		for w := range writers {
			if _, err := one.ApplyReports(ctx, batch(w, round)); err != nil {
				t.Fatal(err)
			}
		}
	}
	page := reports.Page{Limit: reports.MaxLimit}
	for _, f := range []reports.Filter{{}} {
		a, _, err := reports.New(concurrent).EnvironmentState(ctx, f, page)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := reports.New(alone).EnvironmentState(ctx, f, page)
		if err != nil {
			t.Fatal(err)
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("concurrent writers left\n%s\none writer\n%s", ja, jb)
		}
	}
	for _, tbl := range []string{"hosts", "reconcilers", "deployments", "deployment_history", "commits", "resolutions"} {
		var a, b int
		if err := concurrent.Read().QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&a); err != nil {
			t.Fatal(err)
		}
		if err := alone.Read().QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("%s: %d rows from concurrent writers, %d from one", tbl, a, b)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
