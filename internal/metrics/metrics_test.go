package metrics_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// scrape fetches /metrics from the admin listener and parses it with the
// Prometheus text parser, as a Prometheus server would.
func scrape(t *testing.T, g *harness.Gatehouse) map[string]*dto.MetricFamily {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(g.AdminURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics = %d %q", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type = %q, want the text exposition format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	for name := range fams {
		// go_* are the Go runtime's standard metrics.
		if !strings.HasPrefix(name, "gatehouse_") && !strings.HasPrefix(name, "go_") {
			t.Errorf("metric %q: every gatehouse metric name starts with gatehouse_", name)
		}
	}
	return fams
}

// value is the value of the series of family name whose labels are
// exactly labels (counter, gauge or untyped), and whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if !sameLabels(m.GetLabel(), labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	n := 0
	for _, l := range got {
		// The text format drops empty label values; treat them as absent.
		if l.GetValue() == "" {
			continue
		}
		n++
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	for _, v := range want {
		if v == "" {
			n++
		}
	}
	return n == len(want)
}

// series lists a family's series, for failure messages.
func series(fams map[string]*dto.MetricFamily, name string) string {
	f := fams[name]
	if f == nil {
		return "  (no such family)"
	}
	var lines []string
	for _, m := range f.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		lines = append(lines, fmt.Sprintf("  {%s} %g", strings.Join(ls, ","), v))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func get(t *testing.T, c *http.Client, url, host string, want int) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %q): %v", url, host, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s (Host %q) = %d, want %d", url, host, resp.StatusCode, want)
	}
}

// After known traffic the request counters equal what was sent, by status
// class and cause; retries, exits, instances and the hold queue are
// exposed.
func TestMetricsCountKnownTraffic(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 2)
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	// Only requests for host 127.0.0.1 reach the app: any other host has
	// no route.
	app.Routes = config.PlainRoutes("127.0.0.1/")
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 15*time.Second)
	c := harness.Client(10 * time.Second)
	defer c.CloseIdleConnections()

	// A GET that kills the instance it reaches: retried once on the
	// other, which it kills too (a request that reset two instances is
	// not sent to a third): one retry, one 502 upstream_reset, two exits.
	get(t, c, g.URL+"/crash", "", 502)
	testutil.WaitFor(t, 10*time.Second, "both crashed instances restarted and ready", func() bool {
		ready := 0
		for _, in := range g.Instances("web") {
			if in.State == "ready" && in.Restarts >= 1 {
				ready++
			}
		}
		return ready == 2
	})

	for range 7 {
		get(t, c, g.URL+"/", "", 200)
	}
	for range 3 {
		get(t, c, g.URL+"/status?code=500", "", 500)
	}
	for range 2 {
		get(t, c, g.URL+"/status?code=503", "", 503)
	}
	get(t, c, g.URL+"/", "unrouted.invalid", 404)

	// The counters are updated as each request finishes, which may be a
	// moment after the client has the response; an instance's process
	// figures come with the supervisor's first sample of it, which for a
	// restarted instance may be a moment after it is ready. Every figure
	// below is read from one scrape, taken once all of them are there.
	var fams map[string]*dto.MetricFamily
	testutil.WaitForNil(t, 10*time.Second, "the metrics to count the traffic sent", func() error {
		fams = scrape(t, g)
		return knownTraffic(fams, g.Instances("web"))
	})
	// The docs list every metric a user can see.
	docs, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	for name := range fams {
		if strings.HasPrefix(name, "gatehouse_") && !strings.Contains(string(docs), "`"+name+"`") {
			t.Errorf("%s is exposed but docs/metrics.md does not list it", name)
		}
	}
}

// knownTraffic says what in fams differs from the figures of
// TestMetricsCountKnownTraffic's requests, nil when nothing does.
func knownTraffic(fams map[string]*dto.MetricFamily, instances []supervisor.InstanceStatus) error {
	var errs []error
	type want struct {
		labels map[string]string
		n      float64
	}
	wants := []want{
		{map[string]string{"app": "web", "code": "2xx", "cause": ""}, 7},
		{map[string]string{"app": "web", "code": "5xx", "cause": "app_error"}, 5},
		{map[string]string{"app": "web", "code": "5xx", "cause": "upstream_reset"}, 1},
		// No route: no app.
		{map[string]string{"app": "", "code": "4xx", "cause": "no_route"}, 1},
	}
	var total float64
	for _, m := range fams["gatehouse_requests_total"].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	for _, w := range wants {
		if v, ok := value(fams, "gatehouse_requests_total", w.labels); !ok || v != w.n {
			errs = append(errs, fmt.Errorf("gatehouse_requests_total%v = %g (present %v), want %g", w.labels, v, ok, w.n))
		}
	}
	if total != 14 {
		errs = append(errs, fmt.Errorf("gatehouse_requests_total sums to %g, want the 14 requests sent", total))
	}
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("gatehouse_requests_total:\n%s", series(fams, "gatehouse_requests_total")))
	}

	type check struct {
		name   string
		labels map[string]string
		want   func(float64) bool
		what   string
	}
	checks := []check{
		{"gatehouse_upstream_retries_total", map[string]string{"app": "web", "cause": "upstream_reset"}, eq(1), "1 (the /crash GET retried once)"},
		{"gatehouse_instance_exits_total", map[string]string{"app": "web", "reason": "code_3"}, eq(2), "2 (both instances crashed with code 3)"},
		{"gatehouse_instances", map[string]string{"app": "web", "state": "ready"}, eq(2), "2"},
		{"gatehouse_instances", map[string]string{"app": "web", "state": "crashed"}, eq(0), "0"},
		{"gatehouse_hold_queue_depth", map[string]string{"app": "web"}, eq(0), "0"},
		{"gatehouse_max_inflight", map[string]string{"app": "web"}, eq(0), "0 (no limit)"},
		{"gatehouse_held_at_limit_total", map[string]string{"app": "web"}, eq(0), "0"},
		// 14 attempts: the 12 routed requests once each, the /crash twice.
		{"gatehouse_upstream_attempts_total", map[string]string{"app": "web"}, eq(14), "14"},
	}
	for _, in := range instances {
		l := map[string]string{"app": "web", "instance": in.ID}
		checks = append(checks,
			check{"gatehouse_instance_restarts", l, func(v float64) bool { return v >= 1 }, "≥ 1"},
			check{"gatehouse_instance_resident_memory_bytes", l, func(v float64) bool { return v > 1<<20 }, "> 1 MiB"},
			// An idle instance a second old may not have used a clock tick.
			check{"gatehouse_instance_cpu_seconds_total", l, func(v float64) bool { return v >= 0 }, "present"},
			check{"gatehouse_instance_outbound_connections", l, eq(0), "0"},
		)
	}
	for _, ck := range checks {
		v, ok := value(fams, ck.name, ck.labels)
		if !ok || !ck.want(v) {
			errs = append(errs, fmt.Errorf("%s%v = %g (present %v), want %s:\n%s", ck.name, ck.labels, v, ok, ck.what, series(fams, ck.name)))
		}
	}
	if h := fams["gatehouse_request_duration_seconds"]; h == nil || h.GetType() != dto.MetricType_HISTOGRAM {
		errs = append(errs, errors.New("gatehouse_request_duration_seconds missing or not a histogram"))
	} else if n := h.GetMetric()[0].GetHistogram().GetSampleCount(); n != 13 {
		errs = append(errs, fmt.Errorf("gatehouse_request_duration_seconds count = %d, want the 13 routed requests", n))
	}
	return errors.Join(errs...)
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// nodeServer is a tiny node app binding process.env.PORT that holds some
// memory, so that its resident set is well above the noise.
const nodeServer = `const http = require('http');
const held = Buffer.alloc(48 * 1024 * 1024, 1);
http.createServer((req, res) => { res.end('ok ' + held.length); })
  .listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening on ' + process.env.PORT));
`

// The memory gauges of a node instance agree with what /proc/PID/status
// says, within 10%.
func TestMetricsNodeMemoryMatchesProc(t *testing.T) {
	t.Parallel()
	testutil.SkipInShort(t) // runs node
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "server.js")
	if err := os.WriteFile(script, []byte(nodeServer), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, app := harness.FaultApp(t, 1)
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	app.Command = config.Command{node, script}
	app.Dir = dir
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)
	in := g.Instances("web")[0]

	// Node settles its heap after start; compare once both readings are
	// of the same, quiet process.
	var rss, private, vmrss float64
	var fams map[string]*dto.MetricFamily
	l := map[string]string{"app": "web", "instance": in.ID}
	testutil.WaitForNil(t, 5*time.Second, "a sample of node's memory that /proc agrees with", func() error {
		g.Srv.Supervisor().SampleNow()
		vmrss = float64(testutil.VmRSS(t, in.PID))
		fams = scrape(t, g)
		var ok1, ok2 bool
		rss, ok1 = value(fams, "gatehouse_instance_resident_memory_bytes", l)
		private, ok2 = value(fams, "gatehouse_instance_private_memory_bytes", l)
		if !ok1 || !ok2 {
			t.Fatalf("memory gauges of %s missing:\n%s\n%s", in.ID,
				series(fams, "gatehouse_instance_resident_memory_bytes"), series(fams, "gatehouse_instance_private_memory_bytes"))
		}
		if !within(rss, vmrss, 0.10) {
			return fmt.Errorf("gatehouse_instance_resident_memory_bytes = %.1f MiB, /proc/%d/status VmRSS = %.1f MiB: more than 10%% apart", rss/(1<<20), in.PID, vmrss/(1<<20))
		}
		return nil
	})
	t.Logf("node pid %d: gauge RSS %.1f MiB, private %.1f MiB; /proc VmRSS %.1f MiB", in.PID, rss/(1<<20), private/(1<<20), vmrss/(1<<20))
	if vmrss < 48<<20 {
		t.Errorf("VmRSS %.1f MiB is below the 48 MiB the app holds: the comparison is meaningless", vmrss/(1<<20))
	}
	if private <= 0 || private > rss*1.01 {
		t.Errorf("gatehouse_instance_private_memory_bytes = %.1f MiB, want > 0 and ≤ RSS %.1f MiB", private/(1<<20), rss/(1<<20))
	}
	if v, ok := value(fams, "gatehouse_instance_threads", l); !ok || v < 2 {
		t.Errorf("gatehouse_instance_threads = %g (present %v), want node's several threads", v, ok)
	}
	if v, ok := value(fams, "gatehouse_instance_cpu_seconds_total", l); !ok || v <= 0 {
		t.Errorf("gatehouse_instance_cpu_seconds_total = %g (present %v), want node's start-up CPU time", v, ok)
	}
	if v, ok := value(fams, "gatehouse_instance_open_fds", l); !ok || v < 3 {
		t.Errorf("gatehouse_instance_open_fds = %g (present %v), want at least 3", v, ok)
	}
}

func within(got, want, tol float64) bool {
	return got >= want*(1-tol) && got <= want*(1+tol)
}
