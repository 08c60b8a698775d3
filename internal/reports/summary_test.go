package reports_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Summary gives, per target, the numbers of Environment State and Drift.
func TestSummary(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, lastHost := mockupFleet(t, st)
		lastHost()
		// A host reporting a commit from before its target's first
		// assignment (unknown version), one applying an endpoint no target
		// has, and a target no host reconciles.
		f.report("canary-1", api, "Prod", "Canary", sha("cccc"), model.StatusSuccess, "")
		f.at(f.now.Add(time.Minute)).assign(api, "Prod", "Canary", "1.1.2", sha("a112c"))
		_, err := f.ing.ApplyReport(ctx, model.Report{Host: "vm-1", HostType: model.HostVM, Reconciler: "agent", ReconcilerType: "agent",
			Endpoint: operator.endpoint("Dev", "nowhere"), Commit: sha("eeee"), Status: model.StatusSuccess})
		if err != nil {
			t.Fatal(err)
		}
		f.assign(api, "Prod", "Empty", "1.1.2", sha("a112e"))
		// A cluster that joins Prod: registered, no report yet.
		if _, err := f.ing.ApplyReport(ctx, model.Report{Host: "prod-cl-21", Reconciler: prometheus.name, ReconcilerType: "flux",
			Endpoint: prometheus.endpoint("Prod", "Edge")}); err != nil {
			t.Fatal(err)
		}

		sum, err := f.rep.Summary(ctx, reports.Filter{}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Unplaced != 1 {
			t.Errorf("unplaced %d, want 1", sum.Unplaced)
		}
		if want := f.now.UTC(); !sum.LastReportAt.Equal(want) {
			t.Errorf("last report at %v, want %v", sum.LastReportAt, want)
		}

		byTarget := map[reports.TargetRef]reports.TargetSummary{}
		for _, s := range sum.Targets {
			byTarget[s.TargetRef] = s
		}
		dev := func(w workload, target string) reports.TargetSummary {
			return byTarget[reports.TargetRef{Workspace: w.ws, Application: w.app, Workload: w.name, Environment: "Dev", Target: target}]
		}
		got := func(s reports.TargetSummary) string {
			since := "-"
			if s.RolloutSince != nil {
				since = s.RolloutSince.Format("15:04")
			}
			return fmt.Sprintf("hosts %d, at scheduled %d, statuses %v, drift %v, rollout since %s", s.Hosts, s.AtScheduled, s.ByStatus, s.Drifted, since)
		}
		for _, c := range []struct {
			s    reports.TargetSummary
			want string
		}{
			// 1.1.5 scheduled at 14:00: 8 hosts run it, 40 are still on 1.1.4.
			{dev(api, "Functional Test"), "hosts 48, at scheduled 8, statuses map[failure:25 in_progress:15 success:8], drift map[stale:48 version:40], rollout since 14:00"},
			{dev(operator, "Dev Test"), "hosts 48, at scheduled 48, statuses map[success:48], drift map[stale:32], rollout since -"},
			{dev(prometheus, "Edge"), "hosts 28, at scheduled 0, statuses map[in_progress:28], drift map[stale:28 version:28], rollout since 16:00"},
		} {
			if g := got(c.s); g != c.want {
				t.Errorf("%s/%s:\n got %s\nwant %s", c.s.Workload, c.s.Target, g, c.want)
			}
		}

		// Every count is the one Drift and Environment State give.
		drift, _, err := f.rep.Drift(ctx, reports.Filter{}, time.Hour, reports.Page{Limit: reports.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		wantDrift := map[reports.TargetRef]map[string]int{}
		noHosts := map[reports.TargetRef]bool{}
		for _, d := range drift {
			if d.Kind == reports.DriftNoHosts {
				noHosts[d.TargetRef] = true
				continue
			}
			if wantDrift[d.TargetRef] == nil {
				wantDrift[d.TargetRef] = map[string]int{}
			}
			wantDrift[d.TargetRef][d.Kind]++
		}
		state, _, err := f.rep.EnvironmentState(ctx, reports.Filter{}, reports.Page{Limit: reports.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		wantHosts := map[reports.TargetRef]int{}
		for _, r := range state {
			wantHosts[r.TargetRef] += r.Hosts
		}
		if len(sum.Targets) != len(wantHosts) {
			t.Errorf("%d targets, Environment State has %d", len(sum.Targets), len(wantHosts))
		}
		for _, s := range sum.Targets {
			if s.Hosts != wantHosts[s.TargetRef] {
				t.Errorf("%+v: %d hosts, Environment State says %d", s.TargetRef, s.Hosts, wantHosts[s.TargetRef])
			}
			if (s.Hosts == 0) != noHosts[s.TargetRef] {
				t.Errorf("%+v: %d hosts, but Drift no_hosts is %v", s.TargetRef, s.Hosts, noHosts[s.TargetRef])
			}
			for _, kind := range reports.SummaryKinds {
				if s.Drifted[kind] != wantDrift[s.TargetRef][kind] {
					t.Errorf("%+v: %d %s drift, Drift lists %d", s.TargetRef, s.Drifted[kind], kind, wantDrift[s.TargetRef][kind])
				}
			}
		}
		canary := byTarget[reports.TargetRef{Workspace: api.ws, Application: api.app, Workload: api.name, Environment: "Prod", Target: "Canary"}]
		if got(canary) != "hosts 1, at scheduled 0, statuses map[success:1], drift map[unknown:1], rollout since 17:06" {
			t.Errorf("canary: %s", got(canary))
		}
		edge := byTarget[reports.TargetRef{Workspace: prometheus.ws, Application: prometheus.app, Workload: prometheus.name, Environment: "Prod", Target: "Edge"}]
		if edge.ByStatus[reports.StatusNotReported] != 1 || edge.Drifted[reports.DriftNotReported] != 1 || edge.Hosts != 11 {
			t.Errorf("Prod Edge with a cluster not reported yet: %s", got(edge))
		}
		if len(noHosts) != 1 {
			t.Errorf("targets without hosts: %v, want Empty", noHosts)
		}

		// Target filters narrow it.
		one, err := f.rep.Summary(ctx, reports.Filter{Workload: api.name, Environment: "Dev"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(one.Targets) != 1 || got(one.Targets[0]) != got(dev(api, "Functional Test")) {
			t.Errorf("filtered summary %+v", one.Targets)
		}
	})
}
