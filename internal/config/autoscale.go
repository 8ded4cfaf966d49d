package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Autoscale is an app's autoscale: block: gatehouse changes the app's
// instance count between Min and Max on signals it measures itself. The
// keys follow Azure App Service's autoscale rules (a metric, a threshold,
// a duration it must hold for, a step and a cool-down) and the
// behaviour of Kubernetes' HorizontalPodAutoscaler (scale out quickly,
// scale in only after a stabilization window). Instances is the count
// the app starts with; a scale (manual or autoscale) changes it within
// Min..Max.
type Autoscale struct {
	// Min is the fewest instances autoscale leaves running. Default
	// (absent): the app's instances; 0 is an error (idle_timeout is what
	// takes an app to zero).
	Min int `yaml:"min" secret:"false"`
	// Max is the most instances autoscale starts. Required, ≥ Min and at
	// most 256; no default.
	Max int `yaml:"max" secret:"false"`
	// Interval is how often the signals are sampled and the rules
	// evaluated. Default 5s; from 100ms to 1m. cpu_percent is only as
	// fresh as the top-level sample_interval.
	Interval Duration `yaml:"interval" secret:"false"`
	// Out are the scale-out rules: any one that holds adds its step.
	// Default none (autoscale then only scales in, down to Min).
	Out []ScaleRule `yaml:"out" secret:"false"`
	// In are the scale-in rules: one that holds removes its step, but
	// only while every out rule is quiet (its metric within its
	// threshold on the latest sample). Default none.
	In []ScaleRule `yaml:"in" secret:"false"`
	// CooldownOut: after a scale-out (or a manual scale), no further
	// scale-out for this long, so that the new instances take their share
	// of the load before the signals are judged again. Default 1m: HPA
	// scales up with no stabilization (0s) but only after new pods are
	// ready and its 15s sync; Azure's default is 5m, slow to answer a
	// surge. 1m is a minute of new capacity measured, not a guess. 0
	// means none.
	CooldownOut Duration `yaml:"cooldown_out" secret:"false"`
	// CooldownIn: after any scale (out, in or manual), no scale-in for
	// this long. Default 5m, HPA's scale-down stabilization window
	// (300s) and Azure's default cool-down. 0 means none.
	CooldownIn Duration `yaml:"cooldown_in" secret:"false"`
}

// ScaleRule is one autoscale rule: when Metric stays Above (an out rule)
// or Below (an in rule) its threshold on every sample over For, the
// instance count changes by Step.
type ScaleRule struct {
	// Metric is what the rule measures, one of the Metric* names:
	// inflight_per_instance, held, hold_wait_ms, p95_upstream_ms,
	// cpu_percent. Required; no default.
	Metric string `yaml:"metric" secret:"false"`
	// Above is the threshold of an out rule: the rule holds while the
	// metric is greater. Only in out rules.
	Above *Threshold `yaml:"above" secret:"false"`
	// Below is the threshold of an in rule: the rule holds while the
	// metric is smaller. Only in in rules.
	Below *Threshold `yaml:"below" secret:"false"`
	// For is how long the metric must stay beyond the threshold, on every
	// sample, before the rule holds (Azure's duration). Default 1m for
	// out rules and 5m for in rules; at least the autoscale interval, at
	// most 1h.
	For Duration `yaml:"for" secret:"false"`
	// Step is how many instances the rule adds or removes. Default 1;
	// from 1 to Autoscale.Max.
	Step int `yaml:"step" secret:"false"`
}

// Threshold is a rule's threshold: a number in the metric's unit. A
// number written with "%" (Percent) is a share of the app's per-instance
// concurrency limit, max_inflight: for inflight_per_instance only, and
// only in an app that has one (see Limit).
type Threshold struct {
	Value   float64 `secret:"false"`
	Percent bool    `secret:"false"`
}

// String writes the threshold as it is written in the file.
func (t Threshold) String() string {
	s := strconv.FormatFloat(t.Value, 'f', -1, 64)
	if t.Percent {
		s += "%"
	}
	return s
}

// Limit is the threshold in the metric's unit for app: a percentage
// becomes Value% of the app's max_inflight (validation refuses one in an
// app without max_inflight).
func (t Threshold) Limit(app *App) float64 {
	if t.Percent {
		return t.Value / 100 * float64(app.MaxInflight)
	}
	return t.Value
}

// Autoscale metrics: what gatehouse measures per app, every interval.
const (
	// MetricInflight is the requests in flight per ready instance (held
	// requests not included).
	MetricInflight = "inflight_per_instance"
	// MetricHeld is the requests held waiting for a ready instance or a
	// free slot; not measured while no instance is ready (they wait for
	// a start, not for capacity).
	MetricHeld = "held"
	// MetricHoldWait is the longest hold, in milliseconds, of the
	// requests that finished in the last interval (0 when none was held),
	// leaving out holds under way while no instance was ready.
	MetricHoldWait = "hold_wait_ms"
	// MetricP95Upstream is the 95th percentile of the time the app took
	// to answer (upstream_ms) over the requests that finished in the last
	// interval; 0 when none did.
	MetricP95Upstream = "p95_upstream_ms"
	// MetricCPU is the mean CPU use of the ready instances, in percent of
	// one core, over the last sample_interval.
	MetricCPU = "cpu_percent"
)

// AutoscaleMetrics lists the metrics a rule may name.
var AutoscaleMetrics = []string{MetricInflight, MetricHeld, MetricHoldWait, MetricP95Upstream, MetricCPU}

// Autoscale defaults (see the fields of Autoscale and ScaleRule).
const (
	DefaultAutoscaleInterval = 5 * time.Second
	DefaultCooldownOut       = time.Minute
	DefaultCooldownIn        = 5 * time.Minute
	DefaultOutFor            = time.Minute
	DefaultInFor             = 5 * time.Minute
)

// NewAutoscale returns the defaults of an autoscale block that is present;
// Min, whose default is the app's instances, is filled in by Validate.
func NewAutoscale() *Autoscale {
	return &Autoscale{
		Interval:    Duration(DefaultAutoscaleInterval),
		CooldownOut: Duration(DefaultCooldownOut),
		CooldownIn:  Duration(DefaultCooldownIn),
	}
}

var thresholdType = reflect.TypeFor[Threshold]()

// decodeThreshold reads "4", "0.5" or "80%".
func decodeThreshold(n *yaml.Node, v reflect.Value) error {
	s := strings.TrimSpace(numberText(n))
	pct := strings.HasSuffix(s, "%")
	num := strings.TrimSpace(strings.TrimSuffix(s, "%"))
	f, err := strconv.ParseFloat(strings.ReplaceAll(num, "_", ""), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("must be a number, e.g. 4 or 0.5, got %q", n.Value)
	}
	if f < 0 {
		return fmt.Errorf("must not be negative, got %q", n.Value)
	}
	v.Set(reflect.ValueOf(Threshold{Value: f, Percent: pct}))
	return nil
}

// autoscale checks an app's autoscale block and fills in its defaults
// that depend on the app (min) or on the rule's side (for).
func (v *validator) autoscale(a *App, path string) {
	as := a.Autoscale
	if as == nil {
		return
	}
	if a.External() {
		v.errorf(path, "only for an app with a command: an external pool (upstreams:) has no processes to start")
		return
	}
	if !v.has(path+".min") && as.Min == 0 {
		as.Min = a.Instances
	}
	if as.Min < 1 {
		v.errorf(path+".min", "must be ≥ 1, got %d (idle_timeout is what stops an unused app)", as.Min)
	}
	switch {
	case as.Max == 0 && !v.has(path+".max"):
		v.errorf(path+".max", "required: the most instances autoscale may run, e.g. max: 8")
	case as.Max < as.Min:
		v.errorf(path+".max", "must be ≥ min (%d), got %d", as.Min, as.Max)
	case as.Max > MaxInstances:
		v.errorf(path+".max", "must be at most %d, got %d", MaxInstances, as.Max)
	case a.Instances < as.Min || a.Instances > as.Max:
		v.errorf(path, "instances (%d) must be between min (%d) and max (%d): it is the count the app starts with", a.Instances, as.Min, as.Max)
	}
	if as.Interval < Duration(100*time.Millisecond) || as.Interval > Duration(time.Minute) {
		v.errorf(path+".interval", "must be between 100ms and 1m, got %s", as.Interval.D())
	}
	if as.CooldownOut < 0 || as.CooldownOut > Duration(time.Hour) {
		v.errorf(path+".cooldown_out", "must be between 0 and 1h, got %s", as.CooldownOut.D())
	}
	if as.CooldownIn < 0 || as.CooldownIn > Duration(time.Hour) {
		v.errorf(path+".cooldown_in", "must be between 0 and 1h, got %s", as.CooldownIn.D())
	}
	for i := range as.Out {
		v.scaleRule(a, &as.Out[i], indexPath(path+".out", i), true)
	}
	for i := range as.In {
		v.scaleRule(a, &as.In[i], indexPath(path+".in", i), false)
	}
}

// MaxInstances bounds an app's instances (instances, autoscale's max,
// gatehouse scale): each is a process with a port of its own on this
// machine, and a slip of the keyboard (scale web 1000 for 10) must not
// start a thousand.
const MaxInstances = 256

func (v *validator) scaleRule(a *App, r *ScaleRule, path string, out bool) {
	as := a.Autoscale
	known := false
	for _, m := range AutoscaleMetrics {
		known = known || r.Metric == m
	}
	switch {
	case r.Metric == "":
		v.errorf(path+".metric", "required, one of %s", strings.Join(AutoscaleMetrics, ", "))
	case !known:
		v.errorf(path+".metric", "unknown metric %q%s; one of %s", r.Metric, suggest(r.Metric, metricSet()), strings.Join(AutoscaleMetrics, ", "))
	}
	want, wrong, side := r.Above, r.Below, "above"
	wrongSide, list := "below", "out"
	if !out {
		want, wrong, side, wrongSide, list = r.Below, r.Above, "below", "above", "in"
	}
	if wrong != nil {
		v.errorf(path+"."+wrongSide, "a scale-%s rule takes %s:, not %s: (it acts when the metric is %s the threshold)", list, side, wrongSide, side)
	}
	switch {
	case want == nil && wrong == nil:
		v.errorf(path, "missing %s: the threshold, e.g. {metric: %s, %s: 4}", side, orDefault(r.Metric, MetricInflight), side)
	case want != nil && want.Percent && r.Metric != MetricInflight:
		v.errorf(path+"."+side, "%s: a percentage is only for inflight_per_instance (a share of max_inflight)", want)
	case want != nil && want.Percent && a.MaxInflight <= 0:
		v.errorf(path+"."+side, "%s: a percentage of max_inflight needs max_inflight set on the app; give a number of requests, or set max_inflight", want)
	case want != nil && !out && want.Value == 0:
		v.errorf(path+"."+side, "must be > 0: no metric is below 0")
	}
	if !v.has(path+".for") && r.For == 0 {
		r.For = Duration(DefaultOutFor)
		if !out {
			r.For = Duration(DefaultInFor)
		}
	}
	if r.For < as.Interval || r.For > Duration(time.Hour) {
		v.errorf(path+".for", "must be between the autoscale interval (%s) and 1h, got %s", as.Interval.D(), r.For.D())
	}
	if !v.has(path+".step") && r.Step == 0 {
		r.Step = 1
	}
	if r.Step < 1 || as.Max > 0 && r.Step > as.Max {
		v.errorf(path+".step", "must be between 1 and max (%d), got %d", as.Max, r.Step)
	}
}

func metricSet() map[string]int {
	m := map[string]int{}
	for i, name := range AutoscaleMetrics {
		m[name] = i
	}
	return m
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
