package metrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

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
var stateStatuses = []string{string(model.StatusSuccess), string(model.StatusFailure), string(model.StatusInProgress), reports.StatusNotReported}

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
// reports.Summary, recomputed in the background every Interval and kept
// encoded in the exposition format (plain and gzipped): a scrape copies
// them, so its cost does not depend on the fleet's size beyond the bytes.
type State struct {
	rep *reports.Service
	o   StateOptions

	current atomic.Pointer[encoded]

	refreshSeconds prometheus.Gauge
	refreshErrors  prometheus.Counter
	refreshedAt    prometheus.Gauge
}

// encoded is one refresh's state gauges in the text exposition format.
type encoded struct {
	text, gzipped []byte
}

// family describes a state gauge.
type family struct {
	name, help string
	labels     []string
}

// The state gauges.
var (
	hostsFamily = family{namespace + "_target_hosts",
		"Live hosts (reconcilers, reported or only registered) of a deployment target.", targetLabels}
	atScheduledFamily = family{namespace + "_target_hosts_at_scheduled_version",
		"Hosts of a target that run its scheduled version, in any status.", targetLabels}
	statusFamily = family{namespace + "_target_hosts_status",
		"Hosts of a target by the status of their current report (not_reported: registered, no report yet).", append(slices.Clone(targetLabels), "status")}
	driftFamily = family{namespace + "_target_hosts_drifted",
		"Hosts of a target that drift from the desired state, by kind: version (not at the scheduled version), failed (failing at it), unknown (a commit the hub cannot place), stale (silent for longer than the stale limit), not_reported (registered, no report yet).",
		append(slices.Clone(targetLabels), "kind")}
	rolloutsFamily = family{namespace + "_rollouts_in_progress",
		"1 while a target's scheduled version has not yet succeeded on every host and fails on none, else 0.", targetLabels}
	rolloutAgeFamily = family{namespace + "_rollout_oldest_age_seconds",
		"How long the rollout in progress on a target has been going (since its version was assigned); 0 when none is.", targetLabels}
	unplacedFamily = family{namespace + "_unplaced_reconcilers",
		"Live reconcilers applying a manifests endpoint that no target has.", nil}
	lastReportFamily = family{namespace + "_last_report_timestamp_seconds",
		"When the newest report of any live reconciler arrived (absent before the first).", nil}
)

// NewState makes m serve the state gauges (empty until the first Refresh;
// Run refreshes at once) and registers the refresh's own metrics on m's
// registry.
func NewState(m *Metrics, rep *reports.Service, o StateOptions) *State {
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
		refreshSeconds: Register(m.reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "state", Name: "refresh_duration_seconds",
			Help: "How long the last computation of the state gauges took.",
		})),
		refreshErrors: Register(m.reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "state", Name: "refresh_errors_total",
			Help: "Failed computations of the state gauges (the store did not answer); the gauges keep their last values.",
		})),
		refreshedAt: Register(m.reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "state", Name: "last_refresh_timestamp_seconds",
			Help: "When the state gauges were last computed.",
		})),
	}
	m.state.Store(s)
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
	enc, err := encode(s.families(sum))
	if err != nil {
		s.refreshErrors.Inc()
		return err
	}
	s.current.Store(enc)
	s.refreshSeconds.Set(time.Since(start).Seconds())
	s.refreshedAt.SetToCurrentTime()
	return nil
}

// families turns a summary into metric families, targets in the order of
// the reports.
func (s *State) families(sum reports.Summary) []*dto.MetricFamily {
	now := s.o.Clock()
	mfs := map[string]*dto.MetricFamily{}
	var order []string
	gauge := func(f family, v float64, values ...string) {
		mf := mfs[f.name]
		if mf == nil {
			mf = &dto.MetricFamily{Name: proto.String(f.name), Help: proto.String(f.help), Type: dto.MetricType_GAUGE.Enum()}
			mfs[f.name] = mf
			order = append(order, f.name)
		}
		m := &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(v)}}
		for i, l := range f.labels {
			// Label values must be UTF-8; names may be anything.
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l), Value: proto.String(strings.ToValidUTF8(values[i], "\uFFFD"))})
		}
		mf.Metric = append(mf.Metric, m)
	}
	gauge(unplacedFamily, float64(sum.Unplaced))
	if !sum.LastReportAt.IsZero() {
		gauge(lastReportFamily, float64(sum.LastReportAt.UnixNano())/1e9)
	}
	for _, t := range sum.Targets {
		labels := []string{t.Environment, t.Workspace, t.Application, t.Workload, t.Target}
		with := func(extra string) []string { return append(slices.Clone(labels), extra) }
		gauge(hostsFamily, float64(t.Hosts), labels...)
		gauge(atScheduledFamily, float64(t.AtScheduled), labels...)
		for _, st := range union(stateStatuses, t.ByStatus) {
			gauge(statusFamily, float64(t.ByStatus[st]), with(st)...)
		}
		for _, kind := range union(reports.SummaryKinds, t.Drifted) {
			gauge(driftFamily, float64(t.Drifted[kind]), with(kind)...)
		}
		inProgress, age := 0.0, 0.0
		if t.RolloutSince != nil {
			inProgress, age = 1, max(0, now.Sub(*t.RolloutSince).Seconds())
		}
		gauge(rolloutsFamily, inProgress, labels...)
		gauge(rolloutAgeFamily, age, labels...)
	}
	out := make([]*dto.MetricFamily, len(order))
	for i, name := range order {
		out[i] = mfs[name]
	}
	return out
}

// encode writes families in the text exposition format, plain and gzipped.
func encode(mfs []*dto.MetricFamily) (*encoded, error) {
	var text bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			return nil, err
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(text.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &encoded{text: text.Bytes(), gzipped: gz.Bytes()}, nil
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
