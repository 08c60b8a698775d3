package reports_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// uiFleet: shop's api in dev (eu, two hosts) and prod (eu, three hosts;
// us, none). dev moved 1.0.0 → 1.1.0 at +1h; prod got 1.0.0 at +2h, then
// 1.1.0 at +5h, which one prod host failed; a stray host runs a commit of
// an endpoint no target has.
func uiFleet(t *testing.T, st *store.Store) (*fleet, time.Time) {
	start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	f := newFleet(t, st, start)
	f.assign(shop, "dev", "eu", "1.0.0", sha("d100"))
	f.at(start.Add(10*time.Minute)).report("dev-1", shop, "dev", "eu", sha("d100"), model.StatusSuccess, "")
	f.report("dev-2", shop, "dev", "eu", sha("d100"), model.StatusSuccess, "")
	f.at(start.Add(time.Hour)).assign(shop, "dev", "eu", "1.1.0", sha("d110"))
	f.at(start.Add(70*time.Minute)).report("dev-1", shop, "dev", "eu", sha("d110"), model.StatusSuccess, "")
	f.at(start.Add(80*time.Minute)).report("dev-2", shop, "dev", "eu", sha("d110"), model.StatusSuccess, "")
	f.at(start.Add(2*time.Hour)).assign(shop, "prod", "eu", "1.0.0", sha("e100"))
	f.assign(shop, "prod", "us", "1.0.0", sha("e100"))
	for i := 1; i <= 3; i++ {
		f.at(start.Add(2*time.Hour+time.Duration(i)*time.Minute)).report(fmt.Sprintf("prod-%d", i), shop, "prod", "eu", sha("e100"), model.StatusSuccess, "")
	}
	f.at(start.Add(5*time.Hour)).assign(shop, "prod", "eu", "1.1.0", sha("e110"))
	f.at(start.Add(5*time.Hour+time.Minute)).report("prod-1", shop, "prod", "eu", sha("e110"), model.StatusSuccess, "")
	f.report("prod-2", shop, "prod", "eu", sha("e110"), model.StatusFailure, "crash loop")
	f.report("prod-3", shop, "prod", "eu", sha("e110"), model.StatusInProgress, "")
	f.report("stray", workload{"acme", "shop", "x", "https://github.com/acme/other"}, "prod", "y", sha("f00d"), model.StatusSuccess, "")
	f.at(start.Add(6 * time.Hour))
	return f, start
}

func TestSearch(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, start := uiFleet(t, st)
		// An abbreviated commit, in Flux's form.
		res, _, err := f.rep.Search(ctx, "dev@sha1:"+sha("d110")[:8], reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Assignments) != 1 {
			t.Fatalf("d110: %+v", res.Assignments)
		}
		a := res.Assignments[0]
		if a.Environment != "dev" || a.Version != "1.1.0" || a.MatchedBy != reports.MatchCommit || !a.Scheduled ||
			a.Success != 2 || a.LagSeconds == nil || *a.LagSeconds != (20*time.Minute).Seconds() {
			t.Errorf("d110: %+v (lag %v)", a, a.LagSeconds)
		}
		if len(res.Hosts) != 2 || res.Hosts[0].Host != "dev-1" || res.Hosts[0].Version != "1.1.0" {
			t.Errorf("d110 hosts: %+v", res.Hosts)
		}
		// A version: every assignment of it, dev before prod, with counts.
		res, _, err = f.rep.Search(ctx, "1.1.0", reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range res.Assignments {
			got = append(got, fmt.Sprintf("%s/%s %d/%d/%d/%d", a.Environment, a.Target, a.Success, a.Failure, a.InProgress, a.NotReported))
		}
		if fmt.Sprint(got) != "[dev/eu 2/0/0/0 prod/eu 1/1/1/0]" {
			t.Errorf("1.1.0: %v", got)
		}
		if len(res.Hosts) != 5 {
			t.Errorf("1.1.0 hosts: %+v", res.Hosts)
		}
		// A commit only an untargeted host reports.
		res, _, err = f.rep.Search(ctx, sha("f00d")[:10], reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Assignments) != 0 || len(res.Hosts) != 1 || res.Hosts[0].Host != "stray" || res.Hosts[0].Target != "" {
			t.Errorf("f00d: %+v", res)
		}
		// Nothing, and no query.
		if res, _, err := f.rep.Search(ctx, "9.9.9", reports.Page{}); err != nil || len(res.Assignments)+len(res.Hosts) != 0 {
			t.Errorf("9.9.9: %+v %v", res, err)
		}
		if _, _, err := f.rep.Search(ctx, "  ", reports.Page{}); !errors.Is(err, reports.ErrEmptyQuery) {
			t.Errorf("empty query: %v", err)
		}
		_ = start
	})
}

// Search pages by key through both of its lists, the same whichever way it
// finds the hosts: every match once, in order, on both engines.
func TestSearchPages(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, _ := uiFleet(t, st)
		// More of 1.1.0: a second workload whose hosts sort around the
		// others', and a host of two reconcilers.
		web := workload{"acme", "shop", "web", "https://github.com/acme/gitops-web"}
		f.assign(web, "dev", "eu", "1.1.0", sha("a110"))
		for _, h := range []string{"dev-1", "dev-15", "dev-3", "a-first", "zz-last"} {
			f.report(h, web, "dev", "eu", sha("a110"), model.StatusSuccess, "")
		}
		// Unpaged: every match.
		all, next, err := f.rep.Search(ctx, "1.1.0", reports.Page{Limit: reports.MaxLimit})
		if err != nil || next != "" || all.Truncated {
			t.Fatalf("1.1.0 in one page: next %q truncated %v, %v", next, all.Truncated, err)
		}
		if len(all.Assignments) != 3 || len(all.Hosts) != 10 {
			t.Fatalf("1.1.0: %d assignments, %d hosts, want 3 and 10", len(all.Assignments), len(all.Hosts))
		}
		set := func(r reports.SearchResult) (as, hs []string) {
			for _, a := range r.Assignments {
				as = append(as, fmt.Sprintf("%s/%s/%s %s %d/%d/%d/%d", a.Workload, a.Environment, a.Target, a.Version, a.Success, a.Failure, a.InProgress, a.NotReported))
			}
			for _, h := range r.Hosts {
				hs = append(hs, fmt.Sprintf("%s %s %s/%s %s %s", h.Host, h.Reconciler, h.Environment, h.Target, h.Version, h.Status))
			}
			return as, hs
		}
		wantA, wantH := set(all)
		slices.Sort(wantA)
		slices.Sort(wantH)
		for _, walk := range []int64{0, 1 << 40} {
			restore := reports.SetSearchWalkFactor(walk)
			for _, limit := range []int{1, 2, 3, 4} {
				var gotA, gotH []string
				var lastHost string
				p := reports.Page{Limit: limit}
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatalf("walk %d, limit %d: no end of pages", walk, limit)
					}
					res, next, err := f.rep.Search(ctx, "1.1.0", p)
					if err != nil {
						t.Fatal(err)
					}
					if len(res.Assignments) > limit || len(res.Hosts) > limit || res.Truncated != (next != "") {
						t.Fatalf("walk %d, limit %d: a page of %d assignments, %d hosts, truncated %v, next %q",
							walk, limit, len(res.Assignments), len(res.Hosts), res.Truncated, next)
					}
					for _, h := range res.Hosts {
						if h.Host < lastHost {
							t.Errorf("walk %d, limit %d: host %s after %s", walk, limit, h.Host, lastHost)
						}
					}
					if len(res.Hosts) > 0 {
						lastHost = slices.MaxFunc(res.Hosts, func(a, b reports.SearchHost) int { return strings.Compare(a.Host, b.Host) }).Host
					}
					as, hs := set(res)
					gotA, gotH = append(gotA, as...), append(gotH, hs...)
					if next == "" {
						break
					}
					p.Cursor = next
				}
				slices.Sort(gotA)
				slices.Sort(gotH)
				if !slices.Equal(gotA, wantA) || !slices.Equal(gotH, wantH) {
					t.Errorf("walk %d, limit %d: paged\n%q\n%q\nwant\n%q\n%q", walk, limit, gotA, gotH, wantA, wantH)
				}
			}
			// A commit prefix, untargeted hosts included.
			res, _, err := f.rep.Search(ctx, sha("f00d")[:10], reports.Page{Limit: 1})
			if err != nil || len(res.Hosts) != 1 || res.Hosts[0].Host != "stray" || res.Truncated {
				t.Errorf("walk %d: f00d: %+v %v", walk, res, err)
			}
			restore()
		}
		if _, _, err := f.rep.Search(ctx, "1.1.0", reports.Page{Cursor: "bm90IGEgY3Vyc29y"}); !errors.Is(err, reports.ErrBadCursor) {
			t.Errorf("a cursor of no search: %v", err)
		}
	})
}

// walkPages reads every page of a report of the given size, following its
// cursor; more than 1,000 pages fail the test (a cursor that never ends).
func walkPages[T any](t *testing.T, limit int, get func(reports.Page) ([]T, string, error)) [][]T {
	t.Helper()
	var pages [][]T
	p := reports.Page{Limit: limit}
	for range 1000 {
		rows, next, err := get(p)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, rows)
		if next == "" {
			return pages
		}
		p.Cursor = next
	}
	t.Fatalf("limit %d: more than 1000 pages", limit)
	return nil
}

// stateLine is an Environment State row in a line: environment/target,
// scheduled version (- for none), deployed version, status and hosts.
func stateLine(r reports.EnvironmentStateRow) string {
	sched := "-"
	if r.Scheduled != nil {
		sched = r.Scheduled.Version
	}
	return fmt.Sprintf("%s/%s %s %s %s %d", r.Environment, r.Target, sched, r.DeployedVersion, r.Status, r.Hosts)
}

// stateLines is stateLine of each row.
func stateLines(rows []reports.EnvironmentStateRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, stateLine(r))
	}
	return out
}

func TestTimeTravel(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, start := uiFleet(t, st)
		state := func(at time.Time, flt reports.Filter) []string {
			t.Helper()
			rows, _, err := f.rep.EnvironmentStateAt(ctx, flt, at, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			return stateLines(rows)
		}
		// Now, time travel agrees with Environment State row for row.
		for _, flt := range []reports.Filter{{}, {Environment: "prod"}, {Status: "success"}, {Status: "failure"}, {Host: "prod-2"}} {
			now, _, err := f.rep.EnvironmentState(ctx, flt, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := state(start.Add(6*time.Hour), flt), stateLines(now); !slices.Equal(got, want) {
				t.Errorf("at now, %+v:\n%q\nEnvironment State:\n%q", flt, got, want)
			}
		}
		// At every time, its pages of any size are the whole in order, and
		// its host counts are Host State's hosts then, grouped.
		for _, at := range []time.Time{start.Add(90 * time.Minute), start.Add(4 * time.Hour), start.Add(5*time.Hour + 30*time.Minute), start.Add(6 * time.Hour)} {
			for _, flt := range []reports.Filter{{}, {Status: "success"}} {
				whole := state(at, flt)
				for _, limit := range []int{1, 2, 3} {
					var paged []string
					for _, rows := range walkPages(t, limit, func(p reports.Page) ([]reports.EnvironmentStateRow, string, error) {
						return f.rep.EnvironmentStateAt(ctx, flt, at, p)
					}) {
						if len(rows) > limit && rows[0].TargetRef != rows[len(rows)-1].TargetRef {
							t.Errorf("at %s, limit %d: a page of %d rows over several targets", at.Sub(start), limit, len(rows))
						}
						for _, r := range rows {
							paged = append(paged, stateLine(r))
						}
					}
					if !slices.Equal(paged, whole) {
						t.Errorf("at %s, %+v, limit %d: paged\n%q\nwhole\n%q", at.Sub(start), flt, limit, paged, whole)
					}
				}
			}
			hosts, _, err := f.rep.HostStateAt(ctx, reports.Filter{}, at, reports.Page{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			groups := map[string]int{}
			for _, h := range hosts {
				groups[fmt.Sprintf("%s/%s %s %s", h.Environment, h.Target, h.Version, h.Status)]++
			}
			rows, _, err := f.rep.EnvironmentStateAt(ctx, reports.Filter{}, at, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			counted := map[string]int{}
			for _, r := range rows {
				if r.Hosts > 0 {
					counted[fmt.Sprintf("%s/%s %s %s", r.Environment, r.Target, r.DeployedVersion, r.Status)] = r.Hosts
				}
			}
			if !maps.Equal(groups, counted) {
				t.Errorf("at %s: Host State grouped %v, Environment State %v", at.Sub(start), groups, counted)
			}
		}
		// At +90m: dev on 1.1.0, prod not assigned yet.
		if got := fmt.Sprint(state(start.Add(90*time.Minute), reports.Filter{})); got != "[dev/eu 1.1.0 1.1.0 success 2]" {
			t.Errorf("at +90m: %s", got)
		}
		// At +4h: prod all on 1.0.0; us without hosts.
		if got := fmt.Sprint(state(start.Add(4*time.Hour), reports.Filter{Environment: "prod"})); got != "[prod/eu 1.0.0 1.0.0 success 3 prod/us 1.0.0   0]" {
			t.Errorf("at +4h: %s", got)
		}
		// Host State then, paged one by one, and filtered by status.
		var hosts []string
		p := reports.Page{Limit: 1}
		for range 10 {
			rows, next, err := f.rep.HostStateAt(ctx, reports.Filter{Environment: "prod"}, start.Add(5*time.Hour+30*time.Minute), p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				hosts = append(hosts, fmt.Sprintf("%s %s %s %s", r.Host, r.Version, r.Status, r.StatusSince.Sub(start)))
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if got := fmt.Sprint(hosts); got != "[prod-1 1.1.0 success 5h1m0s prod-2 1.1.0 failure 5h1m0s prod-3 1.1.0 in_progress 5h1m0s]" {
			t.Errorf("host state at +5h30m: %s", got)
		}
		rows, _, err := f.rep.HostStateAt(ctx, reports.Filter{Status: "success"}, start.Add(3*time.Hour), reports.Page{Limit: 2})
		if err != nil || len(rows) != 2 || rows[0].Host != "dev-1" || rows[1].Host != "dev-2" {
			t.Errorf("successes at +3h: %+v %v", rows, err)
		}
		// Before anything: nothing but targets that existed.
		if got := state(start.Add(-time.Hour), reports.Filter{}); len(got) != 0 {
			t.Errorf("before the start: %v", got)
		}
		// A new message at the same status is a change of its own: the
		// status's since stays at the run's first change, and a status
		// filter on time applies to that since.
		f.at(start.Add(5*time.Hour+10*time.Minute)).report("prod-2", shop, "prod", "eu", sha("e110"), model.StatusFailure, "crash loop, again")
		rows, _, err = f.rep.HostStateAt(ctx, reports.Filter{Host: "prod-2"}, start.Add(5*time.Hour+30*time.Minute), reports.Page{})
		if err != nil || len(rows) != 1 || rows[0].Message != "crash loop, again" || rows[0].StatusSince.Sub(start) != 5*time.Hour+time.Minute ||
			rows[0].LastReportAt.Sub(start) != 5*time.Hour+10*time.Minute {
			t.Errorf("prod-2 at +5h30m after a new message: %+v %v", rows, err)
		}
		if got := fmt.Sprint(state(start.Add(5*time.Hour+30*time.Minute), reports.Filter{Since: start.Add(5*time.Hour + 5*time.Minute)})); got != "[]" {
			t.Errorf("failing since +5h5m, at +5h30m: %s, want none (prod-2 fails since +5h1m)", got)
		}
		if got := fmt.Sprint(state(start.Add(5*time.Hour+30*time.Minute), reports.Filter{Status: "failure", Until: start.Add(5*time.Hour + 5*time.Minute)})); got != "[prod/eu 1.1.0 1.1.0 failure 1]" {
			t.Errorf("failing until +5h5m, at +5h30m: %s", got)
		}
		// A retired reconciler counts until its retirement, not after.
		f.at(start.Add(5*time.Hour + 40*time.Minute))
		if ok, err := f.ing.RetireReconciler(ctx, "prod-1", shop.name); err != nil || !ok {
			t.Fatalf("retire prod-1: %v %v", ok, err)
		}
		before := fmt.Sprint(state(start.Add(5*time.Hour+30*time.Minute), reports.Filter{Environment: "prod"}))
		after := fmt.Sprint(state(start.Add(5*time.Hour+50*time.Minute), reports.Filter{Environment: "prod"}))
		if !strings.Contains(before, "1.1.0 success 1") || strings.Contains(after, "success") {
			t.Errorf("prod-1 retired at +5h40m: at +5h30m %s, at +5h50m %s", before, after)
		}
	})
}

func TestCompare(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, _ := uiFleet(t, st)
		c, _, err := f.rep.Compare(ctx, reports.Filter{}, "dev", "prod", reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Items) != 1 {
			t.Fatalf("items: %+v", c.Items)
		}
		r := c.Items[0]
		if r.Workload != "api" || !r.Differs || len(r.From.Targets) != 1 || len(r.To.Targets) != 2 {
			t.Errorf("row: %+v", r)
		}
		if len(r.From.Deployed) != 1 || r.From.Deployed[0].Commit != sha("d110") || r.From.Deployed[0].Hosts != 2 ||
			r.From.Deployed[0].ManifestsRepo != shop.repo {
			t.Errorf("dev deployed: %+v", r.From.Deployed)
		}
		if len(r.To.Deployed) != 1 || r.To.Deployed[0].Version != "1.1.0" || r.To.Deployed[0].Hosts != 3 || r.To.Deployed[0].Succeeded != 1 {
			t.Errorf("prod deployed: %+v", r.To.Deployed)
		}
		if len(r.To.Scheduled) != 2 {
			t.Errorf("prod scheduled: %+v", r.To.Scheduled)
		}
		if _, _, err := f.rep.Compare(ctx, reports.Filter{}, "dev", "dev", reports.Page{}); !errors.Is(err, reports.ErrCompareEnvironments) {
			t.Errorf("same environment: %v", err)
		}
	})
}

// A host registered but not reported yet deploys no version: Compare lists
// it with no commit, Discrepancies does not count it, and neither makes
// two environments that run the same version differ.
func TestHostsNotReportedMakeNoDifference(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		f.assign(shop, "prod", "eu", "0.9.0", sha("e090"))
		f.at(start.Add(time.Hour))
		for env, commit := range map[string]string{"dev": sha("d100"), "prod": sha("e100")} {
			f.assign(shop, env, "eu", "1.0.0", commit)
			f.report(env+"-1", shop, env, "eu", commit, model.StatusSuccess, "")
		}
		compare := func() reports.ComparisonRow {
			t.Helper()
			c, _, err := f.rep.Compare(ctx, reports.Filter{}, "dev", "prod", reports.Page{})
			if err != nil || len(c.Items) != 1 {
				t.Fatalf("compare: %+v %v", c.Items, err)
			}
			return c.Items[0]
		}
		discrepancy := func() reports.DiscrepancyRow {
			t.Helper()
			d, _, err := f.rep.Discrepancies(ctx, reports.Filter{}, nil, reports.Page{})
			if err != nil || len(d.Items) != 1 {
				t.Fatalf("discrepancies: %+v %v", d.Items, err)
			}
			return d.Items[0]
		}
		if r, d := compare(), discrepancy(); r.Differs || d.Differs {
			t.Fatalf("the same version in both: Compare differs %v, Discrepancies differs %v", r.Differs, d.Differs)
		}
		f.report("prod-2", shop, "prod", "eu", "", "", "")
		r := compare()
		if r.Differs {
			t.Errorf("a host not reported yet made prod differ: %+v", r.To.Deployed)
		}
		if d := discrepancy(); d.Differs || fmt.Sprint(d.Cells[1].Deployed) != "[{1.0.0 1}]" {
			t.Errorf("Discrepancies with a host not reported yet: differs %v, prod deployed %v", d.Differs, d.Cells[1].Deployed)
		}
		var none []reports.DeployedCommit
		for _, d := range r.To.Deployed {
			if d.Commit == "" {
				none = append(none, d)
			}
		}
		if len(none) != 1 || none[0].Hosts != 1 || none[0].Succeeded != 0 || none[0].VersionKnown {
			t.Errorf("prod's host not reported yet: %+v", r.To.Deployed)
		}
		// Once it reports another version, prod differs.
		f.report("prod-2", shop, "prod", "eu", sha("e090"), model.StatusSuccess, "")
		if r, d := compare(), discrepancy(); !r.Differs || !d.Differs {
			t.Errorf("a host on 0.9.0: prod differs in Compare %v, in Discrepancies %v", r.Differs, d.Differs)
		}
	})
}

func TestOverviewAndHost(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, start := uiFleet(t, st)
		o, _, err := f.rep.Overview(ctx, reports.Filter{}, nil, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(o.Environments) != "[dev prod]" || len(o.Items) != 1 {
			t.Fatalf("overview: %+v", o)
		}
		states := o.Items[0].States
		if states[0].State != reports.CellUpToDate || states[0].UpToDate != 2 ||
			states[1].State != reports.CellFailing || states[1].Failed != 1 || states[1].InProgress != 1 || states[1].UpToDate != 1 {
			t.Errorf("cells: %+v", states)
		}
		// stray and every host count; prod-2 fails; the stray host is
		// unplaced; the dev hosts last reported at +80m: stale at +6h.
		h, err := f.rep.Headline(ctx, reports.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if h != (reports.Headline{Hosts: 6, FailingHosts: 1, DriftedHosts: 1, StaleHosts: 2, RolloutsInProgress: 1}) {
			t.Errorf("headline: %+v", h)
		}
		// One host (the maintained host counts), and one environment (its
		// reconcilers).
		for flt, want := range map[reports.Filter]reports.Headline{
			{Host: "prod-2"}:      {Hosts: 1, FailingHosts: 1, RolloutsInProgress: 0},
			{Host: "dev-1"}:       {Hosts: 1, StaleHosts: 1},
			{Environment: "prod"}: {Hosts: 3, FailingHosts: 1, RolloutsInProgress: 1},
		} {
			if h, err := f.rep.Headline(ctx, flt); err != nil || h != want {
				t.Errorf("headline of %+v: %+v (%v), want %+v", flt, h, err, want)
			}
		}
		drift, _, err := f.rep.DriftOfKinds(ctx, reports.Filter{}, []string{reports.DriftUnplaced, reports.DriftNoHosts}, 0, reports.Page{})
		if err != nil || len(drift) != 2 {
			t.Errorf("drift of kinds: %+v %v", drift, err)
		}
		// The stray host's row names the endpoint no target has.
		for _, d := range drift {
			if d.Kind == reports.DriftUnplaced && (d.Host != "stray" || d.Message != "no target has the endpoint https://github.com/acme/other/prod/y; ") {
				t.Errorf("unplaced drift: host %q, message %q", d.Host, d.Message)
			}
		}

		hd, err := f.rep.Host(ctx, "prod-2")
		if err != nil {
			t.Fatal(err)
		}
		if h := hd; len(h.Reconcilers) != 1 || h.Reconcilers[0].Status != "failure" || len(h.Reconcilers[0].Targets) != 1 ||
			h.Reconcilers[0].Repo != shop.repo || h.Reconcilers[0].Path != "eu" {
			t.Errorf("host: %+v", h)
		}
		if _, err := f.rep.Host(ctx, "nope"); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("unknown host: %v", err)
		}
		var events []string
		p := reports.Page{Limit: 1}
		for range 5 {
			evs, next, err := f.rep.HostHistory(ctx, "prod-2", reports.Filter{}, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				events = append(events, fmt.Sprintf("%s %s %s", e.At.Sub(start), e.Status, e.Versions[0].Version))
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if got := fmt.Sprint(events); got != "[5h1m0s failure 1.1.0 2h2m0s success 1.0.0]" {
			t.Errorf("host history: %s", got)
		}
		names, err := f.rep.Names(ctx)
		if err != nil || fmt.Sprint(names.Environments) != "[dev prod]" || fmt.Sprint(names.Targets) != "[eu us]" {
			t.Errorf("names: %+v %v", names, err)
		}
		repos, err := f.rep.Repositories(ctx, reports.Filter{Environment: "prod"})
		if err != nil || len(repos.Manifests) != 2 {
			t.Errorf("repositories: %+v %v", repos, err)
		}
		if empty, err := f.rep.Empty(ctx); empty || err != nil {
			t.Errorf("Empty: %v %v", empty, err)
		}
	})
}

func TestHostStateDeploying(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, start := uiFleet(t, st)
		// A commit first seen before any assignment of its target: unknown.
		f.report("prod-9", shop, "prod", "ap", sha("0bad"), model.StatusSuccess, "")
		f.at(start.Add(7*time.Hour)).assign(shop, "prod", "ap", "1.1.0", sha("a110"))
		count := func(rows []reports.HostStateRow, _ string, err error) int {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return len(rows)
		}
		prod := reports.Filter{Environment: "prod"}
		// Each Environment State row's hosts are the hosts Host State lists
		// for its target, status and deployed version.
		rows, _, err := f.rep.EnvironmentState(ctx, reports.Filter{}, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			d := reports.Deployed{Version: r.DeployedVersion, Unknown: !r.DeployedKnown}
			flt := reports.Filter{Workspace: r.Workspace, Application: r.Application, Workload: r.Workload, Environment: r.Environment, Target: r.Target, Status: r.Status}
			if r.Hosts == 0 {
				continue
			}
			if n := count(f.rep.HostStateDeploying(ctx, flt, d, reports.Page{Limit: 1000})); n != r.Hosts {
				t.Errorf("%+v: Host State lists %d hosts", r, n)
			}
		}
		if n := count(f.rep.HostStateDeploying(ctx, prod, reports.Deployed{Unknown: true}, reports.Page{})); n != 1 {
			t.Errorf("unknown: %d", n)
		}
		if n := count(f.rep.HostStateAtDeploying(ctx, prod, start.Add(4*time.Hour), reports.Deployed{Version: "1.0.0"}, reports.Page{Limit: 2})); n != 2 {
			t.Errorf("1.0.0 at +4h, page of 2: %d", n)
		}
		if n := count(f.rep.HostStateAtDeploying(ctx, prod, start.Add(4*time.Hour), reports.Deployed{Version: "1.1.0"}, reports.Page{})); n != 0 {
			t.Errorf("1.1.0 at +4h: %d", n)
		}
	})
}

// The reports that page by key give, page after page, what one page gives
// whole, with any page size.
func TestPagesJoinUp(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, start := uiFleet(t, st)
		web := workload{"acme", "shop", "web", "https://github.com/acme/gitops-web"}
		f.at(start.Add(3*time.Hour)).assign(web, "dev", "eu", "2.0.0", sha("a200"))
		f.assign(web, "prod", "eu", "2.0.0", sha("b200"))
		f.report("dev-1", web, "dev", "eu", sha("a200"), model.StatusFailure, "boom")
		f.at(start.Add(4*time.Hour)).assign(web, "dev", "eu", "2.0.1", sha("a201"))
		f.report("dev-1", web, "dev", "eu", sha("a201"), model.StatusSuccess, "")
		f.report("prod-1", web, "prod", "eu", sha("b200"), model.StatusSuccess, "")
		f.at(start.Add(6 * time.Hour))
		since := reports.Filter{Since: start}
		reps := map[string]func(reports.Page) (any, string, error){
			"dora": func(p reports.Page) (any, string, error) {
				rs, next, err := f.rep.DORA(ctx, since, p)
				return rs, next, err
			},
			"dora prod": func(p reports.Page) (any, string, error) {
				rs, next, err := f.rep.DORA(ctx, reports.Filter{Since: start, Environment: "prod"}, p)
				return rs, next, err
			},
			"dora host": func(p reports.Page) (any, string, error) {
				rs, next, err := f.rep.DORA(ctx, reports.Filter{Since: start, Host: "dev-1"}, p)
				return rs, next, err
			},
			"environment state": func(p reports.Page) (any, string, error) {
				rs, next, err := f.rep.EnvironmentState(ctx, reports.Filter{}, p)
				return rs, next, err
			},
			"host state prod success": func(p reports.Page) (any, string, error) {
				rs, next, err := f.rep.HostState(ctx, reports.Filter{Environment: "prod", Status: "success"}, p)
				return rs, next, err
			},
			"discrepancies": func(p reports.Page) (any, string, error) {
				d, next, err := f.rep.Discrepancies(ctx, reports.Filter{}, nil, p)
				return d.Items, next, err
			},
			// A workload filter and a target filter (environment, host)
			// with the page's cursor.
			"discrepancies prod": func(p reports.Page) (any, string, error) {
				d, next, err := f.rep.Discrepancies(ctx, reports.Filter{Environment: "prod", Application: "shop"}, nil, p)
				return d.Items, next, err
			},
			// Three sources (drift rows, stale hosts, targets without
			// hosts), each cut to the page on its own.
			"drift": func(p reports.Page) (any, string, error) {
				return f.rep.Drift(ctx, reports.Filter{}, time.Hour, p)
			},
			"drift prod": func(p reports.Page) (any, string, error) {
				return f.rep.Drift(ctx, reports.Filter{Environment: "prod"}, time.Hour, p)
			},
			"overview host": func(p reports.Page) (any, string, error) {
				o, next, err := f.rep.Overview(ctx, reports.Filter{Host: "prod-1"}, nil, p)
				return o.Items, next, err
			},
			"compare": func(p reports.Page) (any, string, error) {
				c, next, err := f.rep.Compare(ctx, reports.Filter{}, "dev", "prod", p)
				return c.Items, next, err
			},
		}
		rows := func(v any) []string {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var raw []json.RawMessage
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			out := make([]string, len(raw))
			for i, r := range raw {
				out[i] = string(r)
			}
			return out
		}
		for name, rep := range reps {
			v, next, err := rep(reports.Page{Limit: reports.MaxLimit})
			if err != nil || next != "" {
				t.Fatalf("%s: %v, next %q", name, err, next)
			}
			whole := rows(v)
			if len(whole) < 2 {
				t.Errorf("%s: %d rows, too few to page", name, len(whole))
			}
			for _, limit := range []int{1, 2} {
				var got []string
				p := reports.Page{Limit: limit}
				for range 50 {
					v, next, err := rep(p)
					if err != nil {
						t.Fatalf("%s, limit %d: %v", name, limit, err)
					}
					got = append(got, rows(v)...)
					if p.Cursor = next; next == "" {
						break
					}
				}
				if !slices.Equal(got, whole) {
					t.Errorf("%s, pages of %d:\n%s\nwhole:\n%s", name, limit, strings.Join(got, "\n"), strings.Join(whole, "\n"))
				}
			}
		}
	})
}

// Environment History pages by target, then assignment, newest first: any
// page size walks the same rows as one page, with or without a status or
// host filter.
func TestHistoryPages(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, _ := uiFleet(t, st)
		line := func(r reports.HistoryRow) string {
			return fmt.Sprintf("%s/%s %s %s %d/%d/%d/%d", r.Environment, r.Target, r.Version, r.AssignedAt.Format(time.RFC3339),
				r.Success, r.Failure, r.InProgress, r.NotReported)
		}
		for _, flt := range []reports.Filter{{}, {Status: "success"}, {Status: "failure"}, {Host: "prod-2"}, {Environment: "prod"}} {
			all, next, err := f.rep.History(ctx, flt, reports.Page{})
			if err != nil || next != "" {
				t.Fatalf("%+v: %v, next %q", flt, err, next)
			}
			var whole []string
			for _, r := range all {
				whole = append(whole, line(r))
			}
			if len(whole) == 0 && flt.Status != "failure" {
				t.Errorf("%+v: no rows", flt)
			}
			for _, limit := range []int{1, 2, 3} {
				var paged []string
				pages := walkPages(t, limit, func(p reports.Page) ([]reports.HistoryRow, string, error) { return f.rep.History(ctx, flt, p) })
				for i, rows := range pages {
					if next := i < len(pages)-1; len(rows) > limit || (next && len(rows) < limit) {
						t.Errorf("%+v, limit %d: a page of %d rows, more after it: %v", flt, limit, len(rows), next)
					}
					for _, r := range rows {
						paged = append(paged, line(r))
					}
				}
				if !slices.Equal(paged, whole) {
					t.Errorf("%+v, limit %d: paged\n%q\nwhole\n%q", flt, limit, paged, whole)
				}
			}
		}
	})
}

// Host State and Environment State name the version a host deploys: the
// scheduled one when its commit resolves to the scheduled assignment, the
// earlier one it resolves to, or none (unknown).
func TestDeployedVersions(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, start := uiFleet(t, st)
		// A commit first seen before any assignment of its target: unknown.
		f.report("dev-3", shop, "dev", "ap", sha("0bad"), model.StatusFailure, "")
		f.at(start.Add(7*time.Hour)).assign(shop, "dev", "eu", "1.2.0", sha("d120"))
		f.assign(shop, "dev", "ap", "1.2.0", sha("d1a0"))
		f.report("dev-2", shop, "dev", "eu", sha("d120"), model.StatusSuccess, "")
		dev := reports.Filter{Environment: "dev"}
		rows, _, err := f.rep.HostState(ctx, dev, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%s %s %q %v %v %s", r.Host, r.Target, r.Version, r.VersionKnown, r.UpToDate, r.Scheduled))
		}
		want := []string{`dev-1 eu "1.1.0" true false 1.2.0`, `dev-2 eu "1.2.0" true true 1.2.0`, `dev-3 ap "" false false 1.2.0`}
		if !slices.Equal(got, want) {
			t.Errorf("host state:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		es, _, err := f.rep.EnvironmentState(ctx, dev, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, r := range es {
			got = append(got, fmt.Sprintf("%s %q %v %v %s %d", r.Target, r.DeployedVersion, r.DeployedKnown, r.UpToDate, r.Status, r.Hosts))
		}
		want = []string{`ap "" false false failure 1`, `eu "1.1.0" true false success 1`, `eu "1.2.0" true true success 1`}
		if !slices.Equal(got, want) {
			t.Errorf("environment state:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
