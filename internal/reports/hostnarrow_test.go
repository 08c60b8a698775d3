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

// Host State under a status or a time filter lists exactly the rows of the
// unfiltered report that pass it, page by page, whether it reads the
// reconcilers of the endpoints whose groups may pass (small pages of few
// passing hosts) or walks every host in name order (larger ones), and
// whatever the groups' time bounds say: hosts here move between groups,
// leaving loose bounds behind, and one has not reported yet.
func TestHostStateStatusAndTimeFilters(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		c := sha("c100")
		var wls []workload
		for i := range 4 {
			w := workload{"acme", "shop", fmt.Sprintf("w%d", i), fmt.Sprintf("https://github.com/acme/w%d", i)}
			wls = append(wls, w)
			f.assign(w, "prod", "eu", "1.0.0", c)
			f.assign(w, "prod", "us", "1.0.0", c)
		}
		statuses := []model.Status{model.StatusSuccess, model.StatusInProgress, model.StatusFailure}
		for i := range 16 {
			h := fmt.Sprintf("h%02d", i)
			for j, target := range []string{"eu", "us"} {
				w := wls[(i+j)%len(wls)]
				f.at(start.Add(time.Duration(i*10+j)*time.Minute)).report(h, w, "prod", target, c, model.StatusSuccess, "")
				if i%3 == 0 && (i+j)%len(wls) < 2 { // moves on later: its first group keeps the bounds of its stay
					f.at(start.Add(time.Duration(200+i*10+j)*time.Minute)).report(h, w, "prod", target, c, statuses[(i+j)%3], "")
				}
			}
		}
		if _, err := f.ing.ApplyReport(ctx, model.Report{Host: "h99", Reconciler: "w0", ReconcilerType: "flux",
			Endpoint: wls[0].endpoint("prod", "eu")}); err != nil {
			t.Fatal(err)
		}
		f.at(start.Add(8 * time.Hour))

		all, _, err := f.rep.HostState(ctx, reports.Filter{}, reports.Page{Limit: reports.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 33 {
			t.Fatalf("unfiltered: %d rows, want 33", len(all))
		}
		key := func(r reports.HostStateRow) string {
			return fmt.Sprintf("%s/%s/%s %s %s", r.Host, r.Reconciler, r.Target, r.Status, r.StatusSince.Format(time.TimeOnly))
		}
		at := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
		filters := []reports.Filter{
			{Status: "success"}, {Status: "failure"}, {Status: "in_progress"}, {Status: "not_reported"},
			{Since: at(100)}, {Since: at(205)}, {Since: at(400)}, {Until: at(30)}, {Until: at(-1)},
			{Since: at(50), Until: at(120)}, {Status: "success", Since: at(150)}, {Status: "failure", Until: at(250)},
			{Status: "in_progress", Since: at(300)},
		}
		for _, fl := range filters {
			var want []string
			for _, r := range all {
				if (fl.Status == "" || r.Status == fl.Status) && (fl.Since.IsZero() || !r.StatusSince.Before(fl.Since)) &&
					(fl.Until.IsZero() || !r.StatusSince.After(fl.Until)) {
					want = append(want, key(r))
				}
			}
			for _, limit := range []int{1, 2, 5, reports.MaxLimit} {
				var got []string
				p := reports.Page{Limit: limit}
				for range 40 {
					rs, next, err := f.rep.HostState(ctx, fl, p)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rs {
						got = append(got, key(r))
					}
					if next == "" {
						break
					}
					p.Cursor = next
				}
				if !slices.Equal(got, want) {
					t.Errorf("%+v, pages of %d:\n got %q\nwant %q", fl, limit, got, want)
				}
			}
		}
	})
}
