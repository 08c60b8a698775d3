package reports_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// The fleet behind ../shared/seed/images/DeploymentObservabilityReports.png.
//
// The mockup contradicts itself in two places, and this test follows the
// Discrepancies matrix, the most complete of its four tables:
//   - Environment State labels its API and Pometheus rows QA and Prod, while
//     Discrepancies shows the same numbers (8 + 15 + 25 = 48 hosts, 28 hosts)
//     in the Dev column; here they are in Dev.
//   - Environment History shows 1.1.2 with 47 successes and 1 host in
//     progress, Environment State 48 successes: the two tables are read at
//     two moments, before and after the last host succeeds.
var (
	operator   = workload{"Kaizen", "Kalypso", "Kalypso Operator", "https://github.com/kaizen/kalypso-operator-gitops"}
	api        = workload{"Alpine", "Hello World", "API", "https://github.com/alpine/hello-world-gitops"}
	prometheus = workload{"Platform", "Observability", "Pometheus", "https://github.com/platform/observability-gitops"}
)

func mockupFleet(t *testing.T, st *store.Store) (f *fleet, lastHost func()) {
	day := time.Date(2023, 4, 18, 0, 0, 0, 0, time.UTC)
	hm := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	f = newFleet(t, st, hm(9, 0))
	dev := hosts("Large-cl-us", 1, 48)
	qa := hosts("qa-cl", 1, 34)
	prod := hosts("prod-cl", 1, 20)

	// Kalypso Operator: 1.1.0 -> 1.1.1 -> 1.1.2 in Dev; QA at 1.1.1; Prod at 1.1.0.
	f.at(hm(10, 0)).assign(operator, "Prod", "Dev Test", "1.1.0", sha("aa10"))
	for _, h := range prod[:10] {
		f.report(h, operator, "Prod", "Dev Test", sha("aa10"), model.StatusSuccess, "")
	}
	f.at(hm(11, 0)).assign(operator, "QA", "Dev Test", "1.1.1", sha("bb11"))
	for _, h := range qa {
		f.report(h, operator, "QA", "Dev Test", sha("bb11"), model.StatusSuccess, "")
	}
	f.at(hm(15, 4)).assign(operator, "Dev", "Dev Test", "1.1.0", sha("de6f95c"))
	for i, h := range dev {
		f.at(hm(15, 5).Add(time.Duration(i)*time.Second)).report(h, operator, "Dev", "Dev Test", sha("de6f95c"), model.StatusSuccess, "")
	}
	f.at(hm(15, 14)).assign(operator, "Dev", "Dev Test", "1.1.1", sha("de6f95a"))
	for i, h := range dev {
		status, msg := model.StatusSuccess, ""
		if i >= 40 {
			status, msg = model.StatusFailure, "health check failed"
		}
		f.at(hm(15, 15).Add(time.Duration(i)*time.Second)).report(h, operator, "Dev", "Dev Test", sha("de6f95a"), status, msg)
	}
	f.at(hm(15, 34)).assign(operator, "Dev", "Dev Test", "1.1.2", sha("de6f95b"))
	for i, h := range dev[:47] {
		f.at(hm(15, 34+i)).report(h, operator, "Dev", "Dev Test", sha("de6f95b"), model.StatusSuccess, "")
	}
	f.at(hm(16, 30)).report(dev[47], operator, "Dev", "Dev Test", sha("de6f95b"), model.StatusInProgress, "Reconciliation in progress")

	// API: Dev schedules 1.1.5; 8 hosts run it, 40 are still on 1.1.4.
	f.at(hm(12, 0)).assign(api, "Prod", "Functional Test", "1.1.2", sha("a112"))
	for _, h := range prod {
		f.report(h, api, "Prod", "Functional Test", sha("a112"), model.StatusSuccess, "")
	}
	f.at(hm(12, 10)).assign(api, "QA", "Functional Test", "1.1.3", sha("a113"))
	for _, h := range qa[:15] {
		f.report(h, api, "QA", "Functional Test", sha("a113"), model.StatusSuccess, "")
	}
	f.at(hm(12, 20)).assign(api, "QA", "Functional Test", "1.1.4", sha("a114e"))
	for _, h := range qa[:5] {
		f.report(h, api, "QA", "Functional Test", sha("a114e"), model.StatusSuccess, "")
	}
	f.at(hm(13, 0)).assign(api, "Dev", "Functional Test", "1.1.4", sha("a114"))
	for i, h := range dev {
		switch {
		case i < 8:
			f.report(h, api, "Dev", "Functional Test", sha("a114"), model.StatusSuccess, "")
		case i < 23:
			f.report(h, api, "Dev", "Functional Test", sha("a114"), model.StatusInProgress, "")
		default:
			f.report(h, api, "Dev", "Functional Test", sha("a114"), model.StatusFailure, "ImagePullBackOff")
		}
	}
	f.at(hm(14, 0)).assign(api, "Dev", "Functional Test", "1.1.5", sha("a115"))
	for _, h := range dev[:8] {
		f.report(h, api, "Dev", "Functional Test", sha("a115"), model.StatusSuccess, "")
	}

	// Pometheus: 2.37.6 everywhere; Dev schedules 2.43.0 while its 28 hosts
	// still roll 2.37.6.
	for _, env := range []struct {
		name  string
		hosts []string
	}{{"Prod", prod[:10]}, {"QA", qa[:18]}, {"Dev", dev[:28]}} {
		f.at(hm(9, 30)).assign(prometheus, env.name, "Edge", "2.37.6", sha("2376"+envDigit(env.name)))
		status := model.StatusSuccess
		if env.name == "Dev" {
			status = model.StatusInProgress
		}
		for _, h := range env.hosts {
			f.report(h, prometheus, env.name, "Edge", sha("2376"+envDigit(env.name)), status, "")
		}
	}
	f.at(hm(16, 0)).assign(prometheus, "Dev", "Edge", "2.43.0", sha("2430"))

	f.at(hm(17, 0))
	return f, func() {
		f.at(hm(17, 5)).report(dev[47], operator, "Dev", "Dev Test", sha("de6f95b"), model.StatusSuccess, "")
	}
}

func TestMockupReports(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		f, lastHost := mockupFleet(t, st)

		// Environment History, while the last host is in progress.
		hist, _, err := f.rep.History(ctx, reports.Filter{Workload: "Kalypso Operator", Environment: "Dev"}, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hist {
			got = append(got, fmt.Sprintf("%s %s %s %d/%d/%d/%d", h.Version, h.Commit[:7], h.AssignedAt.Format("15:04"), h.Success, h.Failure, h.InProgress, h.NotReported))
		}
		want := []string{"1.1.2 de6f95b 15:34 47/0/1/0", "1.1.1 de6f95a 15:14 40/8/0/0", "1.1.0 de6f95c 15:04 48/0/0/0"}
		if !slices.Equal(got, want) {
			t.Errorf("Environment History\n got %q\nwant %q", got, want)
		}

		// Host State: Large-cl-us-1..3 at 1.1.2, de6f95b, since 15:34-15:36.
		hs, _, err := f.rep.HostState(ctx, reports.Filter{Workload: "Kalypso Operator", Environment: "Dev"}, reports.Page{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, h := range hs {
			got = append(got, fmt.Sprintf("%s %s %s %s %s %s", h.Host, h.Environment, h.Version, h.Commit[:7], h.Status, h.StatusSince.Format("1/2/2006 15:04")))
		}
		// Host names sort as text: Large-cl-us-1, -10, -11...
		want = []string{"Large-cl-us-1 Dev 1.1.2 de6f95b success 4/18/2023 15:34", "Large-cl-us-10 Dev 1.1.2 de6f95b success 4/18/2023 15:43", "Large-cl-us-11 Dev 1.1.2 de6f95b success 4/18/2023 15:44"}
		if !slices.Equal(got, want) {
			t.Errorf("Host State\n got %q\nwant %q", got, want)
		}
		for _, name := range []string{"Large-cl-us-2", "Large-cl-us-3"} {
			hs, _, _ := f.rep.HostState(ctx, reports.Filter{Workload: "Kalypso Operator", Host: name}, reports.Page{})
			if len(hs) != 1 || hs[0].Version != "1.1.2" || hs[0].StatusSince.Format("15:04") != map[string]string{"Large-cl-us-2": "15:35", "Large-cl-us-3": "15:36"}[name] {
				t.Errorf("Host State of %s: %+v", name, hs)
			}
		}

		lastHost()

		// Environment State.
		es, _, err := f.rep.EnvironmentState(ctx, reports.Filter{Environment: "Dev"}, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, r := range es {
			got = append(got, fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%s|%d", r.Environment, r.Workspace, r.Application, r.Workload, r.Target, r.Scheduled.Version, r.DeployedVersion, r.Status, r.Hosts))
		}
		want = []string{
			"Dev|Alpine|Hello World|API|Functional Test|1.1.5|1.1.4|failure|25",
			"Dev|Alpine|Hello World|API|Functional Test|1.1.5|1.1.4|in_progress|15",
			"Dev|Alpine|Hello World|API|Functional Test|1.1.5|1.1.5|success|8",
			"Dev|Kaizen|Kalypso|Kalypso Operator|Dev Test|1.1.2|1.1.2|success|48",
			"Dev|Platform|Observability|Pometheus|Edge|2.43.0|2.37.6|in_progress|28",
		}
		if !slices.Equal(got, want) {
			t.Errorf("Environment State\n got %q\nwant %q", got, want)
		}

		// Environment Discrepancies, environments from the data in promotion order.
		d, _, err := f.rep.Discrepancies(ctx, reports.Filter{}, nil, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Environments, []string{"Dev", "QA", "Prod"}) {
			t.Errorf("environments %v", d.Environments)
		}
		got = nil
		for _, r := range d.Items {
			line := r.Workload + " | " + strings.Join(r.Cells[0].Scheduled, ",")
			for _, c := range r.Cells {
				var vs []string
				for _, v := range c.Deployed {
					vs = append(vs, fmt.Sprintf("%s(%d)", v.Version, v.Hosts))
				}
				line += " | " + strings.Join(vs, " ")
			}
			got = append(got, line)
		}
		want = []string{
			"API | 1.1.5 | 1.1.4(40) 1.1.5(8) | 1.1.3(10) 1.1.4(5) | 1.1.2(20)",
			"Kalypso Operator | 1.1.2 | 1.1.2(48) | 1.1.1(34) | 1.1.0(10)",
			"Pometheus | 2.43.0 | 2.37.6(28) | 2.37.6(18) | 2.37.6(10)",
		}
		if !slices.Equal(got, want) {
			t.Errorf("Discrepancies\n got %q\nwant %q", got, want)
		}
		// Configurable order.
		d, _, _ = f.rep.Discrepancies(ctx, reports.Filter{}, []string{"Prod", "QA"}, reports.Page{})
		if !slices.Equal(d.Environments, []string{"Prod", "QA", "Dev"}) {
			t.Errorf("ordered environments %v", d.Environments)
		}
	})
}

// envDigit is a hex digit standing for an environment, so that each
// environment's commit differs.
func envDigit(env string) string { return map[string]string{"Prod": "a", "QA": "b", "Dev": "c"}[env] }
