package scratch

import "github.com/prometheus/client_golang/prometheus"

// Operations, the "op" label of sparkplace_nodeagent_errors_total.
const (
	OpList   = "list"   // listing the node's pods
	OpGet    = "get"    // reading one pod
	OpRead   = "read"   // reading the scratch directories
	OpRemove = "remove" // removing a directory
)

// Metrics are the node agent's Prometheus collectors; nothing is global.
type Metrics struct {
	DirsRemoved    prometheus.Counter
	BytesReclaimed prometheus.Counter
	Errors         *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not registered, as in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		DirsRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sparkplace_nodeagent_dirs_removed_total",
			Help: "Pod scratch directories removed because their pod is gone or terminated.",
		}),
		BytesReclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sparkplace_nodeagent_bytes_reclaimed_total",
			Help: "Bytes of regular files in the removed pod scratch directories.",
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_nodeagent_errors_total",
			Help: "Node agent failures by operation (list, get, read, remove).",
		}, []string{"op"}),
	}
	for _, op := range []string{OpList, OpGet, OpRead, OpRemove} {
		m.Errors.WithLabelValues(op) // export 0 from the start, so alerts on rate() work
	}
	if reg != nil {
		reg.MustRegister(m.DirsRemoved, m.BytesReclaimed, m.Errors)
	}
	return m
}
