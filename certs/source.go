package certs

import (
	"context"
	"crypto/tls"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Certificate names used as the "cert" label of the expiry metric and as keys of [Source.Expiry].
const (
	// CertServing is the certificate the webhook serves.
	CertServing = "serving"
	// CertCA is the CA that signed the serving certificate.
	CertCA = "ca"
)

// Source is where the webhook's TLS server gets its certificate. Implementations are safe for concurrent use.
type Source interface {
	// GetCertificate returns the current serving certificate; it fits tls.Config.GetCertificate.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Start keeps the certificate current until ctx is done. It returns nil when ctx is done and an error
	// only when the source cannot work at all.
	Start(ctx context.Context) error
	// Ready returns nil while a certificate that is valid now is loaded.
	Ready() error
	// Expiry returns the NotAfter of each loaded certificate by name ([CertServing], [CertCA]).
	Expiry() map[string]time.Time
}

// ReadyCheck adapts a Source to controller-runtime's healthz.Checker, for mgr.AddReadyzCheck: the pod is not
// ready, and gets no admission traffic, until it holds a valid certificate.
func ReadyCheck(s Source) func(*http.Request) error {
	return func(*http.Request) error { return s.Ready() }
}

// Collector exports the expiry of a Source's certificates as
// sparkplace_certificate_expiry_timestamp_seconds{cert="serving|ca"}, read at scrape time so it never lags
// a rotation. Register it with controller-runtime's metrics.Registry.
type Collector struct {
	source Source
	desc   *prometheus.Desc
}

var _ prometheus.Collector = &Collector{}

// NewCollector returns a Collector for s.
func NewCollector(s Source) *Collector {
	return &Collector{
		source: s,
		desc: prometheus.NewDesc("sparkplace_certificate_expiry_timestamp_seconds",
			"NotAfter of the certificate the webhook currently holds, in seconds since the Unix epoch.",
			[]string{"cert"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	exp := c.source.Expiry()
	names := make([]string, 0, len(exp))
	for n := range exp {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(exp[n].UnixNano())/1e9, n)
	}
}
