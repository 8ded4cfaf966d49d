package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The autoscale block's errors name file, line and key.
func TestValidateAutoscale(t *testing.T) {
	checkParses(t, []parseCase{
		{"valid", web + "    instances: 2\n    autoscale:\n      max: 8\n      out: [{metric: inflight_per_instance, above: 4}]\n      in: [{metric: inflight_per_instance, below: 0.5}]\n", nil},
		{"max required", web + "    autoscale:\n      min: 1\n",
			[]string{`g.yaml:4: apps.web.autoscale.max: required: the most instances autoscale may run, e.g. max: 8`}},
		{"max below min", web + "    instances: 3\n    autoscale:\n      min: 3\n      max: 2\n",
			[]string{`g.yaml:7: apps.web.autoscale.max: must be ≥ min (3), got 2`}},
		{"min 0", web + "    autoscale: {min: 0, max: 2}\n",
			[]string{`g.yaml:4: apps.web.autoscale.min: must be ≥ 1, got 0 (idle_timeout is what stops an unused app)`}},
		{"instances outside min..max", web + "    instances: 5\n    autoscale: {min: 1, max: 4}\n",
			[]string{`g.yaml:5: apps.web.autoscale: instances (5) must be between min (1) and max (4): it is the count the app starts with`}},
		{"unknown metric", web + "    autoscale:\n      max: 4\n      out:\n        - {metric: inflight, above: 4}\n",
			[]string{`g.yaml:7: apps.web.autoscale.out[0].metric: unknown metric "inflight"; one of inflight_per_instance, held, hold_wait_ms, p95_upstream_ms, cpu_percent`}},
		{"misspelt metric", web + "    autoscale:\n      max: 4\n      out:\n        - {metric: cpu_percnt, above: 80}\n",
			[]string{`g.yaml:7: apps.web.autoscale.out[0].metric: unknown metric "cpu_percnt" (did you mean "cpu_percent"?); one of inflight_per_instance, held, hold_wait_ms, p95_upstream_ms, cpu_percent`}},
		{"below in an out rule", web + "    autoscale:\n      max: 4\n      out:\n        - {metric: held, below: 1}\n",
			[]string{`g.yaml:7: apps.web.autoscale.out[0].below: a scale-out rule takes above:, not below: (it acts when the metric is above the threshold)`}},
		{"above in an in rule", web + "    autoscale:\n      max: 4\n      in:\n        - {metric: held, above: 1}\n",
			[]string{`g.yaml:7: apps.web.autoscale.in[0].above: a scale-in rule takes below:, not above: (it acts when the metric is below the threshold)`}},
		{"missing threshold", web + "    autoscale:\n      max: 4\n      out:\n        - metric: held\n",
			[]string{`g.yaml:7: apps.web.autoscale.out[0]: missing above: the threshold, e.g. {metric: held, above: 4}`}},
		{"threshold not a number", web + "    autoscale:\n      max: 4\n      out:\n        - {metric: held, above: lots}\n",
			[]string{`g.yaml:7: apps.web.autoscale.out[0].above: must be a number, e.g. 4 or 0.5, got "lots"`}},
		{"percentage needs max_inflight", web + "    autoscale:\n      max: 4\n      out:\n        - {metric: inflight_per_instance, above: 80%}\n",
			[]string{`g.yaml:7: apps.web.autoscale.out[0].above: 80%: a percentage of max_inflight needs max_inflight set on the app; give a number of requests, or set max_inflight`}},
		{"percentage of max_inflight", web + "    max_inflight: 5\n    autoscale:\n      max: 4\n      out:\n        - {metric: inflight_per_instance, above: 80%}\n", nil},
		{"for shorter than the interval", web + "    autoscale:\n      max: 4\n      interval: 5s\n      out:\n        - {metric: held, above: 0, for: 1s}\n",
			[]string{`g.yaml:8: apps.web.autoscale.out[0].for: must be between the autoscale interval (5s) and 1h, got 1s`}},
		{"step bounds", web + "    autoscale:\n      max: 4\n      out:\n        - {metric: held, above: 0, step: 5}\n      in:\n        - {metric: held, below: 1, step: 0}\n",
			[]string{
				`g.yaml:7: apps.web.autoscale.out[0].step: must be between 1 and max (4), got 5`,
				`g.yaml:9: apps.web.autoscale.in[0].step: must be between 1 and max (4), got 0`,
			}},
		{"interval bounds", web + "    autoscale: {max: 4, interval: 10ms}\n",
			[]string{`g.yaml:4: apps.web.autoscale.interval: must be between 100ms and 1m, got 10ms`}},
		{"external pool", "apps:\n  web:\n    upstreams: [\"10.0.0.5:80\"]\n    autoscale: {max: 4}\n",
			[]string{`g.yaml:4: apps.web.autoscale: only for an app with a command: an external pool (upstreams:) has no processes to start`}},
		{"unknown key", web + "    autoscale: {max: 4, mx: 5}\n",
			[]string{`g.yaml:4: apps.web.autoscale.mx: unknown key (did you mean "max"?)`}},
	})
}

// The documented defaults: min is instances, interval 5s, cool-downs 1m
// out and 5m in, for 1m (out) and 5m (in), step 1.
func TestAutoscaleDefaults(t *testing.T) {
	c, err := Parse("g.yaml", []byte(web+"    instances: 2\n    autoscale:\n      max: 6\n      out: [{metric: held, above: 0}]\n      in: [{metric: inflight_per_instance, below: 1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Autoscale{
		Min: 2, Max: 6, Interval: Duration(5 * time.Second),
		Out:         []ScaleRule{{Metric: MetricHeld, Above: &Threshold{Value: 0}, For: Duration(time.Minute), Step: 1}},
		In:          []ScaleRule{{Metric: MetricInflight, Below: &Threshold{Value: 1}, For: Duration(5 * time.Minute), Step: 1}},
		CooldownOut: Duration(time.Minute), CooldownIn: Duration(5 * time.Minute),
	}
	if diff := cmp.Diff(want, c.Apps["web"].Autoscale); diff != "" {
		t.Errorf("autoscale defaults (-want +got):\n%s", diff)
	}
}

// A percentage threshold is a share of the app's max_inflight.
func TestThresholdLimit(t *testing.T) {
	app := &App{MaxInflight: 5}
	for _, tc := range []struct {
		th   Threshold
		want float64
	}{
		{Threshold{Value: 80, Percent: true}, 4},
		{Threshold{Value: 3}, 3},
	} {
		t.Run(tc.th.String(), func(t *testing.T) {
			if got := tc.th.Limit(app); got != tc.want {
				t.Errorf("Limit = %v, want %v", got, tc.want)
			}
		})
	}
}
