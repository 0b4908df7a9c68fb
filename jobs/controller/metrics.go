package controller

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// Metrics are the controller's Prometheus metrics (names are a contract with the dashboards).
type Metrics struct {
	transitions *prometheus.CounterVec
	expired     prometheus.Counter
	runs        *prometheus.Desc
	reader      client.Reader
}

// NewMetrics registers the metrics with reg; the sparkplace_jobruns gauge is counted from reader (the
// manager's cache) at each scrape.
func NewMetrics(reg prometheus.Registerer, reader client.Reader) *Metrics {
	m := &Metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_jobrun_transitions_total",
			Help: "Job-run state transitions recorded by the controller.",
		}, []string{"from", "to"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sparkplace_jobruns_expired_total",
			Help: "Finished job runs deleted after their TTL.",
		}),
		runs:   prometheus.NewDesc("sparkplace_jobruns", "Job runs by state.", []string{"state"}, nil),
		reader: reader,
	}
	reg.MustRegister(m.transitions, m.expired, m)
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.runs }

// Collect implements prometheus.Collector: one gauge per state, every state present.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	var list v1alpha1.JobRunList
	if err := m.reader.List(context.Background(), &list); err != nil {
		ch <- prometheus.NewInvalidMetric(m.runs, err)
		return
	}
	counts := map[v1alpha1.JobRunState]int{}
	for i := range list.Items {
		counts[list.Items[i].CurrentState()]++
	}
	for _, s := range v1alpha1.States {
		ch <- prometheus.MustNewConstMetric(m.runs, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
