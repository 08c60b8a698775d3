package conformance

import (
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
)

// testOutcomesKeepFirstSuccess: an assignment's outcome counts when each
// host first succeeded on it. A host that applies the same commit again
// (in progress, then success) moves neither the first success nor when
// every host had succeeded (and so not DORA's lead time); a late report
// of an earlier success moves them earlier; retiring the host that
// succeeded last hands "all succeeded" to the others. The suite's check
// compares the maintained rows with their recomputation after each step.
func testOutcomesKeepFirstSuccess(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	start := e.clock.Now()
	succeed := func(host string) time.Time {
		e.clock.Advance(time.Minute)
		e.report(report(t, host, "drone", "dev", commit(1), model.StatusInProgress))
		e.clock.Advance(time.Minute)
		e.report(report(t, host, "drone", "dev", commit(1), model.StatusSuccess))
		e.checkMaintained()
		return e.clock.Now()
	}
	h1, h2 := succeed("h1"), succeed("h2")
	rs := reports.New(e.st, reports.WithClock(e.clock.Now))
	want := func(step string, first, all *time.Time) {
		t.Helper()
		hist, _, err := rs.History(ctx, reports.Filter{}, reports.Page{Limit: reports.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 {
			t.Fatalf("%s: %d history rows, want 1", step, len(hist))
		}
		h := hist[0]
		if !sameTime(h.FirstSuccessAt, first) || !sameTime(h.AllSucceededAt, all) {
			t.Errorf("%s: first success %v, all succeeded %v; want %v, %v", step, h.FirstSuccessAt, h.AllSucceededAt, first, all)
		}
	}
	want("both succeeded", &h1, &h2)

	// h2 applies the commit again an hour later: while it is in progress
	// not every host succeeds; once it succeeds, nothing moved.
	e.clock.Advance(time.Hour)
	e.report(report(t, "h2", "drone", "dev", commit(1), model.StatusInProgress))
	e.checkMaintained()
	want("h2 applies again", &h1, nil)
	e.clock.Advance(time.Minute)
	e.report(report(t, "h2", "drone", "dev", commit(1), model.StatusSuccess))
	e.checkMaintained()
	want("h2 succeeds again", &h1, &h2)

	// A late report: h2 had succeeded before h1 did.
	early := start.Add(30 * time.Second)
	late := report(t, "h2", "drone", "dev", commit(1), model.StatusSuccess)
	late.ObservedAt = early
	e.report(late)
	e.checkMaintained()
	want("h2's earlier success arrives late", &early, &h1)

	// Retiring h1, which succeeded last: h2 alone, since its first success.
	e.retire("h1")
	e.checkMaintained()
	want("h1 retired", &early, &early)
}

// sameTime reports whether two optional times are both absent or equal.
func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}
