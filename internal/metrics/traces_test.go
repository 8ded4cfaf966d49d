package metrics_test

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// The span counters are read from the exporter at scrape time, and have
// no series without tracing.
func TestTraceSpanCounters(t *testing.T) {
	m := metrics.New(supervisor.New(config.Default(), supervisor.Options{}))
	none := func(ls []*dto.LabelPair) string { return "" }
	for _, name := range []string{"gatehouse_trace_spans_exported_total", "gatehouse_trace_spans_failed_total"} {
		if got := gathered(t, m, name, none); len(got) != 0 {
			t.Errorf("%s without tracing: %v, want no series", name, got)
		}
	}
	m.SetTraces(func() metrics.TraceCounts { return metrics.TraceCounts{Exported: 12, Failed: 512} })
	for name, want := range map[string]float64{"gatehouse_trace_spans_exported_total": 12, "gatehouse_trace_spans_failed_total": 512} {
		if got := gathered(t, m, name, none); got[""] != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
