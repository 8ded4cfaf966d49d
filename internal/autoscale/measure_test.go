package autoscale

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The request signals of one interval: p95 of the app's time over the
// requests that reached it, and the longest hold, in milliseconds; each
// take starts the next interval from nothing.
func TestRequestsTake(t *testing.T) {
	tests := []struct {
		name          string
		entries       []telemetry.AccessEntry
		wantP95, hold float64
	}{
		{"none", nil, 0, 0},
		{"p95 of 100", func() []telemetry.AccessEntry {
			var es []telemetry.AccessEntry
			for i := 1; i <= 100; i++ {
				es = append(es, telemetry.AccessEntry{Attempts: 1, Upstream: time.Duration(i) * time.Millisecond})
			}
			return es
		}(), 95, 0},
		{"held, then answered", []telemetry.AccessEntry{
			{Attempts: 1, Upstream: 10 * time.Millisecond, Held: 250 * time.Millisecond},
			{Attempts: 1, Upstream: 20 * time.Millisecond, Held: 40 * time.Millisecond},
		}, 20, 250},
		{"never reached the app: a hold, no latency", []telemetry.AccessEntry{
			{Held: 5 * time.Second, Cause: "no_ready_instance"},
		}, 0, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &requests{}
			for i := range tt.entries {
				r.observe(&tt.entries[i])
			}
			p95, hold := r.take()
			if diff := cmp.Diff([]float64{tt.wantP95, tt.hold}, []float64{p95, hold}); diff != "" {
				t.Errorf("p95, hold (-want +got):\n%s", diff)
			}
			if p95, hold := r.take(); p95 != 0 || hold != 0 {
				t.Errorf("second take = %g, %g; want an empty interval", p95, hold)
			}
		})
	}
}

// Past maxKept requests in an interval, a uniform sample stands for all:
// the p95 stays near the true one.
func TestRequestsReservoir(t *testing.T) {
	r := &requests{}
	for i := range 10 * maxKept {
		ms := 1 + i%100
		r.observe(&telemetry.AccessEntry{Attempts: 1, Upstream: time.Duration(ms) * time.Millisecond})
	}
	if p95, _ := r.take(); p95 < 90 || p95 > 99 {
		t.Errorf("p95 over %d requests = %gms; want about 95ms", 10*maxKept, p95)
	}
}
