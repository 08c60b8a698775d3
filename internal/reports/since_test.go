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

// Environment State since a time counts the hosts whose status changed
// since then, by status: it reads the hosts of the (commit, status) groups
// that changed since, so a host that leaves a group and comes back later
// must count, and one that stayed put must not. Until a time, and within
// a range, it counts the hosts whose status changed by then.
func TestEnvironmentStateSince(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		c := sha("c100")
		f.assign(shop, "prod", "eu", "1.0.0", c)
		f.at(start)
		for _, h := range []string{"h1", "h2", "h3", "h4"} {
			f.report(h, shop, "prod", "eu", c, model.StatusSuccess, "")
		}
		f.at(start.Add(time.Hour)).report("h1", shop, "prod", "eu", c, model.StatusFailure, "crash loop")
		f.at(start.Add(2*time.Hour)).report("h2", shop, "prod", "eu", c, model.StatusFailure, "crash loop")
		f.at(start.Add(3*time.Hour)).report("h3", shop, "prod", "eu", c, model.StatusInProgress, "")
		f.at(start.Add(4*time.Hour)).report("h1", shop, "prod", "eu", c, model.StatusSuccess, "") // back to its first group
		f.at(start.Add(5 * time.Hour))

		state := func(flt reports.Filter) string {
			t.Helper()
			rs, _, err := f.rep.EnvironmentState(ctx, flt, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			out := ""
			for _, r := range rs {
				out += fmt.Sprintf("%s %d; ", r.Status, r.Hosts)
			}
			return out
		}
		for since, want := range map[time.Duration]string{
			0:                            "success 2; failure 1; in_progress 1; ",
			30 * time.Minute:             "failure 1; in_progress 1; success 1; ",
			90 * time.Minute:             "failure 1; in_progress 1; success 1; ",
			3*time.Hour + 30*time.Minute: "success 1; ",
			4*time.Hour + 30*time.Minute: "",
		} {
			if got := state(reports.Filter{Since: start.Add(since)}); got != want {
				t.Errorf("since +%v: %q, want %q", since, got, want)
			}
		}
		// Until a time, and within a range.
		for until, want := range map[time.Duration]string{
			30 * time.Minute:             "success 1; ",
			2*time.Hour + 30*time.Minute: "failure 1; success 1; ",
			3*time.Hour + 30*time.Minute: "failure 1; in_progress 1; success 1; ",
			5 * time.Hour:                "success 2; failure 1; in_progress 1; ",
		} {
			if got := state(reports.Filter{Until: start.Add(until)}); got != want {
				t.Errorf("until +%v: %q, want %q", until, got, want)
			}
		}
		if got := state(reports.Filter{Since: start.Add(90 * time.Minute), Until: start.Add(3*time.Hour + 30*time.Minute)}); got != "failure 1; in_progress 1; " {
			t.Errorf("from +1h30m to +3h30m: %q", got)
		}
		if got := state(reports.Filter{Status: "success", Until: start.Add(5 * time.Hour)}); got != "success 2; " {
			t.Errorf("successes until +5h: %q", got)
		}
	})
}

// A time filter pages through the targets with a host whose status time
// passes it, whatever the bounds of their endpoint's groups say: a group wholly
// inside the range, wholly outside it, and in between with and without a
// reconciler that passes (a host that left the group, here by retiring,
// leaves its bound behind).
func TestEnvironmentStateSinceSelectsTargets(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		c := sha("c200")
		for _, target := range []string{"early", "late", "mixed", "left"} {
			f.assign(shop, "prod", target, "1.0.0", c)
		}
		f.at(start)
		f.report("e1", shop, "prod", "early", c, model.StatusSuccess, "")
		f.report("m1", shop, "prod", "mixed", c, model.StatusSuccess, "")
		f.report("l1", shop, "prod", "left", c, model.StatusSuccess, "")
		f.at(start.Add(2 * time.Hour))
		f.report("n1", shop, "prod", "late", c, model.StatusSuccess, "")
		f.report("m2", shop, "prod", "mixed", c, model.StatusSuccess, "")
		f.report("l2", shop, "prod", "left", c, model.StatusSuccess, "")
		f.at(start.Add(3 * time.Hour))
		if _, err := f.ing.RetireReconciler(ctx, "l2", shop.name); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			flt  reports.Filter
			want []string
		}{
			{reports.Filter{Since: start.Add(time.Hour)}, []string{"late", "mixed"}},
			{reports.Filter{Until: start.Add(time.Hour)}, []string{"early", "left", "mixed"}},
			{reports.Filter{Since: start.Add(-time.Hour)}, []string{"early", "late", "left", "mixed"}},
			{reports.Filter{Since: start.Add(time.Hour), Status: "failure"}, nil},
		} {
			if got := targetPages(t, f, c.flt); !slices.Equal(got, c.want) {
				t.Errorf("since %v until %v status %q: targets %q, want %q", c.flt.Since, c.flt.Until, c.flt.Status, got, c.want)
			}
		}
	})
}

// A time filter lists a target on the bounds of its endpoint's groups
// alone only when a group passes as a whole; a group in between whose
// reconciler that passed has left (here, retired) lists nothing, whether
// every endpoint with hosts may pass or only a few do.
func TestEnvironmentStateSinceTrustsOnlyWholeGroups(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
		for _, quiet := range []int{0, 5} { // targets with no change since
			t.Run(fmt.Sprintf("%d quiet", quiet), func(t *testing.T) {
				f := newFleet(t, st, start)
				c := sha(fmt.Sprintf("c3%d", quiet))
				app := workload{"acme", fmt.Sprintf("app%d", quiet), "web", fmt.Sprintf("https://github.com/acme/web%d", quiet)}
				targets := []string{"gone", "late"} // gone sorts first: its page would be empty
				for i := range quiet {
					targets = append(targets, fmt.Sprintf("quiet%d", i))
				}
				for _, target := range targets {
					f.assign(app, "prod", target, "1.0.0", c)
				}
				f.at(start)
				f.report("g1", app, "prod", "gone", c, model.StatusSuccess, "")
				for i := range quiet {
					f.report(fmt.Sprintf("q%d", i), app, "prod", fmt.Sprintf("quiet%d", i), c, model.StatusSuccess, "")
				}
				f.at(start.Add(2 * time.Hour))
				f.report("n1", app, "prod", "late", c, model.StatusSuccess, "")
				f.report("g2", app, "prod", "gone", c, model.StatusSuccess, "")
				f.at(start.Add(3 * time.Hour))
				if _, err := f.ing.RetireReconciler(ctx, "g2", app.name); err != nil {
					t.Fatal(err)
				}
				if got := targetPages(t, f, reports.Filter{Application: app.app, Since: start.Add(time.Hour)}); !slices.Equal(got, []string{"late"}) {
					t.Errorf("targets %q, want [late]", got)
				}
			})
		}
	})
}

// targetPages pages through Environment State one target a page and names
// each page's target: a target selected without a host that passes the
// filter leaves its page empty ("(empty page)").
func targetPages(t *testing.T, f *fleet, flt reports.Filter) []string {
	t.Helper()
	var got []string
	p := reports.Page{Limit: 1}
	for range 10 {
		rs, next, err := f.rep.EnvironmentState(ctx, flt, p)
		if err != nil {
			t.Fatal(err)
		}
		page := "(empty page)"
		if len(rs) > 0 {
			page = rs[0].Target
		}
		if len(rs) > 0 || next != "" {
			got = append(got, page)
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	return got
}
