// Package bench generates a fleet of any size through ingest and measures
// ingest throughput and the latency of every report and of the rollout gate.
// `tidemark bench` prints its table; the Go benchmarks use it too.
package bench

import (
	"cmp"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// Spec sizes a generated fleet.
type Spec struct {
	Hosts              int // clusters, spread over the environments
	ReconcilersPerHost int // workloads each host runs
	Workloads          int
	Environments       int
	Regions            int // targets per workload and environment
	History            int // GitOps commits each reconciler has applied
	Workers            int // concurrent ingest writers
	Batch              int // reports per ApplyReports call (1: one by one)
}

// DefaultSpec is small enough for a laptop run in a minute or two.
var DefaultSpec = Spec{Hosts: 1000, ReconcilersPerHost: 10, Workloads: 200, Environments: 4, Regions: 2, History: 5, Workers: 4, Batch: 500}

// Result of generating a fleet.
type Result struct {
	Descriptors, Reports int
	Elapsed              time.Duration // descriptors and reports
	ReportsPerSecond     float64       // reports alone
}

func envName(i int) string {
	return []string{"dev", "qa", "staging", "prod", "dr", "perf", "sandbox", "canary"}[i%8] + map[bool]string{true: fmt.Sprint(i / 8), false: ""}[i >= 8]
}

func commit(w, env, n int) string { return fmt.Sprintf("%08x%08x%024x", w, env, n) }

func endpoint(w, env, region int) model.Endpoint {
	ep, _ := model.NewEndpoint("git", fmt.Sprintf("https://github.com/fleet/workload-%03d-gitops", w), envName(env), fmt.Sprintf("region-%d", region))
	return ep
}

// report is what host h's k-th reconciler says of commit n: host h is in
// environment h mod Environments and runs ReconcilersPerHost workloads.
func (s Spec) report(h, k, n int, st model.Status) model.Report {
	env := h % s.Environments
	region := (h / s.Environments) % s.Regions
	w := (h*7 + k*13) % s.Workloads
	return model.Report{Host: s.hostName(h),
		Reconciler: fmt.Sprintf("workload-%03d", w), ReconcilerType: "flux", Endpoint: endpoint(w, env, region),
		Commit: commit(w, env, n), Status: st}
}

// hostName is the name of host h.
func (s Spec) hostName(h int) string { return fmt.Sprintf("aks-%s-%05d", envName(h%s.Environments), h) }

// Generate ingests the fleet: for each workload, environment and region a
// target with History assignments; every host runs ReconcilersPerHost
// workloads and reports each commit in progress, then success.
func Generate(ctx context.Context, ing *ingest.Service, s Spec, progress io.Writer) (Result, error) {
	return GenerateCounting(ctx, ing, s, progress, &atomic.Int64{})
}

// GenerateCounting is Generate adding to reported each batch of reports
// as it is stored, for a watcher (WatchMemory) to follow.
func GenerateCounting(ctx context.Context, ing *ingest.Service, s Spec, progress io.Writer, reported *atomic.Int64) (Result, error) {
	start := time.Now()
	var res Result
	var err error
	if res.Descriptors, err = s.applyDescriptors(ctx, ing); err != nil {
		return res, err
	}
	reportStart := time.Now()
	// Rollouts sweep the fleet commit by commit: every host reports commit n
	// in progress, then success, before commit n+1. Workers take slices of
	// hosts, each flushing a batch per slice.
	type job struct{ n, from, to int }
	reports := reported
	base := reports.Load()
	work := func(j job) error {
		var batch []model.Report
		for _, st := range []model.Status{model.StatusInProgress, model.StatusSuccess} {
			for h := j.from; h < j.to; h++ {
				for k := range s.ReconcilersPerHost {
					batch = append(batch, s.report(h, k, j.n, st))
				}
			}
		}
		if _, err := ing.ApplyReports(ctx, batch); err != nil {
			return err
		}
		reports.Add(int64(len(batch)))
		return nil
	}
	hostsPerJob := max(1, s.Batch/(2*max(1, s.ReconcilersPerHost)))
	last := time.Now()
	for n := range s.History {
		// All hosts finish commit n before any reports commit n+1.
		err = inParallel(s.Workers, func(send func(job)) {
			for from := 0; from < s.Hosts && ctx.Err() == nil; from += hostsPerJob {
				send(job{n, from, min(s.Hosts, from+hostsPerJob)})
				if progress != nil && time.Since(last) > 5*time.Second {
					last = time.Now()
					fmt.Fprintf(progress, "  commit %d/%d, %d reports, %.0f reports/s\n", n+1, s.History, reports.Load()-base, float64(reports.Load()-base)/time.Since(reportStart).Seconds())
				}
			}
		}, work)
		if err != nil {
			return res, err
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Reports = int(reports.Load() - base)
	res.Elapsed = time.Since(start)
	res.ReportsPerSecond = float64(res.Reports) / time.Since(reportStart).Seconds()
	return res, nil
}

// applyDescriptors assigns each target its History versions, oldest
// first, with Workers writers taking whole targets (as the controller
// reconciles several resources at once), and returns how many it applied.
func (s Spec) applyDescriptors(ctx context.Context, ing *ingest.Service) (int, error) {
	type target struct{ w, e, r int }
	var applied atomic.Int64
	err := inParallel(s.Workers, func(send func(target)) {
		for w := range s.Workloads {
			for e := range s.Environments {
				for r := range s.Regions {
					if ctx.Err() == nil {
						send(target{w, e, r})
					}
				}
			}
		}
	}, func(t target) error {
		for n := range s.History {
			_, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: fmt.Sprintf("team-%02d", t.w%20), Application: fmt.Sprintf("app-%03d", t.w/4),
				Workload: fmt.Sprintf("workload-%03d", t.w), Environment: envName(t.e), Target: fmt.Sprintf("region-%d", t.r),
				Manifests: endpoint(t.w, t.e, t.r), Version: fmt.Sprintf("1.%d.0", n), Commit: commit(t.w, t.e, n)})
			if err != nil {
				return err
			}
			applied.Add(1)
		}
		return nil
	})
	return int(applied.Load()), cmp.Or(err, ctx.Err())
}

// inParallel runs do on every job that feed sends, on workers goroutines,
// and returns the first error.
func inParallel[J any](workers int, feed func(send func(J)), do func(J) error) error {
	jobs := make(chan J)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := do(j); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	feed(func(j J) { jobs <- j })
	close(jobs)
	wg.Wait()
	return first
}

// Unchanged replays n reports that repeat stored state, batch at a time
// (1: one by one), and returns the rate and how many changed anything;
// within the heartbeat they must cost no writes.
func Unchanged(ctx context.Context, ing *ingest.Service, s Spec, n, batch int) (float64, int, error) {
	start := time.Now()
	changed := 0
	for from := 0; from < n; from += max(1, batch) {
		var rs []model.Report
		for i := from; i < min(n, from+max(1, batch)); i++ {
			rs = append(rs, s.report(i%s.Hosts, (i/s.Hosts)%s.ReconcilersPerHost, s.History-1, model.StatusSuccess))
		}
		res, err := ing.ApplyReports(ctx, rs)
		if err != nil {
			return 0, changed, err
		}
		for _, r := range res {
			if r.Changed {
				changed++
			}
		}
	}
	return float64(n) / time.Since(start).Seconds(), changed, nil
}

// Timing is the latency of one query: its first run, which prepares and
// plans its statements on a connection that has not run them (the hub's
// connections keep them, so only a new connection pays this), and the
// runs after it.
type Timing struct {
	Name            string
	Rows            int
	First, P50, P99 time.Duration
}

// Queries times every report and the gate, once and then runs times each.
func Queries(ctx context.Context, rep *reports.Service, s Spec, runs int) ([]Timing, error) {
	return QueriesFor(ctx, rep, s, runs, 0, reports.MaxLimit)
}

// QueriesFor is Queries running each query at least runs times and for at
// least minTime (after its first run): enough runs for a p99 that is not
// just the slowest one, and time for a writer beside them to write enough
// to matter. Each list report asks for pages of page rows.
func QueriesFor(ctx context.Context, rep *reports.Service, s Spec, runs int, minTime time.Duration, page int) ([]Timing, error) {
	all := reports.Page{Limit: page}
	env := reports.Filter{Environment: envName(s.Environments - 1)}
	host := reports.Filter{Host: s.hostName(s.Hosts - 1)}
	mid, err := middleOfHistory(ctx, rep)
	if err != nil {
		return nil, err
	}
	cases := []struct {
		name string
		run  func() (int, error)
	}{
		{"environment state (all)", func() (int, error) { r, _, err := rep.EnvironmentState(ctx, reports.Filter{}, all); return len(r), err }},
		{"environment state (one env)", func() (int, error) { r, _, err := rep.EnvironmentState(ctx, env, all); return len(r), err }},
		{"host state (first page)", func() (int, error) { r, _, err := rep.HostState(ctx, reports.Filter{}, all); return len(r), err }},
		{"host state (one workload)", func() (int, error) {
			r, _, err := rep.HostState(ctx, reports.Filter{Workload: "workload-007"}, all)
			return len(r), err
		}},
		{"discrepancies", func() (int, error) {
			d, _, err := rep.Discrepancies(ctx, reports.Filter{}, nil, all)
			return len(d.Items), err
		}},
		{"history (one workload)", func() (int, error) {
			r, _, err := rep.History(ctx, reports.Filter{Workload: "workload-007"}, all)
			return len(r), err
		}},
		{"history (all)", func() (int, error) { r, _, err := rep.History(ctx, reports.Filter{}, all); return len(r), err }},
		{"drift (one env)", func() (int, error) { r, _, err := rep.Drift(ctx, env, 0, all); return len(r), err }},
		{"dora (one env)", func() (int, error) { r, _, err := rep.DORA(ctx, env, all); return len(r), err }},
		// Filters that narrow to one host or a time range read other paths.
		{"host state (one env)", func() (int, error) { r, _, err := rep.HostState(ctx, env, all); return len(r), err }},
		{"history (one host)", func() (int, error) { r, _, err := rep.History(ctx, host, all); return len(r), err }},
		{"drift (one host)", func() (int, error) { r, _, err := rep.Drift(ctx, host, 0, all); return len(r), err }},
		{"dora (one host)", func() (int, error) { r, _, err := rep.DORA(ctx, host, all); return len(r), err }},
		{"environment state (last hour)", func() (int, error) {
			r, _, err := rep.EnvironmentState(ctx, reports.Filter{Since: time.Now().Add(-time.Hour)}, all)
			return len(r), err
		}},
		// Time travel to the middle of the history: half the fleet's
		// status changes came after it.
		{"environment state (mid-history)", func() (int, error) {
			r, _, err := rep.EnvironmentStateAt(ctx, reports.Filter{}, mid, all)
			return len(r), err
		}},
		// Host by host at that time: each row's reconciler from the history.
		{"host state (mid-history)", func() (int, error) {
			r, _, err := rep.HostStateAt(ctx, reports.Filter{}, mid, all)
			return len(r), err
		}},
		{"drift (all)", func() (int, error) { r, _, err := rep.Drift(ctx, reports.Filter{}, 0, all); return len(r), err }},
		{"headline", func() (int, error) { h, err := rep.Headline(ctx, reports.Filter{}); return h.Hosts, err }},
		{"rollout gate", func() (int, error) {
			g, err := rep.Gate(ctx, reports.GateQuery{Target: "region-0", Workload: "workload-007", Environment: envName(0), Version: fmt.Sprintf("1.%d.0", s.History-1)})
			return g.Total, err
		}},
	}
	var out []Timing
	for _, c := range cases {
		var ds []time.Duration
		rows := 0
		var since time.Time
		for i := 0; i <= runs || time.Since(since) < minTime; i++ {
			if i == 1 {
				since = time.Now()
			}
			t0 := time.Now()
			n, err := c.run()
			if err != nil {
				return out, fmt.Errorf("%s: %w", c.name, err)
			}
			ds = append(ds, time.Since(t0))
			rows = n
		}
		first, ds := ds[0], ds[1:]
		slices.Sort(ds)
		out = append(out, Timing{Name: c.name, Rows: rows, First: first, P50: percentile(ds, 50), P99: percentile(ds, 99)})
	}
	return out, nil
}

// percentile is the p-th percentile of sorted durations by nearest rank:
// the smallest that at least p % of them do not exceed. Below 100 runs
// the 99th is the slowest run.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100 // ceil(n × p / 100)
	return sorted[max(rank, 1)-1]
}

// middleOfHistory is a time in the middle of the fleet's status history:
// the median of the times one workload's assignments first succeeded
// (the generator reports commits in order, fleet-wide).
func middleOfHistory(ctx context.Context, rep *reports.Service) (time.Time, error) {
	rows, _, err := rep.History(ctx, reports.Filter{Workload: "workload-007"}, reports.Page{Limit: reports.MaxLimit})
	if err != nil {
		return time.Time{}, fmt.Errorf("history: %w", err)
	}
	var times []time.Time
	for _, r := range rows {
		if r.FirstSuccessAt != nil {
			times = append(times, *r.FirstSuccessAt)
		}
	}
	if len(times) == 0 {
		return time.Now(), nil
	}
	slices.SortFunc(times, time.Time.Compare)
	return times[len(times)/2], nil
}

// Counts reads the fleet's size from the store.
func Counts(ctx context.Context, st *store.Store) (map[string]int, error) {
	out := map[string]int{}
	for _, t := range []string{"hosts", "reconcilers", "targets", "assignments", "deployments", "deployment_history"} {
		var n int
		if err := st.Read().QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return nil, err
		}
		out[t] = n
	}
	return out, nil
}

// PrintTimings writes the latency table.
func PrintTimings(w io.Writer, ts []Timing) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "query\trows\tfirst\tp50\tp99")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%v\n", t.Name, t.Rows, t.First.Round(10*time.Microsecond), t.P50.Round(10*time.Microsecond), t.P99.Round(10*time.Microsecond))
	}
	tw.Flush()
}

// MetricsCost is what the state gauges of /metrics cost on a fleet.
type MetricsCost struct {
	// Refresh is one computation of the state gauges (in the background,
	// every --metrics-interval).
	Refresh time.Duration
	// P50 and P99 time a whole scrape of /metrics as Prometheus asks for
	// it (text format, gzipped).
	P50, P99 time.Duration
	// Series and Bytes size one scrape (Bytes: uncompressed; Gzipped: on
	// the wire); StateSeries are the state gauges among the series.
	Series, StateSeries, Bytes, Gzipped int
}

// Metrics computes the state gauges once, then scrapes /metrics runs times,
// as `tidemark serve` serves them.
func Metrics(ctx context.Context, rep *reports.Service, runs int) (MetricsCost, error) {
	var c MetricsCost
	reg := metrics.NewRegistry()
	m := metrics.New(reg)
	state := metrics.NewState(m, rep, metrics.StateOptions{Interval: time.Minute})
	start := time.Now()
	if err := state.Refresh(ctx); err != nil {
		return c, err
	}
	c.Refresh = time.Since(start)
	h := m.Handler()
	var ds []time.Duration
	for range max(1, runs) {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		t0 := time.Now()
		h.ServeHTTP(w, req)
		ds = append(ds, time.Since(t0))
		if w.Code != http.StatusOK {
			return c, fmt.Errorf("/metrics: %d %s", w.Code, w.Body.String())
		}
		c.Gzipped = w.Body.Len()
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			return c, err
		}
		text, err := io.ReadAll(zr)
		if err != nil {
			return c, err
		}
		c.Bytes, c.Series, c.StateSeries = len(text), 0, 0
		for line := range strings.SplitSeq(string(text), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			c.Series++
			if strings.HasPrefix(line, "tidemark_target_") || strings.HasPrefix(line, "tidemark_rollout") {
				c.StateSeries++
			}
		}
	}
	slices.Sort(ds)
	c.P50, c.P99 = percentile(ds, 50), percentile(ds, 99)
	return c, nil
}
