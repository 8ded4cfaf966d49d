package autoscale_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/alerts"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Timings of TestAutoscaleFollowsLoad: short, so that the whole episode fits
// in well under a minute, and far enough apart to tell a window from a
// cool-down on a busy machine.
const (
	interval    = 200 * time.Millisecond
	window      = time.Second
	cooldownOut = 2 * time.Second
	cooldownIn  = 3 * time.Second
	maxN        = 4
)

// An app whose latency grows with concurrency (the fault app's /work
// serves one request at a time per process), load ramped from 2 clients to
// 64 and back. Gatehouse scales out once in-flight per instance stayed
// above 4 for the window, one step per cool-down up to max and never
// beyond, says it is at max, scales back in to min after the cool-downs
// once the load is low, and not one request fails throughout.
func TestAutoscaleFollowsLoad(t *testing.T) {
	cfg, app := harness.FaultApp(t, 1)
	app.Autoscale = &config.Autoscale{
		Min: 1, Max: maxN, Interval: config.Duration(interval),
		Out: []config.ScaleRule{{Metric: config.MetricInflight, Above: &config.Threshold{Value: 4}, For: config.Duration(window), Step: 1}},
		// Two clients on two instances keep about one request in flight
		// on each: below 1.5, and 2 on the one instance left is within
		// the out rule (the flapping guard lets it go).
		In:          []config.ScaleRule{{Metric: config.MetricInflight, Below: &config.Threshold{Value: 1.5}, For: config.Duration(window), Step: 1}},
		CooldownOut: config.Duration(cooldownOut), CooldownIn: config.Duration(cooldownIn),
	}
	// The autoscale_at_max alert, to a receiver on loopback: it must fire
	// while pinned at max and resolve once the load falls.
	hook := testutil.NewWebhook(t)
	cfg.Alerts = config.NewAlerts()
	rc := config.NewReceiver()
	rc.Name, rc.URL = "hook", hook.URL
	cfg.Alerts.Receivers = []*config.Receiver{rc}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 15*time.Second)

	l := newLoad(t, g.URL+"/work?d=20ms")
	defer l.stop()
	var peak atomic.Int64
	stopWatch := watch(g, &peak)
	defer stopWatch()

	// c=2: one instance copes (2 in flight ≤ 4); nothing scales.
	l.set(2)
	time.Sleep(2 * time.Second)
	if evs := decisions(g); len(evs) > 0 {
		t.Fatalf("scaled under 2 clients:\n%s", describe(evs))
	}

	// c=64: out after the window, one step per cool-down, up to max.
	surge := time.Now()
	l.set(64)
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("%d ready instances under 64 clients", maxN), func() bool { return ready(g) == maxN })
	atMax := waitEvent(t, g, 5*time.Second, func(e telemetry.Event) bool { return e.Trigger == telemetry.ScaleAtMax })
	outs := decisions(g)
	if len(outs) != maxN-1 {
		t.Fatalf("%d scale-outs from 1 to %d instances, want %d of one step:\n%s", len(outs), maxN, maxN-1, describe(outs))
	}
	if first := outs[0].Time.Sub(surge); first < window || first > window+4*time.Second {
		t.Errorf("first scale-out %s after the surge; want about the window (%s)", first.Round(time.Millisecond), window)
	}
	for i := 1; i < len(outs); i++ {
		if gap := outs[i].Time.Sub(outs[i-1].Time); gap < cooldownOut {
			t.Errorf("scale-outs %d and %d %s apart, within cooldown_out %s:\n%s", i, i+1, gap, cooldownOut, describe(outs))
		}
	}
	if !strings.Contains(atMax.Detail, "at max (4 instances)") || !strings.HasPrefix(atMax.Value, "inflight_per_instance ") {
		t.Errorf("at_max event: value %q detail %q, want it to name the rule and say at max (4 instances)", atMax.Value, atMax.Detail)
	}
	st := autoscaleStatus(t, g)
	if st.Min != 1 || st.Max != maxN || st.Desired != maxN || !st.AtMax || !strings.HasPrefix(st.LastDecision, "at max: inflight_per_instance") {
		t.Errorf("status at max = %+v", st)
	}
	testutil.WaitFor(t, 10*time.Second, "a firing autoscale_at_max notification", func() bool {
		return strings.Join(hook.Statuses(t, alerts.AutoscaleAtMax), ",") == alerts.Firing
	})
	// A while at max: the rule keeps holding, nothing more starts.
	time.Sleep(time.Second)

	// Back to c=2: in, one step per cool_down_in, down to min.
	calm := time.Now()
	l.set(2)
	testutil.WaitFor(t, 30*time.Second, "back to 1 instance under 2 clients", func() bool {
		return len(g.Instances("web")) == 1 && ready(g) == 1
	})
	all := decisions(g)
	ins := all[len(outs):]
	if len(ins) != maxN-1 {
		t.Fatalf("%d scale-ins from %d to 1, want %d:\n%s", len(ins), maxN, maxN-1, describe(all))
	}
	prev := outs[len(outs)-1].Time
	for i, e := range ins {
		if !regexp.MustCompile(fmt.Sprintf(`%d → %d instances?: inflight_per_instance`, maxN-i, maxN-i-1)).MatchString(e.Detail) {
			t.Errorf("scale-in %d: %q", i+1, e.Detail)
		}
		if gap := e.Time.Sub(prev); gap < cooldownIn {
			t.Errorf("scale-in %d came %s after the scale before it, within cooldown_in %s:\n%s", i+1, gap, cooldownIn, describe(all))
		}
		prev = e.Time
	}
	if first := ins[0].Time.Sub(calm); first < window {
		t.Errorf("first scale-in %s after the load fell, before the window (%s) could hold", first, window)
	}
	testutil.WaitFor(t, 10*time.Second, "a resolved autoscale_at_max notification", func() bool {
		return len(hook.Statuses(t, alerts.AutoscaleAtMax)) > 1
	})
	time.Sleep(500 * time.Millisecond)
	l.stop()
	stopWatch()
	if got, want := strings.Join(hook.Statuses(t, alerts.AutoscaleAtMax), ","), alerts.Firing+","+alerts.Resolved; got != want {
		t.Errorf("autoscale_at_max notifications %s, want %s", got, want)
	}

	if p := peak.Load(); p > maxN {
		t.Errorf("%d instances at once, max is %d", p, maxN)
	}
	sent, failed := l.result()
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed, e.g. %s", len(failed), sent, failed[0])
	}
	if sent < 500 {
		t.Errorf("only %d requests were sent; the load did not run", sent)
	}
	body := get(t, g.AdminURL+"/metrics")
	for _, want := range []string{
		`gatehouse_autoscale_decisions_total{app="web",direction="out",rule="inflight_per_instance"} 3`,
		`gatehouse_autoscale_decisions_total{app="web",direction="in",rule="inflight_per_instance"} 3`,
		`gatehouse_autoscale_decisions_total{app="web",direction="at_max",rule="inflight_per_instance"} 1`,
		`gatehouse_autoscale_desired_instances{app="web"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	t.Logf("%d requests, none failed; peak %d instances; first scale-out %s after the surge, first scale-in %s after the calm; decisions:\n%s",
		sent, peak.Load(), outs[0].Time.Sub(surge).Round(time.Millisecond), ins[0].Time.Sub(calm).Round(time.Millisecond), describe(all))
}

// load runs a changeable number of clients looping over one URL and
// keeps every failure.
type load struct {
	t     *testing.T
	url   string
	c     *http.Client
	mu    sync.Mutex
	stops []chan struct{}
	wg    sync.WaitGroup
	sent  atomic.Int64
	fmu   sync.Mutex
	fail  []string
	once  sync.Once
}

func newLoad(t *testing.T, url string) *load {
	c := harness.Client(30 * time.Second)
	t.Cleanup(c.CloseIdleConnections)
	return &load{t: t, url: url, c: c}
}

// set changes the number of clients to n.
func (l *load) set(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.stops) > n {
		close(l.stops[len(l.stops)-1])
		l.stops = l.stops[:len(l.stops)-1]
	}
	for len(l.stops) < n {
		stop := make(chan struct{})
		l.stops = append(l.stops, stop)
		l.wg.Add(1)
		go l.client(stop)
	}
}

func (l *load) client(stop chan struct{}) {
	defer l.wg.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		l.sent.Add(1)
		resp, err := l.c.Get(l.url)
		if err != nil {
			l.failed(err.Error())
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			l.failed(fmt.Sprintf("%d %q %v", resp.StatusCode, body, err))
		}
	}
}

func (l *load) failed(s string) {
	l.fmu.Lock()
	l.fail = append(l.fail, s)
	l.fmu.Unlock()
}

// stop ends every client and waits for them (idempotent).
func (l *load) stop() {
	l.once.Do(func() {
		l.set(0)
		l.wg.Wait()
	})
}

func (l *load) result() (int64, []string) {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	return l.sent.Load(), l.fail
}

// watch records the most instances the app had at once, until the
// returned func is called.
func watch(g *harness.Gatehouse, peak *atomic.Int64) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if n := int64(len(g.Instances("web"))); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); <-done }) }
}

func ready(g *harness.Gatehouse) int {
	n := 0
	for _, in := range g.Instances("web") {
		if in.State == "ready" {
			n++
		}
	}
	return n
}

// decisionDetail is an autoscale scale event's detail.
var decisionDetail = regexp.MustCompile(`^autoscale: (\d+) → (\d+) instances?: `)

// decisions are the autoscale scale events that changed the count, in
// order.
func decisions(g *harness.Gatehouse) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range g.Events(telemetry.EventScale) {
		if e.Trigger != "" && e.Trigger != telemetry.ScaleAtMax && decisionDetail.MatchString(e.Detail) {
			m := decisionDetail.FindStringSubmatch(e.Detail)
			if to, _ := strconv.Atoi(m[2]); to > maxN {
				panic("a decision beyond max: " + e.Detail)
			}
			out = append(out, e)
		}
	}
	return out
}

func waitEvent(t *testing.T, g *harness.Gatehouse, timeout time.Duration, match func(telemetry.Event) bool) telemetry.Event {
	t.Helper()
	var found telemetry.Event
	testutil.WaitFor(t, timeout, "a matching scale event", func() bool {
		for _, e := range g.Events(telemetry.EventScale) {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func autoscaleStatus(t *testing.T, g *harness.Gatehouse) supervisor.AutoscaleStatus {
	t.Helper()
	for _, a := range g.Srv.Supervisor().Status() {
		if a.Name == "web" && a.Autoscale != nil {
			return *a.Autoscale
		}
	}
	t.Fatalf("status of web has no autoscale")
	return supervisor.AutoscaleStatus{}
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := harness.Client(10 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func describe(evs []telemetry.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s trigger=%q value=%q: %s\n", e.Time.Format("15:04:05.000"), e.Trigger, e.Value, e.Detail)
	}
	return b.String()
}
