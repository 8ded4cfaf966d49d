package autoscale

import (
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Timings of TestAutoscaleFollowsLoad, on the fake clock.
const (
	interval    = 200 * time.Millisecond
	window      = time.Second
	cooldownOut = 2 * time.Second
	cooldownIn  = 3 * time.Second
	maxN        = 4
)

// inflightScaling is autoscale 1..maxN out on in-flight per instance
// above 4 for the window, in below 1.5.
func inflightScaling() *config.Autoscale {
	return &config.Autoscale{
		Min: 1, Max: maxN, Interval: config.Duration(interval),
		Out: []config.ScaleRule{{Metric: config.MetricInflight, Above: &config.Threshold{Value: 4}, For: config.Duration(window), Step: 1}},
		// Two clients on two instances keep one request in flight on
		// each: below 1.5, and 2 on the one instance left is within the
		// out rule (the flapping guard lets it go).
		In:          []config.ScaleRule{{Metric: config.MetricInflight, Below: &config.Threshold{Value: 1.5}, For: config.Duration(window), Step: 1}},
		CooldownOut: config.Duration(cooldownOut), CooldownIn: config.Duration(cooldownIn),
	}
}

// decisionDetail is an autoscale scale event's detail.
var decisionDetail = regexp.MustCompile(`^autoscale: (\d+) → (\d+) instances?: `)

// decisions are the scale events that changed the count, in order.
func decisions(evs []telemetry.Event) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range evs {
		if e.Trigger != "" && e.Trigger != TriggerAtMax && decisionDetail.MatchString(e.Detail) {
			out = append(out, e)
		}
	}
	return out
}

func timeline(evs []telemetry.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s trigger=%q value=%q: %s\n", e.Time.Format("15:04:05.000"), e.Trigger, e.Value, e.Detail)
	}
	return b.String()
}

// Load ramped from 2 clients to 64 and back, on an app whose in-flight
// per instance is the clients over its ready instances: the scaler scales
// out once in-flight per instance stayed above 4 for the window, one step
// per cool-down up to max and never beyond, says once that it is at max
// (event, status, metric), scales back in to min after the cool-downs
// once the load is low, each step a scale event naming the rule and the
// counts, and its status follows.
func TestAutoscaleFollowsLoad(t *testing.T) {
	scaleTest(t, inflightScaling(), 1, func(t *testing.T, sc *scaling) {

		// c=2: one instance copes (2 in flight ≤ 4); nothing scales.
		sc.app.set(func(a *fakeApp) { a.clients = 2 })
		elapse(2 * time.Second)
		if evs := decisions(sc.scaleEvents()); len(evs) > 0 {
			t.Fatalf("scaled under 2 clients:\n%s", timeline(evs))
		}

		// c=64: out after the window, one step per cool-down, up to max.
		surge := time.Now()
		sc.app.set(func(a *fakeApp) { a.clients = 64 })
		elapse(window + 3*cooldownOut + 5*interval)
		if ready := sc.app.snapshot().ready; ready != maxN {
			t.Fatalf("%d ready instances under 64 clients, want %d:\n%s", ready, maxN, timeline(sc.scaleEvents()))
		}
		outs := decisions(sc.scaleEvents())
		if len(outs) != maxN-1 {
			t.Fatalf("%d scale-outs from 1 to %d instances, want %d of one step:\n%s", len(outs), maxN, maxN-1, timeline(outs))
		}
		if first := outs[0].Time.Sub(surge); first < window || first > window+2*interval {
			t.Errorf("first scale-out %s after the surge; want the window (%s) and at most two intervals more", first, window)
		}
		for i, e := range outs {
			if want := fmt.Sprintf("autoscale: %d → %d instances: inflight_per_instance ", i+1, i+2); !strings.HasPrefix(e.Detail, want) {
				t.Errorf("scale-out %d: %q, want %q…", i+1, e.Detail, want)
			}
			if i > 0 {
				if gap := e.Time.Sub(outs[i-1].Time); gap < cooldownOut {
					t.Errorf("scale-outs %d and %d %s apart, within cooldown_out %s:\n%s", i, i+1, gap, cooldownOut, timeline(outs))
				}
			}
		}
		var atMax []telemetry.Event
		for _, e := range sc.scaleEvents() {
			if e.Trigger == TriggerAtMax {
				atMax = append(atMax, e)
			}
		}
		if len(atMax) != 1 || !strings.Contains(atMax[0].Detail, "at max (4 instances)") || !strings.HasPrefix(atMax[0].Value, "inflight_per_instance ") {
			t.Fatalf("want one at_max event naming the rule and saying at max (4 instances), got:\n%s", timeline(atMax))
		}
		st := sc.app.autoscaleStatus()
		if st.Min != 1 || st.Max != maxN || st.Desired != maxN || !st.AtMax || !strings.HasPrefix(st.LastDecision, "at max: inflight_per_instance") {
			t.Errorf("status at max = %+v", st)
		}
		// A while at max: the rule keeps holding, nothing more starts,
		// and at max is said once per episode.
		elapse(5 * time.Second)
		if n := len(sc.scaleEvents()); n != maxN {
			t.Fatalf("at max, more scale events:\n%s", timeline(sc.scaleEvents()))
		}

		// Back to c=2: in, one step per cooldown_in, down to min.
		calm := time.Now()
		sc.app.set(func(a *fakeApp) { a.clients = 2 })
		elapse(window + 3*cooldownIn + 5*interval)
		if s := sc.app.snapshot(); s.ready != 1 || s.live != 1 {
			t.Fatalf("%d ready of %d instances under 2 clients, want 1:\n%s", s.ready, s.live, timeline(sc.scaleEvents()))
		}
		all := decisions(sc.scaleEvents())
		ins := all[len(outs):]
		if len(ins) != maxN-1 {
			t.Fatalf("%d scale-ins from %d to 1, want %d:\n%s", len(ins), maxN, maxN-1, timeline(all))
		}
		prev := outs[len(outs)-1].Time
		for i, e := range ins {
			if !regexp.MustCompile(fmt.Sprintf(`%d → %d instances?: inflight_per_instance`, maxN-i, maxN-i-1)).MatchString(e.Detail) {
				t.Errorf("scale-in %d: %q", i+1, e.Detail)
			}
			if gap := e.Time.Sub(prev); gap < cooldownIn {
				t.Errorf("scale-in %d came %s after the scale before it, within cooldown_in %s:\n%s", i+1, gap, cooldownIn, timeline(all))
			}
			prev = e.Time
		}
		if first := ins[0].Time.Sub(calm); first < window {
			t.Errorf("first scale-in %s after the load fell, before the window (%s) could hold", first, window)
		}
		st = sc.app.autoscaleStatus()
		if st.AtMax || st.Desired != 1 {
			t.Errorf("status after the calm = %+v, want desired 1 and not at max", st)
		}
		if peak := sc.app.snapshot().peak; peak > maxN {
			t.Errorf("%d instances at once, max is %d", peak, maxN)
		}
		want := map[string]int{"web out inflight_per_instance": 3, "web in inflight_per_instance": 3, "web at_max inflight_per_instance": 1}
		if got := sc.decisionsMetric(); !maps.Equal(got, want) {
			t.Errorf("decisions told to the metrics: %v, want %v", got, want)
		}
	})
}
