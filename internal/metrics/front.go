package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// FrontCounts is what the listeners' metrics read at scrape time, summed
// over the listeners. metrics does not import front or gateway: the
// caller adds them up.
type FrontCounts struct {
	// H2Floods and H2RapidResets are the HTTP/2 connections ended with
	// GOAWAY ENHANCE_YOUR_CALM, by the budget they spent.
	H2Floods, H2RapidResets uint64
	// TLSHandshakeErrors counts failed TLS handshakes.
	TLSHandshakeErrors uint64
	// BufferedBytes is the memory bodies read ahead of their reader hold
	// now (limits.buffer_memory's use).
	BufferedBytes int64
}

var (
	descH2Ended = prometheus.NewDesc("gatehouse_h2_connections_ended_total",
		"HTTP/2 connections ended with GOAWAY ENHANCE_YOUR_CALM, by reason (flood: frames that ask for no request; rapid_reset: streams reset as they were opened).", []string{"reason"}, nil)
	descTLSErrors = prometheus.NewDesc("gatehouse_tls_handshake_errors_total",
		"TLS handshakes with clients that failed.", nil, nil)
	descBuffered = prometheus.NewDesc("gatehouse_buffered_bytes",
		"Memory held by request bodies and answers read ahead of their reader (bounded by limits.buffer_memory; beyond it they go to temporary files).", nil, nil)
)

// frontCollector reads the listeners' counts at scrape time; registered
// from the start, it reports zeros until SetFront.
type frontCollector struct {
	read atomic.Pointer[func() FrontCounts]
}

// SetFront makes /metrics report read's counts.
func (m *Metrics) SetFront(read func() FrontCounts) { m.front.read.Store(&read) }

func (c *frontCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descH2Ended
	ch <- descTLSErrors
	ch <- descBuffered
}

func (c *frontCollector) Collect(ch chan<- prometheus.Metric) {
	var n FrontCounts
	if read := c.read.Load(); read != nil {
		n = (*read)()
	}
	ch <- prometheus.MustNewConstMetric(descH2Ended, prometheus.CounterValue, float64(n.H2Floods), "flood")
	ch <- prometheus.MustNewConstMetric(descH2Ended, prometheus.CounterValue, float64(n.H2RapidResets), "rapid_reset")
	ch <- prometheus.MustNewConstMetric(descTLSErrors, prometheus.CounterValue, float64(n.TLSHandshakeErrors))
	ch <- prometheus.MustNewConstMetric(descBuffered, prometheus.GaugeValue, float64(n.BufferedBytes))
}
