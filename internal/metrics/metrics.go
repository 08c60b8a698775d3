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
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

	reg Registry
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

// Handler serves the registry's metrics in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, EnableOpenMetrics: true})
}

// register registers c on reg, or returns the equal collector reg already
// holds. Other errors are programming errors (an invalid or clashing
// metric), as for prometheus.MustRegister.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
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
