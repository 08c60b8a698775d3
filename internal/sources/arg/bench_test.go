package arg_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/sources/arg"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// BenchmarkPoll measures what a poll of 2,500 Flux configurations costs,
// through the SDK's fake server (three pages) into each store engine:
// the first poll (every reconciler new), a poll that changes nothing, and
// one where a tenth of the clusters moved to a new commit. It reports rows
// polled per second, and reports applied per second where any were.
//
//	CI=true go test -run '^$' -bench BenchmarkPoll -benchtime 3x ./internal/sources/arg/
func BenchmarkPoll(b *testing.B) {
	const n, sub = 2500, "bench"
	for _, engine := range testenv.Engines {
		for _, phase := range []string{"first", "unchanged", "tenth-changed"} {
			b.Run(engine+"/"+phase, func(b *testing.B) {
				var rows, applied int
				var took time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					h := newHub(testenv.NewStore(b, engine))
					f := newFleet()
					for c := range n {
						f.add(sub, config(sub, fmt.Sprintf("cluster-%04d", c), sha("c1"), "Compliant", "apps"))
					}
					w := &wire{}
					p := newPollerB(b, h, f, w)
					if phase != "first" {
						if res := p.Poll(ctx); res.Err != nil {
							b.Fatal(res.Err)
						}
					}
					if phase == "tenth-changed" {
						for c := 0; c < n; c += 10 {
							name := fmt.Sprintf("cluster-%04d", c)
							f.set(sub, name, config(sub, name, sha("c2"), "Compliant", "apps"))
						}
					}
					b.StartTimer()
					start := time.Now()
					res := p.Poll(ctx)
					took += time.Since(start)
					if res.Err != nil {
						b.Fatal(res.Err)
					}
					rows += res.Rows
					applied += res.Changed
				}
				b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
				if applied > 0 {
					b.ReportMetric(float64(applied)/took.Seconds(), "applied/s")
				}
			})
		}
	}
}

func newPollerB(b *testing.B, h *hub, f *fleet, w *wire) *arg.Poller {
	b.Helper()
	cfg := arg.Config{Name: "bench", Tenant: "t", Subscriptions: []string{"bench"}, Interval: time.Minute, ManagedIdentity: "mi"}
	return newPoller(b, h, cfg, f.server(), w, &credentials{})
}
