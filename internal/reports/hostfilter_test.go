package reports_test

import (
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Environment History and DORA of one host count that host alone: its
// reports of each assignment, against one host in the total, and only the
// targets it reconciles.
func TestHistoryAndDORAOfOneHost(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		cart := workload{"acme", "shop", "cart", "https://github.com/acme/gitops-cart"}
		f.assign(shop, "prod", "eu", "1.0.0", sha("c100"))
		f.assign(cart, "prod", "eu", "3.0.0", sha("c300"))
		f.at(start.Add(10*time.Minute)).report("h1", shop, "prod", "eu", sha("c100"), model.StatusSuccess, "")
		f.report("h2", shop, "prod", "eu", sha("c100"), model.StatusFailure, "crash loop")
		f.report("h3", shop, "prod", "eu", sha("c100"), model.StatusInProgress, "")
		// h2 also runs cart, with h4.
		f.at(start.Add(20*time.Minute)).report("h2", cart, "prod", "eu", sha("c300"), model.StatusSuccess, "")
		f.report("h4", cart, "prod", "eu", sha("c300"), model.StatusInProgress, "")
		f.at(start.Add(time.Hour))

		history := func(host string) map[string]reports.HistoryRow {
			t.Helper()
			rs, _, err := f.rep.History(ctx, reports.Filter{Host: host}, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]reports.HistoryRow{}
			for _, r := range rs {
				out[r.Workload] = r
			}
			return out
		}
		type counts struct{ success, failure, inProgress, notReported int }
		countsOf := func(r reports.HistoryRow) counts {
			return counts{r.Success, r.Failure, r.InProgress, r.NotReported}
		}
		all := history("")
		if got, want := countsOf(all["api"]), (counts{1, 1, 1, 0}); got != want {
			t.Errorf("api, every host: %+v, want %+v", got, want)
		}
		for host, want := range map[string]map[string]counts{
			"h1": {"api": {1, 0, 0, 0}},
			"h2": {"api": {0, 1, 0, 0}, "cart": {1, 0, 0, 0}},
			"h3": {"api": {0, 0, 1, 0}},
			"h4": {"cart": {0, 0, 1, 0}},
		} {
			got := history(host)
			if len(got) != len(want) {
				t.Errorf("%s: workloads %v, want %v", host, got, want)
			}
			for wl, c := range want {
				if r, ok := got[wl]; !ok || countsOf(r) != c {
					t.Errorf("%s, %s: %+v, want %+v", host, wl, countsOf(r), c)
				}
			}
		}
		if r := history("h1")["api"]; r.AllSucceededAt == nil || !r.AllSucceededAt.Equal(start.Add(10*time.Minute)) {
			t.Errorf("h1 alone has succeeded where it runs api at 08:10, got %v", r.AllSucceededAt)
		}

		dora := func(host string) map[string]reports.DORARow {
			t.Helper()
			rs, _, err := f.rep.DORA(ctx, reports.Filter{Host: host, Since: start}, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]reports.DORARow{}
			for _, r := range rs {
				out[r.Workload] = r
			}
			return out
		}
		// Every host: neither assignment reached success on every host;
		// api failed on one.
		if d := dora(""); d["api"].Deployments != 0 || d["api"].Failed != 1 || d["cart"].Deployments != 0 {
			t.Errorf("every host: %+v", d)
		}
		if d := dora("h1"); len(d) != 1 || d["api"].Deployments != 1 || d["api"].Failed != 0 {
			t.Errorf("h1: %+v, want api deployed once, not failed", d)
		}
		if d := dora("h2"); len(d) != 2 || d["api"].Deployments != 0 || d["api"].Failed != 1 || d["cart"].Deployments != 1 {
			t.Errorf("h2: %+v, want api failed, cart deployed", d)
		}
	})
}
