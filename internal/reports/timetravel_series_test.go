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
// otherwise: at every time, all give the same answer, the series rebuilt
// from the marks' times and rebuilt whole too. The fleet below takes
// reports in batches (one reconciler twice, out of order), late reports,
// retirements, returns from retirement and moves to another endpoint, in
// a random order.
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
		// In order, each host stays on its endpoint and reports as it
		// goes (alone, or in a batch with another host's, one of them
		// twice): ingest keeps every series. With late reports, the
		// second report of the batch is older than the first, and
		// reports minutes old come too: their endpoints are marked from
		// their times. Retirements and returns from them (by a report)
		// are kept as changes, in order. With chaos, late reports,
		// retirements and moves come together.
		const (
			inOrder = iota
			late
			retiring
			chaos
		)
		home := map[string]string{}  // each host's endpoint (its environment)
		retired := map[string]bool{} // hosts retired since their last report
		var retirements, returns int
		report := func(host string, observed time.Time, mode int) model.Report {
			env, ok := home[host]
			if !ok {
				env = envs[int(host[1]-'0')%2]
			}
			if mode == chaos {
				env = envs[rng.IntN(2)]
			}
			if retired[host] {
				returns++
			}
			home[host], retired[host] = env, false
			return model.Report{Host: host, Reconciler: shop.name, ReconcilerType: "flux", Endpoint: shop.endpoint(env, "eu"),
				Commit: commits[env][rng.IntN(3)], Status: statuses[rng.IntN(3)], ObservedAt: observed}
		}
		now := start
		traffic := func(steps int, mode int) {
			t.Helper()
			for range steps {
				now = now.Add(time.Minute)
				f.at(now)
				host := fmt.Sprintf("h%d", rng.IntN(6))
				if (mode == inOrder || mode == late) && retired[host] {
					continue // its report would restore it
				}
				var err error
				switch k := rng.IntN(10); {
				case k < 5 || (mode == inOrder && k >= 7) || (mode == late && k == 9) || (mode == retiring && (k == 7 || k == 8)):
					_, err = f.ing.ApplyReports(ctx, []model.Report{report(host, time.Time{}, mode)})
				case k < 7:
					second := now.Add(-5 * time.Second)
					if mode == late || mode == chaos {
						second = now.Add(-40 * time.Second)
					}
					batch := []model.Report{report(host, now.Add(-10*time.Second), mode)}
					if other := fmt.Sprintf("h%d", rng.IntN(6)); other != host && (mode == chaos || mode == retiring || !retired[other]) {
						batch = append(batch, report(other, time.Time{}, mode))
					}
					_, err = f.ing.ApplyReports(ctx, append(batch, report(host, second, mode)))
				case k < 9: // a late report, minutes old
					_, err = f.ing.ApplyReports(ctx, []model.Report{report(host, now.Add(-time.Duration(1+rng.IntN(10))*time.Minute), mode)})
				default: // retired (its next report restores it)
					_, err = f.ing.RetireReconciler(ctx, host, shop.name)
					retired[host] = true
					retirements++
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}

		// The answer at every time on a 25-second grid and at the extra
		// times, dev and prod.
		answers := func(extra []time.Time) []string {
			t.Helper()
			var out []string
			var times []time.Time
			for at := start.Add(-time.Minute); !at.After(now.Add(time.Minute)); at = at.Add(25 * time.Second) {
				times = append(times, at)
			}
			for _, at := range slices.Concat(times, extra) {
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
		// with the marked series rebuilt (from their marks' times, or
		// whole), with every endpoint read from the history, then with
		// every series rebuilt whole from it.
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
			// The marks' times too: a snapshot at such a time is stale.
			var marks []time.Time
			rows, err := st.Read().Query(ctx, `SELECT since FROM series_dirty WHERE since IS NOT NULL`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var at time.Time
				if err := rows.Scan(&at); err != nil {
					t.Fatal(err)
				}
				marks = append(marks, at)
			}
			if rows.Close(); rows.Err() != nil {
				t.Fatal(rows.Err())
			}
			kept, dirty := answers(marks), count("series_dirty")
			if clean && (dirty != 0 || count("endpoint_snapshots") == 0) {
				t.Fatalf("%s: %d endpoints dirty, %d snapshots", phase, dirty, count("endpoint_snapshots"))
			}
			if _, err := st.RebuildSeries(ctx, 1000); err != nil {
				t.Fatal(err)
			}
			marked := answers(marks)
			check(phase + ", rebuilt from the marks")
			if err := store.MarkAllSeriesDirty(ctx, st.Primary()); err != nil {
				t.Fatal(err)
			}
			history := answers(marks)
			if _, err := st.RebuildSeries(ctx, 1000); err != nil {
				t.Fatal(err)
			}
			if n := count("series_dirty"); n != 0 {
				t.Fatalf("%s: %d endpoints dirty after the rebuild", phase, n)
			}
			rebuilt := answers(marks)
			same(phase, "kept", kept, history)
			same(phase, "rebuilt from the marks", marked, history)
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
			first = append(first, report(fmt.Sprintf("h%d", h), now.Add(-30*time.Second), inOrder))
		}
		if _, err := f.ing.ApplyReports(ctx, first); err != nil {
			t.Fatal(err)
		}
		traffic(60, inOrder)
		compare("in order", true)
		traffic(60, late)
		// Late reports mark their endpoints from their times, not whole.
		var partial, whole int
		if err := st.Read().QueryRow(ctx, `SELECT count(since), count(*) - count(since) FROM series_dirty`).Scan(&partial, &whole); err != nil {
			t.Fatal(err)
		}
		if partial == 0 || whole != 0 {
			t.Errorf("after late reports: %d endpoints marked from a time, %d whole", partial, whole)
		}
		compare("late", false)
		retirements, returns = 0, 0
		traffic(90, retiring)
		if retirements == 0 || returns == 0 {
			t.Fatalf("%d retirements, %d returns", retirements, returns)
		}
		compare("retired and returned", true)
		traffic(120, chaos)
		compare("late, retired, moved", false)
		traffic(60, inOrder)
		compare("in order after the rebuild", true)
	})
}
