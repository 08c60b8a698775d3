// Package sources holds what the hub's telemetry sources share: the OTLP
// logs receiver (package otlp) and the Prometheus poller (package
// prometheus) turn what they receive into reports for ingest, and count
// what they did with the metrics defined here.
package sources

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what one source did with what it received. Every source
// registers its own, told apart by the constant label source ("otlp",
// "prometheus/<name>"), so that several sources share one registry.
type Metrics struct {
	// Received counts records (OTLP log records, Prometheus series of
	// reconcilers) that reached the source.
	Received prometheus.Counter
	// Applied counts reports that changed the stored state; replays and
	// unchanged reports are received but not applied.
	Applied prometheus.Counter
	// Rejected counts records that made no report, by reason.
	Rejected *prometheus.CounterVec
	// Warnings counts reports stored with a warning, by reason (such as
	// an environment that differs from the target's).
	Warnings *prometheus.CounterVec
	// Lag observes how long after a reconciler reached its state the
	// report arrived at the hub.
	Lag prometheus.Histogram
}

// NewMetrics creates the metrics of source and registers them with reg
// (nothing is registered when reg is nil).
func NewMetrics(reg prometheus.Registerer, source string) (*Metrics, error) {
	labels := prometheus.Labels{"source": source}
	m := &Metrics{
		Received: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidemark_source_records_received_total",
			Help: "Records (OTLP log records, Prometheus series) a telemetry source received.", ConstLabels: labels}),
		Applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidemark_source_reports_applied_total",
			Help: "Reports from a telemetry source that changed the stored state.", ConstLabels: labels}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_source_records_rejected_total",
			Help: "Records from a telemetry source that made no report, by reason.", ConstLabels: labels}, []string{"reason"}),
		Warnings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_source_report_warnings_total",
			Help: "Reports from a telemetry source stored with a warning, by reason.", ConstLabels: labels}, []string{"reason"}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tidemark_source_report_lag_seconds",
			Help:        "Time from a reconciler reaching its state to its report arriving at the hub.",
			ConstLabels: labels, Buckets: []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Received, m.Applied, m.Rejected, m.Warnings, m.Lag} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// ObserveLag records the lag of a report observed at observedAt and
// received at now; reports without their own time have none.
func (m *Metrics) ObserveLag(observedAt, now time.Time) {
	if observedAt.IsZero() {
		return
	}
	m.Lag.Observe(max(now.Sub(observedAt), 0).Seconds())
}
