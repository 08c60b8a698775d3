package reports_test

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Environment History pages walk the targets in order and each target's
// assignments newest first: with targets of very different lengths of
// history (a page ending inside one, or spanning many), every page size
// lists each assignment once, in that order, with and without filters.
func TestHistoryPagesAcrossTargets(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		type want struct {
			env, target string
			at          time.Time
			version     string
			status      model.Status // what its one host reported of it, if any
		}
		var all []want
		envs := []string{"prod", "dev"} // promotion order puts dev first
		step := 0
		for i := range 14 {
			target := fmt.Sprintf("t%02d", (i*5)%14) // created out of name order
			env := envs[i%2]
			// Target i has 1 to 40 assignments: some slices hold a few
			// rows, some far more than a page.
			n := 1 + (i*17)%40
			for k := range n {
				step++
				at := start.Add(time.Duration(step) * time.Minute)
				version := fmt.Sprintf("1.%d.%d", i, k)
				f.at(at).assign(shop, env, target, version, sha(fmt.Sprintf("%02x%02x", i, k)))
				all = append(all, want{env, target, at, version, ""})
			}
			// A host reports the latest assignment of most targets: a
			// status filter passes those alone.
			if status := []model.Status{model.StatusSuccess, model.StatusFailure, model.StatusInProgress, ""}[i%4]; status != "" {
				f.report(target+"-host", shop, env, target, sha(fmt.Sprintf("%02x%02x", i, n-1)), status, "")
				all[len(all)-1].status = status
			}
		}
		f.at(start.Add(time.Duration(step+1) * time.Minute))
		envRank := map[string]int{"dev": 0, "prod": 1}
		slices.SortFunc(all, func(a, b want) int {
			return cmp.Or(cmp.Compare(envRank[a.env], envRank[b.env]), cmp.Compare(a.target, b.target), b.at.Compare(a.at))
		})
		line := func(env, target string, at time.Time, version string) string {
			return fmt.Sprintf("%s/%s %s %s", env, target, at.Format(time.RFC3339), version)
		}
		var expected []string
		for _, w := range all {
			expected = append(expected, line(w.env, w.target, w.at, w.version))
		}
		lines := func(rows []reports.HistoryRow) []string {
			var out []string
			for _, r := range rows {
				out = append(out, line(r.Environment, r.Target, r.AssignedAt, r.Version))
			}
			return out
		}
		for _, limit := range []int{1, 7, 30, 200, reports.MaxLimit} {
			var got []string
			for i, rows := range walkPages(t, limit, func(p reports.Page) ([]reports.HistoryRow, string, error) {
				return f.rep.History(ctx, reports.Filter{}, p)
			}) {
				if len(rows) > limit {
					t.Fatalf("limit %d: page %d has %d rows", limit, i, len(rows))
				}
				got = append(got, lines(rows)...)
			}
			if !slices.Equal(got, expected) {
				t.Errorf("limit %d: %d rows\n%q\nwant %d\n%q", limit, len(got), got, len(expected), expected)
			}
		}

		// Filters narrow the same walk: only the assignments a host
		// reported in a status (few, far apart), and one environment's.
		byStatus := map[model.Status][]string{}
		var prod []string
		for _, w := range all {
			if w.status != "" {
				byStatus[w.status] = append(byStatus[w.status], line(w.env, w.target, w.at, w.version))
			}
			if w.env == "prod" {
				prod = append(prod, line(w.env, w.target, w.at, w.version))
			}
		}
		for _, c := range []struct {
			f    reports.Filter
			want []string
		}{
			{reports.Filter{Status: "success"}, byStatus[model.StatusSuccess]}, {reports.Filter{Status: "failure"}, byStatus[model.StatusFailure]},
			{reports.Filter{Status: "in_progress"}, byStatus[model.StatusInProgress]}, {reports.Filter{Environment: "prod"}, prod},
		} {
			if len(c.want) == 0 {
				t.Fatalf("%+v: the fleet has no row for it", c.f)
			}
			for _, limit := range []int{1, 3, reports.MaxLimit} {
				var got []string
				for _, rows := range walkPages(t, limit, func(p reports.Page) ([]reports.HistoryRow, string, error) { return f.rep.History(ctx, c.f, p) }) {
					got = append(got, lines(rows)...)
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%+v, limit %d:\n%q\nwant\n%q", c.f, limit, got, c.want)
				}
			}
		}
	})
}
