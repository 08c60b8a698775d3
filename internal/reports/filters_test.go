package reports_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Every report honours every filter it documents, or refuses it with an
// error naming it: for each report and filter, a value that matches
// nothing gives no rows, and a value that matches gives rows that all
// match it.
func TestEveryReportHonoursEveryFilter(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		api := workload{"payments", "checkout", "api", "https://github.com/acme/gitops"}
		web := workload{"storefront", "shop", "web", "https://github.com/acme/gitops"}
		f.at(start).assign(api, "dev", "eastus", "1.0.0", sha("a1"))
		f.at(start.Add(time.Minute)).assign(api, "prod", "eastus", "1.0.0", sha("a1"))
		f.at(start.Add(2*time.Minute)).assign(web, "dev", "westus", "2.0.0", sha("b2"))
		f.at(start.Add(10*time.Minute)).report("h1", api, "dev", "eastus", sha("a1"), model.StatusSuccess, "")
		f.report("h2", api, "dev", "eastus", sha("a1"), model.StatusFailure, "crash loop")
		f.report("h3", api, "prod", "eastus", sha("a1"), model.StatusInProgress, "")
		f.report("h4", web, "dev", "westus", sha("b2"), model.StatusSuccess, "")
		if _, err := f.ing.ApplyReport(ctx, model.Report{Host: "h5", Reconciler: "web", ReconcilerType: "flux",
			Endpoint: web.endpoint("dev", "westus")}); err != nil {
			t.Fatal(err)
		}
		f.at(start.Add(3 * time.Hour))

		page := reports.Page{Limit: reports.MaxLimit}
		type row = map[string]string // the filterable fields of a row
		fields := func(ref reports.TargetRef, host, status string) row {
			return row{"workspace": ref.Workspace, "application": ref.Application, "environment": ref.Environment,
				"workload": ref.Workload, "target": ref.Target, "host": host, "status": status}
		}
		all := map[string]func(reports.Filter) ([]row, error){
			"environment-state": func(fl reports.Filter) ([]row, error) {
				rs, _, err := f.rep.EnvironmentState(ctx, fl, page)
				var out []row
				for _, r := range rs {
					out = append(out, fields(r.TargetRef, "", r.Status))
				}
				return out, err
			},
			"host-state": func(fl reports.Filter) ([]row, error) {
				rs, _, err := f.rep.HostState(ctx, fl, page)
				var out []row
				for _, r := range rs {
					out = append(out, fields(r.TargetRef, r.Host, r.Status))
				}
				return out, err
			},
			"environment-history": func(fl reports.Filter) ([]row, error) {
				rs, _, err := f.rep.History(ctx, fl, page)
				var out []row
				for _, r := range rs {
					out = append(out, fields(r.TargetRef, "", ""))
				}
				return out, err
			},
			"discrepancies": func(fl reports.Filter) ([]row, error) {
				d, _, err := f.rep.Discrepancies(ctx, fl, nil, page)
				var out []row
				for _, r := range d.Items {
					for _, c := range r.Cells {
						if len(c.Targets) > 0 {
							out = append(out, fields(reports.TargetRef{Workspace: r.Workspace, Application: r.Application,
								Workload: r.Workload, Environment: c.Environment}, "", ""))
						}
					}
				}
				return out, err
			},
			"drift": func(fl reports.Filter) ([]row, error) {
				rs, _, err := f.rep.Drift(ctx, fl, time.Hour, page)
				var out []row
				for _, r := range rs {
					out = append(out, fields(r.TargetRef, r.Host, r.Status))
				}
				return out, err
			},
			"dora": func(fl reports.Filter) ([]row, error) {
				rs, _, err := f.rep.DORA(ctx, fl, page)
				var out []row
				for _, r := range rs {
					out = append(out, fields(reports.TargetRef{Workspace: r.Workspace, Application: r.Application,
						Workload: r.Workload, Environment: r.Environment}, "", ""))
				}
				return out, err
			},
		}
		// Filters a report refuses, by design.
		refused := map[string]bool{"dora status": true}
		type filter struct {
			name            string
			match, noMatch  reports.Filter
			field, expected string // the row field the filter constrains, when rows carry it
		}
		filters := []filter{
			{"workspace", reports.Filter{Workspace: "payments"}, reports.Filter{Workspace: "nope"}, "workspace", "payments"},
			{"application", reports.Filter{Application: "shop"}, reports.Filter{Application: "nope"}, "application", "shop"},
			{"environment", reports.Filter{Environment: "dev"}, reports.Filter{Environment: "nope"}, "environment", "dev"},
			{"workload", reports.Filter{Workload: "api"}, reports.Filter{Workload: "nope"}, "workload", "api"},
			{"target", reports.Filter{Target: "westus"}, reports.Filter{Target: "nope"}, "target", "westus"},
			{"host", reports.Filter{Host: "h2"}, reports.Filter{Host: "nope"}, "host", "h2"},
			{"status", reports.Filter{Status: "failure"}, reports.Filter{Status: "in_progress", Workload: "web"}, "status", "failure"},
			{"since", reports.Filter{Since: start}, reports.Filter{Since: start.Add(24 * time.Hour)}, "", ""},
			{"until", reports.Filter{Until: start.Add(24 * time.Hour)}, reports.Filter{Until: start.Add(-time.Hour)}, "", ""},
		}
		for name, report := range all {
			for _, fl := range filters {
				t.Run(name+"/"+fl.name, func(t *testing.T) {
					rows, err := report(fl.noMatch)
					if refused[name+" "+fl.name] {
						var fe *reports.FilterError
						if !errors.As(err, &fe) || fe.Param != fl.name {
							t.Fatalf("want a FilterError naming %s, got rows %v, error %v", fl.name, rows, err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if len(rows) != 0 {
						t.Errorf("a value that matches nothing gives %d rows: %v", len(rows), rows)
					}
					rows, err = report(fl.match)
					if err != nil {
						t.Fatal(err)
					}
					if len(rows) == 0 {
						t.Errorf("a value that matches gives no rows")
					}
					for _, r := range rows {
						if v, ok := r[fl.field]; ok && v != "" && v != fl.expected {
							t.Errorf("row %v does not match %s=%s", r, fl.field, fl.expected)
						}
					}
					unfiltered, err := report(reports.Filter{})
					if err != nil {
						t.Fatal(err)
					}
					if fl.name != "since" && fl.name != "until" && reflect.DeepEqual(rows, unfiltered) {
						t.Errorf("the filter changes nothing: %v", rows)
					}
				})
			}
		}
	})
}
