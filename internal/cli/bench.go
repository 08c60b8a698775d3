package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark-dev/tidemark/internal/bench"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/reports"
)

func newBenchCmd() *cobra.Command {
	var (
		database string
		spec     = bench.DefaultSpec
		runs     int
		skipGen  bool
		profile  string
		memprof  string
		queries  bool
		memory   bool
		busyRate int
		minTime  time.Duration
		page     int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate a fleet through ingest, then time ingest, every report and the rollout gate",
		Long: `Generate a fleet through ingest into the store (use an empty database), then
print ingest throughput and the p50/p99 latency of every report and of the
rollout gate.`,
		Example: `  tidemark bench --database postgres://postgres@127.0.0.1:5432/bench --hosts 10000 --reconcilers-per-host 10 --history 10`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if page < 1 || page > reports.MaxLimit {
				return fmt.Errorf("--page %d: give a number of rows from 1 to %d", page, reports.MaxLimit)
			}
			tuneGC()
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			st, err := openStore(ctx, database)
			if err != nil {
				return err
			}
			defer st.Close()
			ing := ingest.New(st)
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			if memprof != "" {
				// Written at the end: what the whole run allocated, by
				// call site (go tool pprof -sample_index=alloc_space).
				defer func() {
					if err := writeAllocs(memprof); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "--memprofile: %v\n", err)
					}
				}()
			}
			if !skipGen && !queries {
				fmt.Fprintf(out, "generating %d hosts x %d reconcilers, %d workloads, %d environments, %d commits of history into %s\n",
					spec.Hosts, spec.ReconcilersPerHost, spec.Workloads, spec.Environments, spec.History, st.Engine())
				var reported atomic.Int64
				var watch *bench.MemoryWatch
				if memory {
					watch = bench.WatchMemory(ctx, reports.New(st), spec, &reported, 500*time.Millisecond)
				}
				res, err := bench.GenerateCounting(ctx, ing, spec, out, &reported)
				if watch != nil {
					// From the first tenth of the history on: the hub has
					// warmed up (pools, caches) by then.
					bench.PrintMemory(out, watch.Stop(), reported.Load()/10, 10)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "ingest: %d descriptors, %d reports in %v: %.0f reports/s (%d writers, batches of %d)\n",
					res.Descriptors, res.Reports, res.Elapsed.Round(time.Millisecond), res.ReportsPerSecond, spec.Workers, spec.Batch)
			}
			// What a running hub does within a minute of a bulk load: the
			// planner statistics of the small tables, which autovacuum
			// leaves alone.
			if _, err := st.RefreshStatistics(ctx); err != nil {
				return err
			}
			if !queries {
				// The first replay (in batches) refreshes the last-report
				// time of reconcilers whose heartbeat is due; the second,
				// one by one, repeats stored state. Their hub has a
				// heartbeat of 10m, so that none comes due between the two
				// passes however long the second takes (with the default
				// minute, those last refreshed 40-60 s before the first
				// pass would).
				replay := ingest.New(st, ingest.WithHeartbeat(10*time.Minute))
				_, refreshed, err := bench.Unchanged(ctx, replay, spec, 20000, spec.Batch)
				if err != nil {
					return err
				}
				rate, changed, err := bench.Unchanged(ctx, replay, spec, 20000, 1)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "unchanged reports: %.0f reports/s, %d of 20000 wrote anything (a first pass refreshed %d heartbeats)\n", rate, changed, refreshed)
			}
			counts, err := bench.Counts(ctx, st)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "fleet: %d hosts, %d reconcilers, %d targets, %d assignments, %d deployments, %d status changes\n",
				counts["hosts"], counts["reconcilers"], counts["targets"], counts["assignments"], counts["deployments"], counts["deployment_history"])
			ts, err := bench.QueriesFor(ctx, reports.New(st), spec, runs, minTime, page)
			if err != nil {
				return err
			}
			bench.PrintTimings(out, ts)
			if busyRate > 0 {
				// The same reports while the store is being written.
				busy := bench.StartBusy(ctx, ing, spec, busyRate)
				ts, err := bench.QueriesFor(ctx, reports.New(st), spec, runs, minTime, page)
				n, changed, rate, berr := busy.Stop()
				if err != nil {
					return err
				}
				if berr != nil {
					return fmt.Errorf("ingest beside the reports: %w", berr)
				}
				fmt.Fprintf(out, "while ingesting %.0f reports/s (%d reports, %d of them changes; %d asked):\n", rate, n, changed, busyRate)
				bench.PrintTimings(out, ts)
			}
			mc, err := bench.Metrics(ctx, reports.New(st), runs)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "/metrics: state gauges computed in %v (in the background); a gzipped scrape p50 %v, p99 %v: %d series (%d state gauges), %d KiB (%d KiB gzipped)\n",
				mc.Refresh.Round(time.Millisecond), mc.P50.Round(10*time.Microsecond), mc.P99.Round(10*time.Microsecond), mc.Series, mc.StateSeries, mc.Bytes>>10, mc.Gzipped>>10)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&profile, "cpuprofile", "", "write the hub's CPU profile of the whole run to this file (go tool pprof reads it)")
	f.StringVar(&memprof, "memprofile", "", "write what the hub allocated over the whole run to this file, by call site (go tool pprof -sample_index=alloc_space reads it)")
	f.StringVar(&database, "database", envOr("TIDEMARK_DATABASE_URL", "bench.db"), "store to fill: an SQLite path or postgres:// URL (use an empty one)")
	f.IntVar(&spec.Hosts, "hosts", spec.Hosts, "hosts")
	f.IntVar(&spec.ReconcilersPerHost, "reconcilers-per-host", spec.ReconcilersPerHost, "reconcilers (workloads) per host")
	f.IntVar(&spec.Workloads, "workloads", spec.Workloads, "workloads")
	f.IntVar(&spec.Environments, "environments", spec.Environments, "environments")
	f.IntVar(&spec.Regions, "regions", spec.Regions, "targets per workload and environment")
	f.IntVar(&spec.History, "history", spec.History, "GitOps commits each reconciler applied")
	f.IntVar(&spec.Workers, "workers", spec.Workers, "concurrent ingest writers")
	f.IntVar(&spec.Batch, "batch", spec.Batch, "reports per ingest batch (1: one by one)")
	f.IntVar(&runs, "runs", 50, "runs of each query, at least (see --min-time)")
	f.BoolVar(&skipGen, "skip-generate", false, "time the queries on a fleet generated before, with the same sizing flags (other sizes replay other commits)")
	f.BoolVar(&memory, "memory", false, "while generating, also read every report in a loop and sample the hub's memory (RSS, Go heap): whether it stays flat as history grows")
	f.IntVar(&busyRate, "busy-rate", 2000, "after timing the reports, time them again while ingest writes this many reports a second (status changes of the fleet's reconcilers; 0: do not)")
	f.DurationVar(&minTime, "min-time", 2*time.Second, "run each query at least this long as well as --runs times, quiet and with --busy-rate (a p99 needs 100 runs to be more than the slowest run)")
	f.DurationVar(&minTime, "busy-time", 2*time.Second, "")
	_ = f.MarkDeprecated("busy-time", "use --min-time (it now applies to the quiet runs too)")
	f.IntVar(&page, "page", reports.MaxLimit, fmt.Sprintf("rows a page of each list report asks for: %d the most, %d the API's and the UI's default", reports.MaxLimit, reports.DefaultLimit))
	f.BoolVar(&queries, "queries-only", false, "time the queries alone on a fleet generated before (no generation, no replay of unchanged reports: on a fleet that has aged, every replayed report refreshes a heartbeat)")
	return cmd
}

// writeAllocs writes the allocation profile of the run so far to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
