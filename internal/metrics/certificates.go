package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Certificate is what the TLS gauges read of one certificate the HTTPS
// listener serves. metrics does not import certs: the caller converts
// certs.Manager.Status.
type Certificate struct {
	// Name is the certificate's first host name.
	Name     string
	NotAfter time.Time
}

var descCertExpiry = prometheus.NewDesc("gatehouse_tls_certificate_expiry_days",
	"Days until the HTTPS listener's certificate expires (negative once expired), by its first host name.", []string{"name"}, nil)

// certCollector reads the certificates at scrape time. It is registered
// from the start, empty until SetCertificates, so that the metric's name
// is known even without TLS.
type certCollector struct {
	read atomic.Pointer[func() []Certificate]
}

// SetCertificates makes /metrics report read's certificates; a
// certificate not obtained yet (zero NotAfter) has no series.
func (m *Metrics) SetCertificates(read func() []Certificate) { m.certs.read.Store(&read) }

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descCertExpiry }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	read := c.read.Load()
	if read == nil {
		return
	}
	now := time.Now()
	seen := map[string]bool{}
	for _, cert := range (*read)() {
		if cert.NotAfter.IsZero() || seen[cert.Name] {
			continue
		}
		seen[cert.Name] = true
		days := cert.NotAfter.Sub(now).Hours() / 24
		ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, days, cert.Name)
	}
}
