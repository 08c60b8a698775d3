package otlp_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// BenchmarkOTLPHTTP: deployment reports through OTLP/HTTP (protobuf, gzip,
// the Collector's defaults) into the store, in reports/s: a fleet of 1,000
// hosts × 10 reconcilers reports commit after commit (in progress, then
// success), in batches of 1,000 records, from 4 concurrent exporters (the
// otlphttp exporter's sending queue runs several). Every report changes the
// stored state: a new deployment or a new status.
func BenchmarkOTLPHTTP(b *testing.B) {
	const hosts, perHost, batch, exporters = 1000, 10, 1000, 4
	for _, engine := range testenv.Engines {
		b.Run(engine, func(b *testing.B) {
			h := newHub(b, testenv.NewStore(b, engine))
			fleet := hosts * perHost
			// round r of the fleet: commit 1+r/2, in progress on even
			// rounds and succeeded on odd ones.
			body := func(round, part int) []byte {
				ds := make([]deployment, batch)
				status := "in_progress"
				if round%2 == 1 {
					status = "succeeded"
				}
				for i := range ds {
					n := part*batch + i
					ds[i] = deployment{host: fmt.Sprintf("aks-%04d", n%hosts), name: fmt.Sprintf("flux-system/w%d", n/hosts),
						status: status, revision: sha(10 + round/2), path: "apps", body: "Reconciliation finished"}
				}
				return gzipped(protobufOf(b, logsOf(ds...)))
			}
			post := func(data []byte) {
				code, _, out := h.post(data, "application/x-protobuf", "gzip", writeToken)
				if code != http.StatusOK {
					b.Fatalf("%d %s", code, out)
				}
			}
			parts := fleet / batch
			for p := range parts { // register the fleet (the slow path, once)
				post(body(-1, p))
			}
			// The bodies are encoded before the clock starts: the
			// exporters' work is not the hub's.
			rounds := max(b.N/fleet, 1) + 1
			bodies := make([][]byte, 0, rounds*parts)
			for r := range rounds {
				for p := range parts {
					bodies = append(bodies, body(r, p))
				}
			}
			cpu0 := processCPU(b)
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			total := min(len(bodies), max(b.N/batch, 1))
			for range exporters {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= total {
							return
						}
						post(bodies[i])
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(total*batch)/b.Elapsed().Seconds(), "reports/s")
			// The hub's own CPU (this process: receiver, ingest, pgx, and the
			// exporters' HTTP client), apart from the database's.
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(total*batch), "hub-CPU-µs/report")
		})
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
