package metrics_test

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

const rulesPath = "../../examples/prometheus/gatehouse-rules.yaml"

// The shipped Prometheus alerting rules cover the conditions gatehouse's
// alerts: block notifies, each with a severity and a summary, and name
// only metrics gatehouse registers: renaming a metric without fixing the
// rules fails here.
func TestPrometheusRulesUseRegisteredMetrics(t *testing.T) {
	b, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatalf("read rules: %v", err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("rules are not YAML: %v", err)
	}
	reg := newRegistry(t)
	var alerts []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v: want an alert name, a severity label and a summary", r)
			}
			names := metricName.FindAllString(r.Expr, -1)
			if len(names) == 0 {
				t.Errorf("rule %s: expr %q uses no gatehouse metric", r.Alert, r.Expr)
			}
			for _, n := range names {
				if !registered(reg, n) {
					t.Errorf("rule %s uses %s, which gatehouse does not register", r.Alert, n)
				}
			}
		}
	}
	for _, want := range []string{"GatehouseNoReadyInstance", "GatehouseRestartLoop", "GatehouseStartFailure", "GatehouseAutoHealPaused",
		"GatehouseErrorRate", "GatehouseCertificateExpiring", "GatehouseAutoscaleAtMax"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no %s rule (rules: %v)", want, alerts)
		}
	}
}

// promtool, Prometheus's own checker, accepts the rules (syntax, PromQL,
// templates). CI installs it (Debian package prometheus).
func TestPrometheusRulesPassPromtool(t *testing.T) {
	testutil.SkipInShort(t) // runs promtool
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH (apt-get install prometheus); .ci/run installs it")
	}
	out, err := exec.Command(promtool, "check", "rules", rulesPath).CombinedOutput()
	t.Logf("promtool check rules:\n%s", out)
	if err != nil {
		t.Errorf("promtool check rules %s: %v\n%s", rulesPath, err, out)
	}
}
