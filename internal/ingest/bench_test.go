package ingest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func sha(n int) string { return fmt.Sprintf("%040x", uint64(n)*0x9e3779b97f4a7c15) }

func benchDescriptor(i int) model.Descriptor {
	ep, _ := model.NewEndpoint("git", "https://github.com/acme/gitops", "prod", fmt.Sprintf("t%d", i%100))
	return model.Descriptor{Workspace: "acme", Application: "shop", Workload: fmt.Sprintf("w%d", i%20),
		Environment: "prod", Target: fmt.Sprintf("t%d", i%100), Manifests: ep,
		Version: fmt.Sprintf("1.%d.0", i), Commit: sha(i)}
}

func benchReport(i, commit int, status model.Status) model.Report {
	ep, _ := model.NewEndpoint("git", "https://github.com/acme/gitops", "prod", fmt.Sprintf("t%d", i%100))
	return model.Report{Host: fmt.Sprintf("aks-%05d", i%1000), Reconciler: fmt.Sprintf("w%d", i%20), ReconcilerType: "flux",
		Endpoint: ep, Commit: sha(commit), Status: status}
}

// BenchmarkApplyDescriptor: new descriptors (each a new version and
// assignment), in descriptors/s.
func BenchmarkApplyDescriptor(b *testing.B) {
	for _, engine := range testenv.Engines {
		b.Run(engine, func(b *testing.B) {
			ing := ingest.New(testenv.NewStore(b, engine))
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if _, err := ing.ApplyDescriptor(ctx, benchDescriptor(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "descriptors/s")
		})
	}
}

// BenchmarkApplyReport: reports that change state (a new commit, then its
// success), in reports/s; and unchanged reports, which write nothing.
func BenchmarkApplyReport(b *testing.B) {
	for _, engine := range testenv.Engines {
		for _, mode := range []string{"changed", "unchanged"} {
			b.Run(engine+"/"+mode, func(b *testing.B) {
				st := testenv.NewStore(b, engine)
				ing := ingest.New(st)
				ctx := context.Background()
				for i := range 100 {
					if _, err := ing.ApplyDescriptor(ctx, benchDescriptor(i)); err != nil {
						b.Fatal(err)
					}
				}
				for i := range 2000 { // 1,000 hosts x 2 reconcilers
					if _, err := ing.ApplyReport(ctx, benchReport(i, i%100, model.StatusSuccess)); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for i := range b.N {
					r := benchReport(i, i%100, model.StatusSuccess)
					if mode == "changed" {
						status := model.StatusInProgress
						if (i/2000)%2 == 1 {
							status = model.StatusSuccess
						}
						r = benchReport(i, 100+i/4000, status)
					}
					if _, err := ing.ApplyReport(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
			})
		}
	}
}

// BenchmarkApplyReports: changed reports in batches of 500 (the API's list
// pushes and the pollers), in reports/s.
func BenchmarkApplyReports(b *testing.B) {
	for _, engine := range testenv.Engines {
		b.Run(engine, func(b *testing.B) {
			st := testenv.NewStore(b, engine)
			ing := ingest.New(st)
			ctx := context.Background()
			for i := range 100 {
				if _, err := ing.ApplyDescriptor(ctx, benchDescriptor(i)); err != nil {
					b.Fatal(err)
				}
			}
			seed := make([]model.Report, 2000)
			for i := range seed {
				seed[i] = benchReport(i, i%100, model.StatusSuccess)
			}
			if _, err := ing.ApplyReports(ctx, seed); err != nil {
				b.Fatal(err)
			}
			const size = 500
			batch := make([]model.Report, size)
			b.ResetTimer()
			for n := 0; n < b.N; n += size {
				for j := range batch {
					i := n + j
					status := model.StatusInProgress
					if (i/2000)%2 == 1 {
						status = model.StatusSuccess
					}
					batch[j] = benchReport(i, 100+i/4000, status)
				}
				if _, err := ing.ApplyReports(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}
