package reports_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

var shop = workload{"acme", "shop", "api", "https://github.com/acme/shop-gitops"}

func gate(t *testing.T, f *fleet, q reports.GateQuery) reports.Gate {
	t.Helper()
	g, err := f.rep.Gate(ctx, q)
	if err != nil {
		t.Fatalf("Gate(%+v): %v", q, err)
	}
	return g
}

func counts(g reports.Gate) [5]int {
	return [5]int{g.Total, g.Succeeded, g.Failed, g.InProgress, g.NotReported}
}

func TestGate(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f := newFleet(t, st, time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
		hs := hosts("aks-prod", 1, 4)
		f.assign(shop, "prod", "eu", "1.9.0", sha("19"))
		for _, h := range hs {
			f.report(h, shop, "prod", "eu", sha("19"), model.StatusSuccess, "")
		}
		f.at(f.now.Add(time.Hour)).assign(shop, "prod", "eu", "1.10.0", sha("110"))
		q := reports.GateQuery{Target: "eu", Version: "1.10.0"}
		if g := gate(t, f, q); counts(g) != [5]int{4, 0, 0, 0, 4} || g.Done || g.Commit != sha("110") {
			t.Errorf("before any report: %+v", g)
		}
		f.report(hs[0], shop, "prod", "eu", sha("110"), model.StatusInProgress, "")
		f.report(hs[1], shop, "prod", "eu", sha("110"), model.StatusSuccess, "")
		f.report(hs[2], shop, "prod", "eu", sha("110"), model.StatusFailure, "health check failed")
		g := gate(t, f, q)
		if counts(g) != [5]int{4, 1, 1, 1, 1} || g.Done || !g.Failing {
			t.Errorf("mid rollout: %+v", g)
		}
		for _, h := range g.Hosts {
			if h.Host == hs[2] && (h.State != "failed" || h.Message != "health check failed") {
				t.Errorf("failed host: %+v", h)
			}
			if h.Host == hs[1] && (h.Version != "1.10.0" || !h.Since.Equal(f.now)) {
				t.Errorf("succeeded host: %+v, want 1.10.0 since %s", h, f.now)
			}
			// A host that has not reported the version shows what it
			// runs: its version and since when.
			if h.Host == hs[3] && (h.State != "not_reported" || h.Commit != sha("19") || h.Version != "1.9.0" || !h.Since.Equal(f.now.Add(-time.Hour))) {
				t.Errorf("pending host: %+v, want not_reported on 1.9.0 (%s) since %s", h, sha("19"), f.now.Add(-time.Hour))
			}
		}
		for _, h := range hs {
			f.report(h, shop, "prod", "eu", sha("110"), model.StatusSuccess, "")
		}
		// By commit, abbreviated, and by endpoint in the joined form.
		for _, q := range []reports.GateQuery{q, {Target: "eu", Commit: "prod@sha1:" + sha("110")[:8]},
			{Endpoint: "https://github.com/acme/shop-gitops.git/prod/eu", Version: "1.10.0"}} {
			if g := gate(t, f, q); counts(g) != [5]int{4, 4, 0, 0, 0} || !g.Done || g.Failing || g.Version != "1.10.0" {
				t.Errorf("%+v: %+v", q, g)
			}
		}
		// A later commit that does not change eu still counts as 1.10.0.
		f.at(f.now.Add(time.Hour)).report(hs[0], shop, "prod", "eu", sha("99"), model.StatusSuccess, "")
		if g := gate(t, f, q); !g.Done {
			t.Errorf("after a branch-wide commit: %+v", g)
		}
		// A commit the hub cannot place yet: hosts reporting it count.
		f.report(hs[1], shop, "prod", "eu", sha("77"), model.StatusInProgress, "")
		g = gate(t, f, reports.GateQuery{Target: "eu", Commit: sha("77")})
		if counts(g) != [5]int{4, 0, 0, 1, 3} {
			t.Errorf("unplaced commit: %+v", g)
		}
		for _, h := range g.Hosts {
			if (h.Host == hs[1]) != (h.Version == "") {
				t.Errorf("unplaced commit: host %s runs version %q", h.Host, h.Version)
			}
		}
		// Errors name the parameter.
		f.assign(workload{"acme", "shop", "web", shop.repo}, "prod", "eu", "3.0.0", sha("30"))
		for _, c := range []struct {
			q        reports.GateQuery
			param    string
			notFound bool
		}{
			{reports.GateQuery{Target: "eu", Version: "1.10.0"}, "workload", false}, // two workloads have a target eu
			{reports.GateQuery{Target: "us", Version: "1"}, "target", true},
			{reports.GateQuery{Target: "eu", Workload: "api", Version: "7.0.0"}, "version", true},
			{reports.GateQuery{Target: "eu"}, "version", false},
			{reports.GateQuery{Target: "eu", Workload: "api", Commit: "zz"}, "commit", false},
		} {
			_, err := f.rep.Gate(ctx, c.q)
			var ge *reports.GateError
			if !errors.As(err, &ge) || ge.Param != c.param || ge.NotFound != c.notFound {
				t.Errorf("%+v: error %v, want one about %s", c.q, err, c.param)
			}
		}
	})
}

func TestDrift(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		f.assign(shop, "prod", "eu", "1.0.0", sha("10"))
		f.assign(shop, "prod", "us", "1.0.0", sha("10")) // no host reconciles us
		f.report("ok", shop, "prod", "eu", sha("10"), model.StatusSuccess, "")
		f.report("behind", shop, "prod", "eu", sha("10"), model.StatusSuccess, "")
		f.report("silent", shop, "prod", "eu", sha("10"), model.StatusSuccess, "")
		f.at(start.Add(time.Hour)).assign(shop, "prod", "eu", "1.1.0", sha("11"))
		f.at(start.Add(2*time.Hour)).report("ok", shop, "prod", "eu", sha("11"), model.StatusSuccess, "")
		f.report("failing", shop, "prod", "eu", sha("11"), model.StatusFailure, "crash loop")
		f.report("behind", shop, "prod", "eu", sha("10"), model.StatusSuccess, "") // still at 1.0.0
		f.report("hotfix", shop, "prod", "eu", sha("ee"), model.StatusSuccess, "") // a commit seen before... placed later
		f.report("stray", workload{"acme", "shop", "x", "https://github.com/acme/other"}, "prod", "y", sha("12"), model.StatusSuccess, "")
		f.at(start.Add(4 * time.Hour))
		f.report("ok", shop, "prod", "eu", sha("11"), model.StatusSuccess, "")
		f.report("failing", shop, "prod", "eu", sha("11"), model.StatusFailure, "crash loop")
		f.report("behind", shop, "prod", "eu", sha("10"), model.StatusSuccess, "")
		f.report("hotfix", shop, "prod", "eu", sha("ee"), model.StatusSuccess, "")
		f.report("stray", workload{"acme", "shop", "x", "https://github.com/acme/other"}, "prod", "y", sha("12"), model.StatusSuccess, "")

		rows, _, err := f.rep.Drift(ctx, reports.Filter{}, 90*time.Minute, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range rows {
			got[r.Kind+"/"+r.Host+"/"+r.Target] = r.Since.Sub(start).String()
		}
		want := map[string]string{
			"no_hosts//us":      "0s",
			"stale/silent/eu":   "0s",
			"version/behind/eu": "1h0m0s", // since 1.1.0 was scheduled
			"failed/failing/eu": "2h0m0s", // since it failed
			"unplaced/stray/":   "2h0m0s", // its endpoint has no target
			"version/silent/eu": "1h0m0s", // silent, and behind too
		}
		// The hotfix commit was first seen after 1.1.0 was assigned, so by the
		// branch-wide rule it resolves to 1.1.0: no drift.
		if len(got) != len(want) {
			t.Errorf("drift rows %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: since +%s, want +%s (all: %v)", k, got[k], v, got)
			}
		}
		if rows[0].For < rows[len(rows)-1].For {
			t.Error("drift is not ordered longest first")
		}
	})
}

func TestDORA(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		hs := hosts("h", 1, 2)
		deploy := func(day int, version string, fail bool) {
			at := start.Add(time.Duration(day) * 24 * time.Hour)
			build := at.Add(-2 * time.Hour)
			_, err := f.at(at).ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
				Environment: "prod", Target: "eu", Manifests: shop.endpoint("prod", "eu"), Version: version, Commit: sha(version), BuildTime: build})
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range hs {
				status := model.StatusSuccess
				if fail && i == 1 {
					status = model.StatusFailure
				}
				f.at(at.Add(time.Duration(10*(i+1))*time.Minute)).report(h, shop, "prod", "eu", sha(version), status, "")
			}
		}
		deploy(1, "1a", false) // lead time 2h20m (build -> last host)
		deploy(3, "1b", true)  // fails at +20m
		deploy(4, "1c", false) // restores: last success at day 4 +20m
		deploy(6, "1d", false)
		f.at(start.Add(10 * 24 * time.Hour))
		rows, _, err := f.rep.DORA(ctx, reports.Filter{Since: start, Until: start.Add(10 * 24 * time.Hour)}, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 {
			t.Fatalf("rows %+v", rows)
		}
		r := rows[0]
		if r.Deployments != 3 || r.Changes != 4 || r.Failed != 1 || r.PerDay != 0.3 {
			t.Errorf("counts %+v", r)
		}
		if r.ChangeFailureRate == nil || *r.ChangeFailureRate != 0.25 {
			t.Errorf("change failure rate %v", r.ChangeFailureRate)
		}
		if r.LeadTimeSeconds == nil || *r.LeadTimeSeconds != (2*time.Hour+20*time.Minute).Seconds() {
			t.Errorf("lead time %v", r.LeadTimeSeconds)
		}
		if r.TimeToRestoreSeconds == nil || *r.TimeToRestoreSeconds != (24*time.Hour).Seconds() {
			t.Errorf("time to restore %v", r.TimeToRestoreSeconds)
		}
	})
}

func TestPagination(t *testing.T) {
	f := newFleet(t, testenv.NewStore(t, "sqlite"), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	f.assign(shop, "prod", "eu", "1.0.0", sha("10"))
	for _, h := range hosts("h", 1, 25) {
		f.report(h, shop, "prod", "eu", sha("10"), model.StatusSuccess, "")
	}
	var all []string
	p := reports.Page{Limit: 10}
	for {
		rows, next, err := f.rep.HostState(ctx, reports.Filter{}, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			all = append(all, r.Host)
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	if len(all) != 25 || all[0] != "h-1" || all[24] != "h-9" {
		t.Errorf("paged hosts %v", all)
	}
	if _, _, err := f.rep.HostState(ctx, reports.Filter{}, reports.Page{Cursor: "garbage!"}); !errors.Is(err, reports.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}
