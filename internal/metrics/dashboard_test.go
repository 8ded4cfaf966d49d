package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

const (
	dashboardPath = "../../examples/grafana/gatehouse-dashboard.json"
	docsPath      = "../../docs/metrics.md"
)

var metricName = regexp.MustCompile(`gatehouse_[a-z0-9_]+`)

// registered reports whether gatehouse registers a metric called name
// (for a histogram or summary, also name_bucket, _sum, _count). It asks
// the registry itself: registering a probe metric of that name fails if
// and only if a metric of that name is already registered, whether or not
// it has series yet.
func registered(reg *prometheus.Registry, name string) bool {
	try := func(n string) bool {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: n, Help: "registration probe"})
		if err := reg.Register(g); err != nil {
			return true
		}
		reg.Unregister(g)
		return false
	}
	if try(name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && try(base) {
			return true
		}
	}
	return false
}

func newRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	sup := supervisor.New(config.Default(), supervisor.Options{})
	return metrics.New(sup).Registry()
}

func namesIn(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	seen := map[string]bool{}
	for _, n := range metricName.FindAllString(string(b), -1) {
		seen[n] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// The example Grafana dashboard is valid JSON of a dashboard with a
// Prometheus datasource variable, has the panels the docs promise, and
// every gatehouse_ metric it queries is one gatehouse registers: renaming
// a metric without fixing the dashboard fails here.
func TestDashboardUsesRegisteredMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatalf("read dashboard: %v", err)
	}
	var dash struct {
		SchemaVersion int    `json:"schemaVersion"`
		Title         string `json:"title"`
		UID           string `json:"uid"`
		Templating    struct {
			List []struct {
				Type  string `json:"type"`
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	if dash.SchemaVersion < 36 || dash.Title == "" || dash.UID == "" {
		t.Errorf("schemaVersion %d, title %q, uid %q: want a current dashboard with a title and uid", dash.SchemaVersion, dash.Title, dash.UID)
	}
	dsVar := ""
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = v.Name
		}
	}
	if dsVar == "" {
		t.Fatalf("no Prometheus datasource variable in templating")
	}
	titles := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		titles[p.Title] = true
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${"+dsVar+"}" {
			t.Errorf("panel %q: datasource %+v, want the ${%s} Prometheus variable", p.Title, p.Datasource, dsVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, q := range p.Targets {
			if !metricName.MatchString(q.Expr) {
				t.Errorf("panel %q: query %q uses no gatehouse metric", p.Title, q.Expr)
			}
		}
	}
	for _, want := range []string{"Request rate by status class", "5xx by cause", "Request duration p50 / p99", "Retries by cause",
		"Instances by state", "Memory per instance", "CPU per instance", "Restarts and exits", "Outbound connections per instance", "Hold queue depth"} {
		if !titles[want] {
			t.Errorf("dashboard has no %q panel", want)
		}
	}

	reg := newRegistry(t)
	names := namesIn(t, dashboardPath)
	if len(names) < 10 {
		t.Fatalf("dashboard references only %d gatehouse metrics: %v", len(names), names)
	}
	for _, n := range names {
		if !registered(reg, n) {
			t.Errorf("dashboard uses %s, which gatehouse does not register", n)
		}
	}
}

// Every gatehouse_ metric docs/metrics.md names is registered, and the
// probe itself tells a registered name from a made-up one.
func TestDocsNameRegisteredMetrics(t *testing.T) {
	reg := newRegistry(t)
	if registered(reg, "gatehouse_no_such_metric_total") {
		t.Fatalf("the registration probe claims a made-up name is registered")
	}
	if !registered(reg, "gatehouse_request_duration_seconds_bucket") || !registered(reg, "gatehouse_instances") {
		t.Fatalf("the registration probe misses registered metrics")
	}
	for _, n := range namesIn(t, docsPath) {
		if !registered(reg, n) {
			t.Errorf("docs/metrics.md names %s, which gatehouse does not register", n)
		}
	}
}
