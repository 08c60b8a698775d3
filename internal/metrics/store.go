package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// Store counts the transactions the store ran again after a transient
// conflict (serialization failure, deadlock, lost connection). A steady
// rate means writers contend for the same rows; a burst, a database
// restart. A nil *Store records nothing.
//
// It also shows how many endpoints' time-travel snapshots wait for their
// rebuild from the history (after late reports, moves to another
// endpoint, retention or an upgrade): time travel reads those endpoints'
// history, slower, until the hub has rebuilt them.
type Store struct {
	reg     prometheus.Registerer
	retries *prometheus.CounterVec
}

// NewStore registers the store metrics on reg.
func NewStore(reg prometheus.Registerer) *Store {
	return &Store{reg: reg, retries: Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "store", Name: "transaction_retries_total",
		Help: "Transactions run again after a transient conflict, by store engine.",
	}, []string{"engine"}))}
}

// Watch makes st count its retries here, and show the snapshots waiting
// for their rebuild as the hub last counted them (a scrape never queries
// the database).
func (m *Store) Watch(st *store.Store) {
	if m == nil {
		return
	}
	c := m.retries.WithLabelValues(st.Engine())
	st.OnRetry(func(error) { c.Inc() })
	Register(m.reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "store", Name: "endpoint_series_waiting",
		Help: "Endpoints whose time-travel snapshots wait for their rebuild from the history, as last counted (-1: not yet).",
	}, func() float64 {
		n, ok := st.SeriesWaiting()
		if !ok {
			return -1
		}
		return float64(n)
	}))
}
