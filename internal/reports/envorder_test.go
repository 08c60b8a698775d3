package reports_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// The reports that list rows by environment (Environment State, its time
// travel, History, DORA) list environments in promotion order, as
// Discrepancies does, not by name; so do their pages, whatever their size,
// and a host's page the targets of each of its reconcilers.
func TestEnvironmentsInPromotionOrder(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		// Created out of order, and named so that name order is wrong.
		for i, env := range []string{"prod", "dev", "staging", "qa"} {
			f.at(start.Add(time.Duration(i)*time.Minute)).assign(shop, env, "eu", "1.0.0", sha("a1"+string(rune('0'+i))))
			f.report(env+"-1", shop, env, "eu", sha("a1"+string(rune('0'+i))), model.StatusSuccess, "")
		}
		f.at(start.Add(time.Hour))

		envsOf := func(name string, read func(svc *reports.Service, p reports.Page) ([]string, string, error), svc *reports.Service, want []string) {
			t.Helper()
			all, next, err := read(svc, reports.Page{})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if next != "" || !slices.Equal(all, want) {
				t.Errorf("%s: environments %v (next %q), want %v", name, all, next, want)
			}
			// Page by page, one row at a time: the cursor follows the order.
			var paged []string
			p := reports.Page{Limit: 1}
			for range 10 {
				envs, next, err := read(svc, p)
				if err != nil {
					t.Fatalf("%s page: %v", name, err)
				}
				paged = append(paged, envs...)
				if next == "" {
					break
				}
				p.Cursor = next
			}
			if !slices.Equal(paged, want) {
				t.Errorf("%s by pages of 1: environments %v, want %v", name, paged, want)
			}
		}
		cases := map[string]func(svc *reports.Service, p reports.Page) ([]string, string, error){
			"environment state": func(svc *reports.Service, p reports.Page) ([]string, string, error) {
				rs, next, err := svc.EnvironmentState(ctx, reports.Filter{}, p)
				return environments(rs, func(r reports.EnvironmentStateRow) string { return r.Environment }), next, err
			},
			"environment state at": func(svc *reports.Service, p reports.Page) ([]string, string, error) {
				rs, next, err := svc.EnvironmentStateAt(ctx, reports.Filter{}, start.Add(30*time.Minute), p)
				return environments(rs, func(r reports.EnvironmentStateRow) string { return r.Environment }), next, err
			},
			"history": func(svc *reports.Service, p reports.Page) ([]string, string, error) {
				rs, next, err := svc.History(ctx, reports.Filter{}, p)
				return environments(rs, func(r reports.HistoryRow) string { return r.Environment }), next, err
			},
			"dora": func(svc *reports.Service, p reports.Page) ([]string, string, error) {
				rs, next, err := svc.DORA(ctx, reports.Filter{Since: start}, p)
				return environments(rs, func(r reports.DORARow) string { return r.Environment }), next, err
			},
		}
		pipeline := []string{"dev", "qa", "staging", "prod"}
		custom := reports.New(st, reports.WithClock(func() time.Time { return start.Add(time.Hour) }), reports.WithPromotionOrder([]string{"qa", "dev"}))
		for name, read := range cases {
			envsOf(name, read, f.rep, pipeline)
			// The hub's order first, the others as before.
			envsOf(name+" (order qa,dev)", read, custom, []string{"qa", "dev", "staging", "prod"})
		}

		// A reconciler whose endpoint two targets share lists them the same
		// way on its host's page.
		shared := workload{"acme", "shop", "cart", "https://github.com/acme/gitops-cart"}.endpoint("staging", "eu")
		for _, env := range []string{"prod", "staging"} {
			if _, err := f.ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "cart",
				Environment: env, Target: "eu", Manifests: shared, Version: "1.0.0", Commit: sha("b1")}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.ing.ApplyReport(ctx, model.Report{Host: "both-1", Reconciler: "cart", ReconcilerType: "flux",
			Endpoint: shared, Commit: sha("b1"), Status: model.StatusSuccess}); err != nil {
			t.Fatal(err)
		}
		host, err := f.rep.Host(ctx, "both-1")
		if err != nil {
			t.Fatal(err)
		}
		var hostEnvs []string
		for _, r := range host.Reconcilers {
			hostEnvs = append(hostEnvs, environments(r.Targets, func(t reports.TargetRef) string { return t.Environment })...)
		}
		if !slices.Equal(hostEnvs, []string{"staging", "prod"}) {
			t.Errorf("host page: targets in %v, want staging, prod", hostEnvs)
		}
	})
}

// environments lists the environment of each row.
func environments[R any](rs []R, env func(R) string) []string {
	var out []string
	for _, r := range rs {
		out = append(out, env(r))
	}
	return out
}
