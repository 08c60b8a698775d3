package reports_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Host State pages hosts in name order, also hosts whose names share more
// than the indexed prefix and differ only after it, within one environment
// too (its own path), and at a past time the same way.
func TestHostStatePagesLongNamesInOrder(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
		f := newFleet(t, st, start)
		api := workload{"payments", "checkout", "api", "https://github.com/acme/gitops"}
		f.at(start).assign(api, "dev", "eastus", "1.0.0", sha("a1"))
		long := strings.Repeat("é", 600) // past the 512-character prefix
		hosts := []string{long + "c", "b", long + "a", long, long + "b", "zz"}
		f.at(start.Add(time.Minute))
		for _, h := range hosts {
			f.report(h, api, "dev", "eastus", sha("a1"), model.StatusSuccess, "")
		}
		f.at(start.Add(time.Hour))
		want := slices.Sorted(slices.Values(hosts))

		for _, c := range []struct {
			f  reports.Filter
			at *time.Time
		}{{reports.Filter{}, nil}, {reports.Filter{Environment: "dev"}, nil}, {reports.Filter{}, new(start.Add(30 * time.Minute))}} {
			at := c.at
			var got []string
			p := reports.Page{Limit: 1}
			for range len(hosts) + 1 {
				var rows []reports.HostStateRow
				var next string
				var err error
				if at == nil {
					rows, next, err = f.rep.HostState(ctx, c.f, p)
				} else {
					rows, next, err = f.rep.HostStateAt(ctx, c.f, *at, p)
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					got = append(got, r.Host)
				}
				if next == "" {
					break
				}
				p.Cursor = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v at %v: pages list %d hosts %q…, want %d in name order", c.f, at, len(got), short(got), len(want))
			}
		}
	})
}

func short(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		if len(n) > 12 {
			n = n[len(n)-12:]
		}
		out[i] = n
	}
	return out
}
