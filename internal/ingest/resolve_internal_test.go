package ingest

import (
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// The correlation rule on a target's assignments: the assignment at the
// commit (either may be abbreviated, when exactly one matches), else the
// latest no later than when the commit was first seen on the branch.
func TestInEffect(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	const c1, c2, c3, c4 = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2222222aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"3333333aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "3333333bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	as := []store.Assignment{
		{ID: 1, Commit: c1, AssignedAt: at(0)},
		{ID: 2, Commit: "", AssignedAt: at(10)}, // pending: in effect by time only
		{ID: 3, Commit: c2[:9], AssignedAt: at(20)},
		{ID: 4, Commit: c3, AssignedAt: at(30)},
		{ID: 5, Commit: c4, AssignedAt: at(40)},
	}
	for _, tc := range []struct {
		name      string
		sha       string
		firstSeen time.Time
		want      int64
	}{
		{"exact", c1, at(50), 1},
		{"reported abbreviated", c1[:8], at(50), 1},
		{"assigned abbreviated", c2, at(50), 3},
		{"exact wins over time", c1, at(35), 1},
		{"by time: the latest no later than first seen", "9999999aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", at(25), 3},
		{"by time: a pending assignment counts", "9999999aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", at(15), 2},
		{"by time: at the same instant", "9999999aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", at(30), 4},
		{"before every assignment: unknown", "9999999aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", at(-1), 0},
		{"ambiguous abbreviation: by time", "3333333", at(35), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inEffect(as, store.CommitSeen{SHA: tc.sha, FirstSeen: tc.firstSeen}); got != tc.want {
				t.Errorf("inEffect(%s, %v) = %d, want %d", tc.sha, tc.firstSeen.Format("15:04"), got, tc.want)
			}
		})
	}
}

// The resolver merges what to resolve per target: all commits wins, the
// earliest since, each commit once.
func TestResolverMergesWork(t *testing.T) {
	r := newResolver()
	tg := store.TargetRow{ID: 7}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r.target(tg, false, t0.Add(time.Hour), "aaaaaaa")
	r.target(tg, false, t0, "aaaaaaa")
	r.target(tg, false, t0.Add(2*time.Hour), "bbbbbbb")
	w := r.targets[7]
	if w.all || !w.since.Equal(t0) || len(w.shas) != 2 {
		t.Errorf("work = %+v", *w)
	}
	r.target(tg, true, time.Time{}, "")
	if !w.all {
		t.Error("all commits not kept")
	}
}
