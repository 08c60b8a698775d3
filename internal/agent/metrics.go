package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var nsGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

type metrics struct {
	changes, sent, pushErrors, rejected prometheus.Counter
	skipped                             *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, a *Agent) *metrics {
	m := &metrics{
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidemark_agent_changes_total",
			Help: "Reconciler changes queued for the hub (reports, registrations, retirements)."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidemark_agent_sent_total",
			Help: "Changes the hub acknowledged."}),
		pushErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidemark_agent_push_errors_total",
			Help: "Requests to the hub that failed and were retried."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidemark_agent_rejected_total",
			Help: "Changes the hub refused as invalid (dropped)."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidemark_agent_objects_skipped_total",
			Help: "Object updates that could not be reported, by kind and reason."}, []string{"kind", "reason"}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.changes, m.sent, m.pushErrors, m.rejected, m.skipped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tidemark_agent_buffered",
			Help: "Changes waiting for the hub."}, func() float64 { return float64(a.out.len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tidemark_agent_dropped_total",
			Help: "Intermediate changes dropped because the buffer was full (the latest of each reconciler is kept)."},
			func() float64 { return float64(a.out.droppedTotal()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tidemark_agent_hub_up",
			Help: "1 when the latest request to the hub succeeded."}, func() float64 {
			if a.hubOK.Load() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tidemark_agent_reconcilers",
			Help: "Reconcilers the agent reports."}, func() float64 { return float64(len(a.sentKeys())) }),
	)
	return m
}
