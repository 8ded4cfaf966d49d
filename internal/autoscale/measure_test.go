package autoscale

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/config"
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
			p95, hold := r.take(time.Now(), false)
			if diff := cmp.Diff([]float64{tt.wantP95, tt.hold}, []float64{p95, hold}); diff != "" {
				t.Errorf("p95, hold (-want +got):\n%s", diff)
			}
			if p95, hold := r.take(time.Now(), false); p95 != 0 || hold != 0 {
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
	if p95, _ := r.take(time.Now(), false); p95 < 90 || p95 > 99 {
		t.Errorf("p95 over %d requests = %gms; want about 95ms", 10*maxKept, p95)
	}
}

// A hold under way while the app had no ready instance waited for its
// start (a wake, a cold start), not for capacity: hold_wait_ms leaves it
// out, and counts the holds that began once an instance was ready.
func TestRequestsLeaveOutHoldsOfAStart(t *testing.T) {
	cold := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		entry telemetry.AccessEntry
		hold  float64
	}{
		{"held through the start", telemetry.AccessEntry{Time: cold.Add(-time.Second), Attempts: 1, Upstream: time.Millisecond, Held: 3 * time.Second}, 0},
		{"held from the sample that found none ready", telemetry.AccessEntry{Time: cold, Held: 2 * time.Second, Cause: "no_ready_instance"}, 0},
		{"held once an instance was ready", telemetry.AccessEntry{Time: cold.Add(time.Millisecond), Attempts: 1, Upstream: time.Millisecond, Held: 700 * time.Millisecond}, 700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &requests{}
			r.take(cold, true)
			r.observe(&tt.entry)
			if _, hold := r.take(cold.Add(time.Second), false); hold != tt.hold {
				t.Errorf("hold = %gms, want %gms", hold, tt.hold)
			}
		})
	}
}

// heldApp is an app with instances and requests held, for measure.
type heldApp struct {
	app
	held int
	ins  []instance
}

func (a heldApp) Held() int             { return a.held }
func (a heldApp) Instances() []instance { return a.ins }

// Requests held while no instance is ready wait for a start, not for
// capacity: held is not measured then (NaN, which never holds a rule);
// held while ready instances are busy, it is.
func TestMeasureHeld(t *testing.T) {
	busy := fakeInstance{ready: true, inflight: 5, cpu: -1}
	starting := fakeInstance{cpu: -1}
	tests := []struct {
		name string
		ins  []instance
		want float64
	}{
		{"unloaded", nil, math.NaN()},
		{"starting", []instance{starting}, math.NaN()},
		{"ready and busy", []instance{busy}, 8},
		{"one ready and busy, one starting", []instance{busy, starting}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := measure(heldApp{held: 8, ins: tt.ins}, &requests{}, time.Now())
			if got := s.value(config.MetricHeld); !cmp.Equal(got, tt.want, cmpopts.EquateNaNs()) {
				t.Errorf("held = %g, want %g", got, tt.want)
			}
		})
	}
}
