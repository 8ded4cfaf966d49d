package autoscale

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// sample is one interval's measurements of an app. A value that could
// not be measured is NaN: it never holds a rule, and counts as quiet.
type sample struct {
	at time.Time
	v  map[string]float64
}

func (s sample) value(metric string) float64 {
	if x, ok := s.v[metric]; ok {
		return x
	}
	return math.NaN()
}

// state is one app's autoscale memory: its recent samples and when it
// last changed.
type state struct {
	ring []sample
	// known is the instance count last seen or set; a different count
	// found later was set by someone else (gatehouse scale, a reload).
	known int
	// lastOut is when the last scale-out (or outside change) happened,
	// lastChange when any did: the cool-downs count from them.
	lastOut, lastChange time.Time
	// atMax: the at_max event of the current episode was emitted.
	atMax bool
}

// add keeps s, and the samples still inside the longest window.
func (st *state) add(s sample, keep time.Duration) {
	st.ring = append(st.ring, s)
	cut := 0
	for cut < len(st.ring)-1 && s.at.Sub(st.ring[cut+1].at) >= keep {
		cut++
	}
	st.ring = st.ring[cut:]
}

// longest is how long samples must be kept: the longest for, plus an
// interval so that the window's start is covered.
func longest(as *config.Autoscale) time.Duration {
	d := time.Duration(0)
	for _, r := range as.Out {
		d = max(d, r.For.D())
	}
	for _, r := range as.In {
		d = max(d, r.For.D())
	}
	return d + as.Interval.D()
}

// beyond reports whether x is past the rule's threshold on its side.
func beyond(r *config.ScaleRule, app *config.App, x float64) bool {
	if math.IsNaN(x) {
		return false
	}
	if r.Above != nil {
		return x > r.Above.Limit(app)
	}
	return r.Below != nil && x < r.Below.Limit(app)
}

// holds reports whether the rule's metric stayed beyond its threshold on
// every sample of its window, counting the last sample taken at or before
// the window's start: so the metric has been beyond for at least For,
// whatever the ticks' jitter. Without such a sample (samples began less
// than For ago) the window is not covered and the rule does not hold.
func (st *state) holds(r *config.ScaleRule, app *config.App, now time.Time) bool {
	start := now.Add(-r.For.D())
	if len(st.ring) == 0 || st.ring[0].at.After(start) {
		return false
	}
	for i := len(st.ring) - 1; i >= 0; i-- {
		s := st.ring[i]
		if !beyond(r, app, s.value(r.Metric)) {
			return false
		}
		if !s.at.After(start) {
			break
		}
	}
	return true
}

func (st *state) latest() sample { return st.ring[len(st.ring)-1] }

// decision is what one evaluation concluded.
type decision struct {
	// target is the instance count to scale to; equal to the current
	// count when nothing is to be done.
	target int
	// direction is "out", "in", "at_max" or "" (nothing).
	direction string
	rule      *config.ScaleRule
	value     float64
	// why says it for the event and status: "inflight_per_instance 6.2
	// > 4 for 30s".
	why string
}

// decide evaluates app's rules at now with cur instances, after the
// sample for now was added. It records what it decides in st (cool-down
// start, the at-max episode) as if the decision were carried out at now.
func decide(app *config.App, st *state, cur int, now time.Time) decision {
	as := app.Autoscale
	d := decision{target: cur}
	// Out: the rule with the largest step among those that hold.
	var fire *config.ScaleRule
	for i := range as.Out {
		r := &as.Out[i]
		if st.holds(r, app, now) && (fire == nil || r.Step > fire.Step) {
			fire = r
		}
	}
	if fire != nil {
		d.rule, d.value = fire, st.latest().value(fire.Metric)
		d.why = describe(fire, app, d.value)
		if cur < as.Max {
			// Below max (a reload raised it, gatehouse scale lowered the
			// count): no longer pinned, even while the rule holds.
			st.atMax = false
		}
		switch {
		case cur >= as.Max:
			if !st.atMax {
				st.atMax = true
				d.direction = "at_max"
			}
		case now.Sub(st.lastOut) >= as.CooldownOut.D() || st.lastOut.IsZero():
			d.target, d.direction = min(cur+fire.Step, as.Max), "out"
			st.lastOut, st.lastChange = now, now
		}
		return d
	}
	st.atMax = false
	if cur <= as.Min || !quiet(app, st.latest()) || !st.lastChange.IsZero() && now.Sub(st.lastChange) < as.CooldownIn.D() {
		return d
	}
	for i := range as.In {
		r := &as.In[i]
		if !st.holds(r, app, now) {
			continue
		}
		k := projected(app, st.latest(), cur, min(r.Step, cur-as.Min))
		if k == 0 {
			continue
		}
		d.rule, d.value = r, st.latest().value(r.Metric)
		d.why = describe(r, app, d.value)
		d.target, d.direction = cur-k, "in"
		st.lastChange = now
		return d
	}
	return d
}

// quiet reports whether every out rule's metric is within its threshold
// on the latest sample.
func quiet(app *config.App, s sample) bool {
	for i := range app.Autoscale.Out {
		r := &app.Autoscale.Out[i]
		if beyond(r, app, s.value(r.Metric)) {
			return false
		}
	}
	return true
}

// perInstance are the metrics that are shares of the load per instance:
// with fewer instances, each gets more.
var perInstance = map[string]bool{config.MetricInflight: true, config.MetricCPU: true}

// projected is how many of k instances may go without an out rule firing
// at once on the instances left (Azure's flapping guard): the
// per-instance metrics are projected onto cur-k instances.
func projected(app *config.App, s sample, cur, k int) int {
	for ; k > 0; k-- {
		ok := true
		for i := range app.Autoscale.Out {
			r := &app.Autoscale.Out[i]
			if !perInstance[r.Metric] {
				continue
			}
			if beyond(r, app, s.value(r.Metric)*float64(cur)/float64(cur-k)) {
				ok = false
				break
			}
		}
		if ok {
			return k
		}
	}
	return 0
}

// describe is "inflight_per_instance 6.2 > 4 for 30s".
func describe(r *config.ScaleRule, app *config.App, x float64) string {
	op, t := ">", r.Above
	if r.Above == nil {
		op, t = "<", r.Below
	}
	return fmt.Sprintf("%s %s %s %s for %s", r.Metric, format(x), op, format(t.Limit(app)), r.For.D())
}

// format writes a measured value with at most one decimal.
func format(x float64) string {
	return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64)
}
