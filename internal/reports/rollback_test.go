package reports_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A host that goes back to a commit it deployed before, with the same
// status and message, changes its state then: time travel before the
// return shows the commit it left, after it the one it went back to, and
// now agrees with Environment State.
func TestReturnToEarlierCommit(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, start := uiFleet(t, st)
		// dev-1 ran 1.1.0 since +70m; at +7h it goes back to 1.0.0's
		// commit, which it reported at +10m with the same status.
		f.at(start.Add(7*time.Hour)).report("dev-1", shop, "dev", "eu", sha("d100"), model.StatusSuccess, "")
		f.at(start.Add(8 * time.Hour))
		state := func(at time.Time) []string {
			t.Helper()
			rows, _, err := f.rep.EnvironmentStateAt(ctx, reports.Filter{Environment: "dev"}, at, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			return stateLines(rows)
		}
		if got := fmt.Sprint(state(start.Add(6 * time.Hour))); got != "[dev/eu 1.1.0 1.1.0 success 2]" {
			t.Errorf("at +6h: %s", got)
		}
		want := []string{"dev/eu 1.1.0 1.0.0 success 1", "dev/eu 1.1.0 1.1.0 success 1"}
		if got := state(start.Add(7*time.Hour + time.Minute)); !slices.Equal(got, want) {
			t.Errorf("at +7h1m: %q, want %q", got, want)
		}
		now, _, err := f.rep.EnvironmentState(ctx, reports.Filter{Environment: "dev"}, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if cur := stateLines(now); !slices.Equal(cur, want) {
			t.Errorf("Environment State now: %q, want %q", cur, want)
		}
		rows, _, err := f.rep.HostStateAt(ctx, reports.Filter{Host: "dev-1"}, start.Add(7*time.Hour+time.Minute), reports.Page{})
		if err != nil || len(rows) != 1 || rows[0].Version != "1.0.0" || rows[0].LastReportAt.Sub(start) != 7*time.Hour {
			t.Errorf("dev-1 at +7h1m: %+v %v", rows, err)
		}
	})
}
