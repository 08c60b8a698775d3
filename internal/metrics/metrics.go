// Package metrics holds Tidemark's Prometheus metrics: what ingest received
// from every source and what became of it, the store's transaction retries,
// the HTTP API's requests, and the fleet's state for alerting (computed by
// the reports in the background, so that a scrape only encodes numbers).
//
// Every metric is named tidemark_*. State gauges carry the labels
// workspace, application, workload, environment and target, never a host,
// commit or version: their number grows with targets, not with hosts.
package metrics

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

const namespace = "tidemark"

// Registry is where metrics are registered and gathered from:
// a *prometheus.Registry, or controller-runtime's metrics.Registry.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Metrics are one process's instruments, registered on one registry.
type Metrics struct {
	// Ingest counts documents from every source.
	Ingest *Ingest
	// HTTP counts the API's requests.
	HTTP *HTTP
	// Store counts the store's transaction retries.
	Store *Store

	reg   Registry
	state atomic.Pointer[State] // set by NewState
}

// New registers the ingest, HTTP and store instruments on reg. Instruments
// that reg already holds (a second manager in one process) are reused.
func New(reg Registry) *Metrics {
	return &Metrics{Ingest: NewIngest(reg), HTTP: NewHTTP(reg), Store: NewStore(reg), reg: reg}
}

// NewRegistry returns a registry with the Go runtime and process
// collectors, for a process that serves its own /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves the registry's metrics and the state gauges (see
// NewState) in the Prometheus text format, gzipped when the scraper
// accepts it. The state gauges are encoded when they are computed, not at
// each scrape: at thousands of targets that is most of a scrape's work.
// A collector that fails to gather is left out, as promhttp's
// ContinueOnError does.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mfs, err := m.reg.Gather()
		if err != nil && len(mfs) == 0 {
			http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		var state *encoded
		if s := m.state.Load(); s != nil {
			state = s.current.Load()
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		w.Header().Add("Vary", "Accept-Encoding")
		gz := acceptsGzip(r)
		var out io.Writer = w
		var zw *gzip.Writer
		if gz {
			w.Header().Set("Content-Encoding", "gzip")
			zw = gzip.NewWriter(w)
			out = zw
		}
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(out, mf); err != nil {
				return // the scraper went away
			}
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				return
			}
		}
		switch {
		case state == nil:
		case gz:
			// A second gzip member: gzip readers read members in a row.
			_, _ = w.Write(state.gzipped)
		default:
			_, _ = w.Write(state.text)
		}
	})
}

// acceptsGzip reports whether the request accepts a gzipped answer.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// Register registers c on reg, or returns the equal collector reg already
// holds. Other errors are programming errors (an invalid or clashing
// metric), as for prometheus.MustRegister.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}
