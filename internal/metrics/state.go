package metrics

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
)

// DefaultStateInterval is how often State recomputes the fleet's state.
const DefaultStateInterval = 30 * time.Second

// targetLabels label every per-target state gauge: a target's names. Never
// a host, commit or version, so the series grow with targets only.
var targetLabels = []string{"environment", "workspace", "application", "workload", "target"}

// stateStatuses are the statuses State always exports, zero or not, so that
// a series does not vanish when no host has that status.
var stateStatuses = []string{string(model.StatusSuccess), string(model.StatusFailure), string(model.StatusInProgress)}

// StateOptions configure State.
type StateOptions struct {
	// Interval between refreshes; DefaultStateInterval when 0.
	Interval time.Duration
	// StaleAfter is how long a host may be silent before it counts as
	// stale drift; the reports' default when 0.
	StaleAfter time.Duration
	// Logger logs failed refreshes; slog.Default() when nil.
	Logger *slog.Logger
	// Clock is the source of "now" for ages; time.Now when nil.
	Clock func() time.Time
}

// State exports the fleet's state for alerting: per target, its hosts, how
// many run the scheduled version, their statuses, drift by kind and whether
// a rollout is in progress (and for how long); and fleet-wide, reconcilers
// no target has and the newest report. The numbers come from
// reports.Summary, recomputed in the background every Interval; a scrape
// only sends the last result, so its cost does not depend on the fleet's
// size beyond the number of series.
type State struct {
	rep *reports.Service
	o   StateOptions

	current atomic.Pointer[[]prometheus.Metric]

	refreshSeconds prometheus.Gauge
	refreshErrors  prometheus.Counter
	refreshedAt    prometheus.Gauge
}

// The state gauges.
var (
	hostsDesc = prometheus.NewDesc(namespace+"_target_hosts",
		"Live hosts (reconcilers that have reported) of a deployment target.", targetLabels, nil)
	atScheduledDesc = prometheus.NewDesc(namespace+"_target_hosts_at_scheduled_version",
		"Hosts of a target that run its scheduled version, in any status.", targetLabels, nil)
	statusDesc = prometheus.NewDesc(namespace+"_target_hosts_status",
		"Hosts of a target by the status of their current report.", append(slices.Clone(targetLabels), "status"), nil)
	driftDesc = prometheus.NewDesc(namespace+"_target_hosts_drifted",
		"Hosts of a target that drift from the desired state, by kind: version (not at the scheduled version), failed (failing at it), unknown (a commit the hub cannot place), stale (silent for longer than the stale limit).",
		append(slices.Clone(targetLabels), "kind"), nil)
	rolloutsDesc = prometheus.NewDesc(namespace+"_rollouts_in_progress",
		"1 while a target's scheduled version has not yet succeeded on every host and fails on none, else 0.", targetLabels, nil)
	rolloutAgeDesc = prometheus.NewDesc(namespace+"_rollout_oldest_age_seconds",
		"How long the rollout in progress on a target has been going (since its version was assigned); 0 when none is.", targetLabels, nil)
	unplacedDesc = prometheus.NewDesc(namespace+"_unplaced_reconcilers",
		"Live reconcilers applying a manifests endpoint that no target has.", nil, nil)
	lastReportDesc = prometheus.NewDesc(namespace+"_last_report_timestamp_seconds",
		"When the newest report of any live reconciler arrived (absent before the first).", nil, nil)
)

// NewState registers the state gauges on reg; they are empty until the
// first Refresh (Run refreshes at once).
func NewState(reg prometheus.Registerer, rep *reports.Service, o StateOptions) *State {
	if o.Interval <= 0 {
		o.Interval = DefaultStateInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	s := &State{rep: rep, o: o,
		refreshSeconds: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "state", Name: "refresh_duration_seconds",
			Help: "How long the last computation of the state gauges took.",
		})),
		refreshErrors: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "state", Name: "refresh_errors_total",
			Help: "Failed computations of the state gauges (the store did not answer); the gauges keep their last values.",
		})),
		refreshedAt: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "state", Name: "last_refresh_timestamp_seconds",
			Help: "When the state gauges were last computed.",
		})),
	}
	register[prometheus.Collector](reg, s)
	return s
}

// Run refreshes the state now and then every Interval until ctx ends.
func (s *State) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("state metrics: refresh failed; keeping the last values", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh recomputes the state gauges from the reports.
func (s *State) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Interval)
	defer cancel()
	start := time.Now()
	sum, err := s.rep.Summary(ctx, reports.Filter{}, s.o.StaleAfter)
	if err != nil {
		s.refreshErrors.Inc()
		return err
	}
	ms := s.build(sum)
	s.current.Store(&ms)
	s.refreshSeconds.Set(time.Since(start).Seconds())
	s.refreshedAt.SetToCurrentTime()
	return nil
}

// build turns a summary into constant metrics.
func (s *State) build(sum reports.Summary) []prometheus.Metric {
	now := s.o.Clock()
	ms := make([]prometheus.Metric, 0, 2+len(sum.Targets)*(6+len(stateStatuses)+len(reports.SummaryKinds)))
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	gauge(unplacedDesc, float64(sum.Unplaced))
	if !sum.LastReportAt.IsZero() {
		gauge(lastReportDesc, float64(sum.LastReportAt.UnixNano())/1e9)
	}
	for _, t := range sum.Targets {
		labels := []string{t.Environment, t.Workspace, t.Application, t.Workload, t.Target}
		for i, l := range labels {
			labels[i] = strings.ToValidUTF8(l, "\uFFFD") // label values must be UTF-8; names may be anything
		}
		with := func(extra string) []string { return append(slices.Clone(labels), extra) }
		gauge(hostsDesc, float64(t.Hosts), labels...)
		gauge(atScheduledDesc, float64(t.AtScheduled), labels...)
		for _, st := range union(stateStatuses, t.ByStatus) {
			gauge(statusDesc, float64(t.ByStatus[st]), with(st)...)
		}
		for _, kind := range union(reports.SummaryKinds, t.Drifted) {
			gauge(driftDesc, float64(t.Drifted[kind]), with(kind)...)
		}
		inProgress, age := 0.0, 0.0
		if t.RolloutSince != nil {
			inProgress, age = 1, max(0, now.Sub(*t.RolloutSince).Seconds())
		}
		gauge(rolloutsDesc, inProgress, labels...)
		gauge(rolloutAgeDesc, age, labels...)
	}
	return ms
}

// union is always, then the other keys of counts, sorted: the label values
// to export.
func union(always []string, counts map[string]int) []string {
	out := slices.Clone(always)
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// Describe implements prometheus.Collector.
func (s *State) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hostsDesc, atScheduledDesc, statusDesc, driftDesc, rolloutsDesc, rolloutAgeDesc, unplacedDesc, lastReportDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it sends the last refresh's
// metrics.
func (s *State) Collect(ch chan<- prometheus.Metric) {
	if ms := s.current.Load(); ms != nil {
		for _, m := range *ms {
			ch <- m
		}
	}
}
