// Package storemetrics exposes the store's read replicas to Prometheus:
// register NewCollector(st) with the registry that serves /metrics.
package storemetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark-dev/tidemark/internal/store"
)

var (
	healthyDesc = prometheus.NewDesc("tidemark_store_replica_healthy",
		"1 when the read replica serves reads (reachable, replaying, lag within the bound), else 0.",
		[]string{"replica"}, nil)
	lagDesc = prometheus.NewDesc("tidemark_store_replica_lag_seconds",
		"How far behind the primary the read replica's data may be (an upper bound); absent when unknown.",
		[]string{"replica"}, nil)
	readsDesc = prometheus.NewDesc("tidemark_store_replica_reads_total",
		"Reads the read replica served.",
		[]string{"replica"}, nil)
	fallbackDesc = prometheus.NewDesc("tidemark_store_replica_fallback_reads_total",
		"Reads sent to the primary because no read replica was healthy.",
		nil, nil)
)

// Collector reads the store's replica status at each scrape; it never
// queries the database.
type Collector struct {
	st *store.Store
}

// NewCollector returns a collector of st's read replicas. Without
// replicas it collects nothing.
func NewCollector(st *store.Store) *Collector { return &Collector{st: st} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- healthyDesc
	ch <- lagDesc
	ch <- readsDesc
	ch <- fallbackDesc
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	rs := c.st.Replicas()
	if len(rs) == 0 {
		return
	}
	for _, r := range rs {
		healthy := 0.0
		if r.Healthy {
			healthy = 1
		}
		ch <- prometheus.MustNewConstMetric(healthyDesc, prometheus.GaugeValue, healthy, r.Name)
		if r.LagKnown {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, r.Lag.Seconds(), r.Name)
		}
		ch <- prometheus.MustNewConstMetric(readsDesc, prometheus.CounterValue, float64(r.Reads), r.Name)
	}
	ch <- prometheus.MustNewConstMetric(fallbackDesc, prometheus.CounterValue, float64(c.st.PrimaryFallbackReads()))
}
