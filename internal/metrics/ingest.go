package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of an ingested document.
const (
	// OutcomeApplied: stored; something changed.
	OutcomeApplied = "applied"
	// OutcomeUnchanged: it repeated what was stored; nothing was written.
	OutcomeUnchanged = "unchanged"
	// OutcomeRejected: bad input, nothing stored; the reason says why.
	OutcomeRejected = "rejected"
	// OutcomeFailed: the hub could not store it; the reason says why. The
	// sender may retry.
	OutcomeFailed = "failed"
)

// Reasons of rejected and failed documents. Sources may add their own, as
// long as they are few and fixed (they are label values).
const (
	ReasonInvalid   = "invalid"     // a field is invalid
	ReasonConflict  = "conflict"    // it contradicts stored state
	ReasonMalformed = "malformed"   // unreadable: not JSON or YAML, too large, empty
	ReasonAborted   = "aborted"     // an earlier document of the same request failed
	ReasonStore     = "store_error" // the database failed
	ReasonCanceled  = "canceled"    // the sender went away
)

// Sources of documents. Each input names itself; these are the hub's own.
const (
	SourceAPI        = "api"        // the HTTP API (tidemark apply, agents, pipelines)
	SourceKubernetes = "kubernetes" // the controller's watches
)

// Ingest counts documents by kind (DeploymentDescriptor, Reconciler, ...),
// source and outcome, and times ingest calls. Every source calls it, so one
// set of series covers them all. A nil *Ingest records nothing.
type Ingest struct {
	received  *prometheus.CounterVec
	documents *prometheus.CounterVec
	batch     *prometheus.HistogramVec
	duration  *prometheus.HistogramVec
}

// NewIngest registers the ingest metrics on reg.
func NewIngest(reg prometheus.Registerer) *Ingest {
	return &Ingest{
		received: Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "ingest", Name: "documents_received_total",
			Help: "Documents received by ingest, by kind and source.",
		}, []string{"kind", "source"})),
		documents: Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "ingest", Name: "documents_total",
			Help: "Documents ingested, by kind, source and outcome (applied, unchanged, rejected, failed); reason says why a document was rejected or failed.",
		}, []string{"kind", "source", "outcome", "reason"})),
		batch: Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "ingest", Name: "batch_size",
			Help:    "Documents per ingest call (a request, a poll, a batch of reports).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1 .. 16384
		}, []string{"kind", "source"})),
		duration: Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "ingest", Name: "duration_seconds",
			Help:    "Time an ingest call took, validation and store included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1 ms .. 60 s
		}, []string{"kind", "source"})),
	}
}

// Record counts n documents of a kind from a source that ended with
// outcome; reason is "" for applied and unchanged documents. Every
// recorded document counts as received.
func (m *Ingest) Record(kind, source, outcome, reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.received.WithLabelValues(kind, source).Add(float64(n))
	m.documents.WithLabelValues(kind, source, outcome, reason).Add(float64(n))
}

// Observe records one ingest call of size documents that took took.
func (m *Ingest) Observe(kind, source string, size int, took time.Duration) {
	if m == nil {
		return
	}
	m.batch.WithLabelValues(kind, source).Observe(float64(size))
	m.duration.WithLabelValues(kind, source).Observe(took.Seconds())
}
