package reports_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Time travel reads each endpoint's series (its snapshots, kept by ingest
// or rebuilt from the history) where it is up to date, and the history
// otherwise: at every time, all three give the same answer. The fleet
// below takes reports in batches (one reconciler twice, out of order),
// late reports, retirements, returns from retirement and moves to
// another endpoint, in a random order.
func TestTimeTravelSeriesMatchesHistory(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		envs := []string{"dev", "prod"}
		commits := map[string][]string{}
		for _, env := range envs {
			for v := range 3 {
				c := sha(fmt.Sprintf("%x%d", len(env), v))
				commits[env] = append(commits[env], c)
				f.assign(shop, env, "eu", fmt.Sprintf("1.%d.0", v), c)
			}
		}
		statuses := []model.Status{model.StatusSuccess, model.StatusFailure, model.StatusInProgress}
		rng := rand.New(rand.NewPCG(8, 1))
		// Without chaos, each host stays on its endpoint and reports as
		// it goes (alone, or in a batch with another host's, one of them
		// twice): ingest keeps every series. With chaos, the second report
		// of the batch is older than the first, and late reports,
		// retirements and moves come too.
		home := map[string]string{}  // each host's endpoint (its environment)
		retired := map[string]bool{} // hosts retired since their last report
		report := func(host string, observed time.Time, chaos bool) model.Report {
			env, ok := home[host]
			if !ok {
				env = envs[int(host[1]-'0')%2]
			}
			if chaos {
				env = envs[rng.IntN(2)]
			}
			home[host], retired[host] = env, false
			return model.Report{Host: host, Reconciler: shop.name, ReconcilerType: "flux", Endpoint: shop.endpoint(env, "eu"),
				Commit: commits[env][rng.IntN(3)], Status: statuses[rng.IntN(3)], ObservedAt: observed}
		}
		now := start
		traffic := func(steps int, chaos bool) {
			t.Helper()
			for range steps {
				now = now.Add(time.Minute)
				f.at(now)
				host := fmt.Sprintf("h%d", rng.IntN(6))
				if !chaos && retired[host] {
					continue // its report would restore it
				}
				var err error
				switch k := rng.IntN(10); {
				case k < 5 || (!chaos && k >= 7):
					_, err = f.ing.ApplyReports(ctx, []model.Report{report(host, time.Time{}, chaos)})
				case k < 7:
					second := now.Add(-5 * time.Second)
					if chaos {
						second = now.Add(-40 * time.Second)
					}
					batch := []model.Report{report(host, now.Add(-10*time.Second), chaos)}
					if other := fmt.Sprintf("h%d", rng.IntN(6)); other != host && (chaos || !retired[other]) {
						batch = append(batch, report(other, time.Time{}, chaos))
					}
					_, err = f.ing.ApplyReports(ctx, append(batch, report(host, second, chaos)))
				case k < 9: // a late report, minutes old
					_, err = f.ing.ApplyReports(ctx, []model.Report{report(host, now.Add(-time.Duration(1+rng.IntN(10))*time.Minute), chaos)})
				default: // retired (its next report restores it)
					_, err = f.ing.RetireReconciler(ctx, host, shop.name)
					retired[host] = true
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}

		// The answer at every time on a 25-second grid, dev and prod.
		answers := func() []string {
			t.Helper()
			var out []string
			for at := start.Add(-time.Minute); !at.After(now.Add(time.Minute)); at = at.Add(25 * time.Second) {
				rows, _, err := f.rep.EnvironmentStateAt(ctx, reports.Filter{}, at, reports.Page{})
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, at.Format("15:04:05")+" "+fmt.Sprint(stateLines(rows)))
			}
			return out
		}
		count := func(table string) int {
			t.Helper()
			var n int
			if err := st.Read().QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		same := func(phase, name string, got, want []string) {
			t.Helper()
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("%s, %s: %s\n  history: %s", phase, name, got[i], want[i])
				}
			}
		}
		// compare reads every time with the series as ingest left them,
		// with every endpoint read from the history, then with every
		// series rebuilt from it.
		check := func(phase string) {
			t.Helper()
			diffs, err := store.Check(ctx, st.Read(), 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diffs {
				t.Errorf("%s: maintained %s %s %s", phase, d.Table, d.Side, d.Row)
			}
		}
		compare := func(phase string, clean bool) {
			t.Helper()
			check(phase + ", kept")
			kept, dirty := answers(), count("series_dirty")
			if clean && (dirty != 0 || count("endpoint_snapshots") == 0) {
				t.Fatalf("%s: %d endpoints dirty, %d snapshots", phase, dirty, count("endpoint_snapshots"))
			}
			if err := store.MarkAllSeriesDirty(ctx, st.Primary()); err != nil {
				t.Fatal(err)
			}
			history := answers()
			if _, err := st.RebuildSeries(ctx, 1000); err != nil {
				t.Fatal(err)
			}
			if n := count("series_dirty"); n != 0 {
				t.Fatalf("%s: %d endpoints dirty after the rebuild", phase, n)
			}
			rebuilt := answers()
			same(phase, "kept", kept, history)
			same(phase, "rebuilt", rebuilt, history)
			if slices.Equal(history[:1], history[len(history)-1:]) {
				t.Errorf("%s: the fleet did not change over time: %s", phase, history[0])
			}
			check(phase + ", rebuilt")
		}
		// The hosts' first reports, observed before they were registered:
		// each counts from its registration.
		now = now.Add(time.Minute)
		f.at(now)
		var first []model.Report
		for h := range 6 {
			first = append(first, report(fmt.Sprintf("h%d", h), now.Add(-30*time.Second), false))
		}
		if _, err := f.ing.ApplyReports(ctx, first); err != nil {
			t.Fatal(err)
		}
		traffic(60, false)
		compare("in order", true)
		traffic(120, true)
		compare("late, retired, moved", false)
		traffic(60, false)
		compare("in order after the rebuild", true)
	})
}
