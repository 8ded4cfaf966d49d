package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// TraceCounts is what the tracing: block's exporter has done, read at
// scrape time. metrics does not import tracing: the caller reads it.
type TraceCounts struct {
	// Exported spans reached the endpoint; Failed ones did not (refused,
	// or not reached within the export timeout).
	Exported, Failed uint64
}

var (
	descSpansExported = prometheus.NewDesc("gatehouse_trace_spans_exported_total",
		"Spans of requests and attempts the tracing: block's endpoint accepted.", nil, nil)
	descSpansFailed = prometheus.NewDesc("gatehouse_trace_spans_failed_total",
		"Spans the tracing: block's endpoint did not take: it refused them or could not be reached (they are dropped; requests never wait for them).", nil, nil)
)

// traceCollector reports the exporter's counts; without tracing (no
// SetTraces) it has no series.
type traceCollector struct {
	read atomic.Pointer[func() TraceCounts]
}

// SetTraces makes /metrics report read's counts.
func (m *Metrics) SetTraces(read func() TraceCounts) { m.traces.read.Store(&read) }

func (c *traceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSpansExported
	ch <- descSpansFailed
}

func (c *traceCollector) Collect(ch chan<- prometheus.Metric) {
	read := c.read.Load()
	if read == nil {
		return
	}
	n := (*read)()
	ch <- prometheus.MustNewConstMetric(descSpansExported, prometheus.CounterValue, float64(n.Exported))
	ch <- prometheus.MustNewConstMetric(descSpansFailed, prometheus.CounterValue, float64(n.Failed))
}
