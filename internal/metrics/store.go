package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// Store counts the transactions the store ran again after a transient
// conflict (serialization failure, deadlock, lost connection). A steady
// rate means writers contend for the same rows; a burst, a database
// restart. A nil *Store records nothing.
type Store struct {
	retries *prometheus.CounterVec
}

// NewStore registers the store metrics on reg.
func NewStore(reg prometheus.Registerer) *Store {
	return &Store{retries: Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "store", Name: "transaction_retries_total",
		Help: "Transactions run again after a transient conflict, by store engine.",
	}, []string{"engine"}))}
}

// Watch makes st count its retries here.
func (m *Store) Watch(st *store.Store) {
	if m == nil {
		return
	}
	c := m.retries.WithLabelValues(st.Engine())
	st.OnRetry(func(error) { c.Inc() })
}
