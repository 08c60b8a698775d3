package arg

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark-dev/tidemark/internal/metrics"
)

// Metrics are the pollers' Prometheus collectors, labelled by resource
// (the configuration's key).
type Metrics struct {
	polls       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastPoll    *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	rows        *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	reconcilers *prometheus.GaugeVec
	changed     *prometheus.CounterVec
	created     *prometheus.CounterVec
	retired     *prometheus.CounterVec
	throttled   *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (none
// when reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	res := []string{"resource"}
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_arg_polls_total",
			Help: "Azure Resource Graph polls, by result (success or error)."}, []string{"resource", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tidemark_arg_poll_duration_seconds",
			Help:    "Duration of Azure Resource Graph polls, reading every page and storing what changed.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}}, res),
		lastPoll: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tidemark_arg_last_poll_timestamp_seconds",
			Help: "When the latest Azure Resource Graph poll ended (Unix time)."}, res),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tidemark_arg_last_success_timestamp_seconds",
			Help: "When the latest successful Azure Resource Graph poll ended (Unix time)."}, res),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_arg_rows_total",
			Help: "Flux configuration rows read from Azure Resource Graph."}, res),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_arg_rows_skipped_total",
			Help: "Rows that could not be used, by reason."}, []string{"resource", "reason"}),
		reconcilers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tidemark_arg_reconcilers",
			Help: "Reconcilers (Kustomizations of Flux configurations) seen by the latest complete poll."}, res),
		changed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_arg_reports_changed_total",
			Help: "Reconciler reports that changed the hub's state."}, res),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_arg_reconcilers_created_total",
			Help: "Reconcilers that appeared in Azure Resource Graph."}, res),
		retired: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_arg_reconcilers_retired_total",
			Help: "Reconcilers retired because they vanished from Azure Resource Graph."}, res),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_arg_throttled_total",
			Help: "Requests Azure Resource Graph throttled (HTTP 429)."}, res),
	}
	if reg != nil {
		// A registry that holds them already (a second manager in one
		// process) keeps its own, which this one then updates.
		m.polls = metrics.Register(reg, m.polls)
		m.duration = metrics.Register(reg, m.duration)
		m.lastPoll = metrics.Register(reg, m.lastPoll)
		m.lastSuccess = metrics.Register(reg, m.lastSuccess)
		m.rows = metrics.Register(reg, m.rows)
		m.skipped = metrics.Register(reg, m.skipped)
		m.reconcilers = metrics.Register(reg, m.reconcilers)
		m.changed = metrics.Register(reg, m.changed)
		m.created = metrics.Register(reg, m.created)
		m.retired = metrics.Register(reg, m.retired)
		m.throttled = metrics.Register(reg, m.throttled)
	}
	return m
}

// observe records a poll's result.
func (m *Metrics) observe(key string, r Result) {
	if m == nil {
		return
	}
	result := "success"
	if r.Err != nil {
		result = "error"
	}
	m.polls.WithLabelValues(key, result).Inc()
	m.duration.WithLabelValues(key).Observe(r.Duration.Seconds())
	end := float64(r.Started.Add(r.Duration).UnixNano()) / 1e9
	m.lastPoll.WithLabelValues(key).Set(end)
	if r.Err == nil {
		m.lastSuccess.WithLabelValues(key).Set(end)
		m.reconcilers.WithLabelValues(key).Set(float64(r.Reconcilers))
	}
	m.rows.WithLabelValues(key).Add(float64(r.Rows))
	for reason, n := range r.SkippedReasons {
		m.skipped.WithLabelValues(key, reason).Add(float64(n))
	}
	m.changed.WithLabelValues(key).Add(float64(r.Changed))
	m.created.WithLabelValues(key).Add(float64(r.Created))
	m.retired.WithLabelValues(key).Add(float64(r.Retired))
	m.throttled.WithLabelValues(key).Add(float64(r.Throttled))
}

// forget drops the series of a configuration no longer polled.
func (m *Metrics) forget(key string) {
	if m == nil {
		return
	}
	match := prometheus.Labels{"resource": key}
	m.polls.DeletePartialMatch(match)
	m.duration.DeletePartialMatch(match)
	m.lastPoll.DeletePartialMatch(match)
	m.lastSuccess.DeletePartialMatch(match)
	m.rows.DeletePartialMatch(match)
	m.skipped.DeletePartialMatch(match)
	m.reconcilers.DeletePartialMatch(match)
	m.changed.DeletePartialMatch(match)
	m.created.DeletePartialMatch(match)
	m.retired.DeletePartialMatch(match)
	m.throttled.DeletePartialMatch(match)
}
