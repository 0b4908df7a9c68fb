package api

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's Prometheus metrics (names are a contract with the dashboards). A nil *Metrics
// records nothing.
type Metrics struct {
	requests     *prometheus.CounterVec
	authFailures *prometheus.CounterVec
}

// NewMetrics registers the API's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_api_requests_total",
			Help: "emr-containers API requests by operation and HTTP status code.",
		}, []string{"operation", "code"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_api_auth_failures_total",
			Help: "Refused API requests by reason (missing, malformed, unknown_key, bad_signature, expired, scope, body_hash, host, cross_site, content_type).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.authFailures)
	return m
}

func (m *Metrics) request(op string, status int) {
	if m != nil {
		m.requests.WithLabelValues(op, strconv.Itoa(status)).Inc()
	}
}

func (m *Metrics) authFailure(reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(reason).Inc()
	}
}
