package autoscale

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

// testApp is an app autoscaled 1..4 every second: out on in-flight per
// instance above 4 for 3s (step 1) or held above 0 for 2s (step 2); in on
// in-flight below 1 for 3s; cool-downs 5s out and 10s in.
func testApp() *config.App {
	a := config.NewApp("web")
	a.Autoscale = &config.Autoscale{
		Min: 1, Max: 4, Interval: config.Duration(time.Second),
		Out: []config.ScaleRule{
			{Metric: config.MetricInflight, Above: &config.Threshold{Value: 4}, For: config.Duration(3 * time.Second), Step: 1},
			{Metric: config.MetricHeld, Above: &config.Threshold{Value: 0}, For: config.Duration(2 * time.Second), Step: 2},
		},
		In: []config.ScaleRule{
			{Metric: config.MetricInflight, Below: &config.Threshold{Value: 1}, For: config.Duration(3 * time.Second), Step: 1},
		},
		CooldownOut: config.Duration(5 * time.Second), CooldownIn: config.Duration(10 * time.Second),
	}
	return a
}

// step is one second's sample and the instance count it was taken with.
type step struct {
	inflight, held float64
	cur            int
}

// flat is n seconds of the same sample.
func flat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// got is a decision as the table states it: the second it was taken at,
// its direction, target and reason.
type got struct {
	At     int
	Dir    string
	Target int
	Why    string
}

// The decision rules on an explicit clock, one sample a second: a rule
// holds only over its whole window; out respects max and cooldown_out;
// in waits for every out rule to be quiet, for cooldown_in, never goes
// below min, and is held back when the instances left would fire an out
// rule at once.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		steps []step
		want  []got
	}{
		{"quiet load does nothing", flat(20, step{inflight: 2, cur: 2}), nil},
		{"a spike shorter than the window does nothing",
			concat(flat(3, step{inflight: 2, cur: 1}), flat(3, step{inflight: 9, cur: 1}), flat(3, step{inflight: 2, cur: 1})), nil},
		{"out once the window holds, then again after cooldown_out",
			// The first sample is at 0; the window of 3s is covered at 3.
			concat(flat(4, step{inflight: 6, cur: 1}), flat(5, step{inflight: 6, cur: 2}), flat(1, step{inflight: 6, cur: 3})),
			[]got{
				{3, "out", 2, "inflight_per_instance 6 > 4 for 3s"},
				{8, "out", 3, "inflight_per_instance 6 > 4 for 3s"},
			}},
		{"the largest step among rules that hold, capped at max",
			flat(4, step{inflight: 6, held: 3, cur: 3}),
			[]got{{2, "out", 4, "held 3 > 0 for 2s"}}},
		{"at max: one at_max per episode",
			concat(flat(6, step{inflight: 9, cur: 4}), flat(1, step{inflight: 2, cur: 4}), flat(4, step{inflight: 9, cur: 4})),
			[]got{
				{3, "at_max", 4, "inflight_per_instance 9 > 4 for 3s"},
				{10, "at_max", 4, "inflight_per_instance 9 > 4 for 3s"},
			}},
		{"below max the episode ends even while the rule holds",
			// gatehouse scale took one away at 4 (or a reload raised
			// max): out again at once, and at max again is a new episode
			// (the alert resolved by the first one's end fires again).
			concat(flat(4, step{inflight: 9, cur: 4}), flat(1, step{inflight: 9, cur: 3}), flat(2, step{inflight: 9, cur: 4})),
			[]got{
				{3, "at_max", 4, "inflight_per_instance 9 > 4 for 3s"},
				{4, "out", 4, "inflight_per_instance 9 > 4 for 3s"},
				{5, "at_max", 4, "inflight_per_instance 9 > 4 for 3s"},
			}},
		{"in after the window, then again after cooldown_in, never below min",
			concat(flat(13, step{inflight: 0.5, cur: 3}), flat(10, step{inflight: 0.5, cur: 2}), flat(12, step{inflight: 0.2, cur: 1})),
			[]got{
				{3, "in", 2, "inflight_per_instance 0.5 < 1 for 3s"},
				{13, "in", 1, "inflight_per_instance 0.5 < 1 for 3s"},
			}},
		{"no in while an out rule is beyond its threshold",
			// In-flight is low but requests are held (not yet for the
			// held rule's window): not quiet.
			concat(flat(5, step{inflight: 0.5, held: 1, cur: 3}), flat(1, step{inflight: 0.5, cur: 3})),
			[]got{{2, "out", 4, "held 1 > 0 for 2s"}}},
		{"in when the instances left stay within the out rules",
			// 0.9 per instance on 2 is 1.8 on 1: under 4, so one goes
			// (TestProjected holds instances back).
			flat(6, step{inflight: 0.9, cur: 2}),
			[]got{{3, "in", 1, "inflight_per_instance 0.9 < 1 for 3s"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := testApp()
			st := &state{}
			var gots []got
			for i, s := range tt.steps {
				now := t0.Add(time.Duration(i) * time.Second)
				st.add(sample{at: now, v: map[string]float64{config.MetricInflight: s.inflight, config.MetricHeld: s.held}}, longest(app.Autoscale))
				if d := decide(app, st, s.cur, now); d.direction != "" {
					gots = append(gots, got{i, d.direction, d.target, d.why})
				}
			}
			if diff := cmp.Diff(tt.want, gots); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

// The flapping guard on its own: per-instance metrics are projected onto
// the instances left.
func TestProjected(t *testing.T) {
	app := testApp()
	app.Autoscale.Out = append(app.Autoscale.Out, config.ScaleRule{Metric: config.MetricCPU, Above: &config.Threshold{Value: 80}, For: config.Duration(time.Minute), Step: 1})
	tests := []struct {
		name          string
		inflight, cpu float64
		cur, k, want  int
	}{
		{"room for all", 0.5, 10, 4, 2, 2},
		{"in-flight would exceed on one", 3, 10, 2, 1, 0},
		{"only one of two may go", 2.5, 10, 4, 2, 1},
		{"cpu would exceed", 0.5, 50, 2, 1, 0},
		{"unknown cpu does not hold back", 0.5, math.NaN(), 2, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sample{v: map[string]float64{config.MetricInflight: tt.inflight, config.MetricCPU: tt.cpu}}
			if got := projected(app, s, tt.cur, tt.k); got != tt.want {
				t.Errorf("projected(%g in flight, %g%% cpu, %d instances, %d) = %d, want %d", tt.inflight, tt.cpu, tt.cur, tt.k, got, tt.want)
			}
		})
	}
}

// Ticks jitter: a rule holds only once the sample taken at or before its
// window's start was beyond too, so the metric was beyond for at least
// the whole window, never a tick less.
func TestHoldsCountsTheWindowStart(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	app := testApp()
	r := &app.Autoscale.Out[0] // inflight_per_instance > 4 for 3s
	tests := []struct {
		name string
		at   []time.Duration // samples; the first is low, the rest high
		now  time.Duration
		want bool
	}{
		{"the low sample is at the window's start", []time.Duration{-100 * time.Millisecond, 50 * time.Millisecond, time.Second, 2 * time.Second, 2900 * time.Millisecond}, 2900 * time.Millisecond, false},
		{"a high sample is at the window's start", []time.Duration{-100 * time.Millisecond, 50 * time.Millisecond, time.Second, 2 * time.Second, 3050 * time.Millisecond}, 3050 * time.Millisecond, true},
		{"not covered yet", []time.Duration{50 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second}, 3 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &state{}
			for i, d := range tt.at {
				v := 9.0
				if i == 0 && d < 0 {
					v = 1
				}
				st.add(sample{at: t0.Add(d), v: map[string]float64{config.MetricInflight: v}}, longest(app.Autoscale))
			}
			if got := st.holds(r, app, t0.Add(tt.now)); got != tt.want {
				t.Errorf("holds = %v, want %v", got, tt.want)
			}
		})
	}
}
