package autoscale_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/alerts"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// The wiring, with real processes: an app whose latency grows with
// concurrency (the fault app's /work serves one request at a time per
// process) under 64 clients scales out to its max of 2, the
// autoscale_at_max alert fires to a webhook on loopback, and with 2
// clients it scales back in and the alert resolves; the metrics count
// the decisions, the instances never exceed max, and not one request
// fails throughout. The rules' timing (windows, cool-downs, steps, one
// at_max per episode) is TestAutoscaleFollowsLoad's.
func TestAutoscaleScalesRealInstances(t *testing.T) {
	const maxN = 2
	cfg, app := harness.FaultApp(t, 1)
	app.Autoscale = &config.Autoscale{
		Min: 1, Max: maxN, Interval: config.Duration(200 * time.Millisecond),
		Out:         []config.ScaleRule{{Metric: config.MetricInflight, Above: &config.Threshold{Value: 4}, For: config.Duration(time.Second), Step: 1}},
		In:          []config.ScaleRule{{Metric: config.MetricInflight, Below: &config.Threshold{Value: 1.5}, For: config.Duration(time.Second), Step: 1}},
		CooldownOut: config.Duration(time.Second), CooldownIn: config.Duration(time.Second),
	}
	hook := testutil.NewWebhook(t)
	cfg.Alerts = config.NewAlerts()
	rc := config.NewReceiver()
	rc.Name, rc.URL = "hook", hook.URL
	cfg.Alerts.Receivers = []*config.Receiver{rc}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 15*time.Second)

	l := newLoad(t, g.URL+"/work?d=20ms")
	defer l.stop()
	peak := watch(g)
	defer peak()

	l.set(64)
	testutil.WaitFor(t, 20*time.Second, "2 ready instances under 64 clients", func() bool { return ready(g) == maxN })
	testutil.WaitFor(t, 10*time.Second, "a firing autoscale_at_max notification", func() bool {
		return slices.Equal(hook.Statuses(t, alerts.AutoscaleAtMax), []string{alerts.Firing})
	})

	l.set(2)
	testutil.WaitFor(t, 20*time.Second, "back to 1 instance under 2 clients", func() bool {
		return len(g.Instances("web")) == 1 && ready(g) == 1
	})
	testutil.WaitFor(t, 10*time.Second, "a resolved autoscale_at_max notification", func() bool {
		return len(hook.Statuses(t, alerts.AutoscaleAtMax)) > 1
	})
	l.stop()
	most := peak()
	if got, want := hook.Statuses(t, alerts.AutoscaleAtMax), []string{alerts.Firing, alerts.Resolved}; !slices.Equal(got, want) {
		t.Errorf("autoscale_at_max notifications %q, want %q", got, want)
	}
	var scales []string
	for _, e := range g.Events(telemetry.EventScale) {
		scales = append(scales, e.Trigger+": "+e.Detail)
	}
	if most > maxN {
		t.Errorf("%d instances at once, max is %d", most, maxN)
	}
	sent, failed := l.result()
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed, e.g. %s", len(failed), sent, failed[0])
	}
	if sent < 100 {
		t.Errorf("only %d requests were sent; the load did not run", sent)
	}
	body := get(t, g.AdminURL+"/metrics")
	for _, want := range []string{
		`gatehouse_autoscale_decisions_total{app="web",direction="out",rule="inflight_per_instance"} 1`,
		`gatehouse_autoscale_decisions_total{app="web",direction="in",rule="inflight_per_instance"} 1`,
		`gatehouse_autoscale_decisions_total{app="web",direction="at_max",rule="inflight_per_instance"} 1`,
		`gatehouse_autoscale_desired_instances{app="web"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s; scale events:\n%s", want, strings.Join(scales, "\n"))
		}
	}
	t.Logf("%d requests, none failed; peak %d instances; scale events:\n%s", sent, most, strings.Join(scales, "\n"))
}

// load runs a changeable number of clients looping over one URL and
// keeps every failure.
type load struct {
	url   string
	c     *http.Client
	mu    sync.Mutex
	stops []chan struct{}
	wg    sync.WaitGroup
	fmu   sync.Mutex
	sent  int
	fail  []string
	once  sync.Once
}

func newLoad(t *testing.T, url string) *load {
	c := harness.Client(30 * time.Second)
	t.Cleanup(c.CloseIdleConnections)
	return &load{url: url, c: c}
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
		l.wg.Go(func() { l.client(stop) })
	}
}

func (l *load) client(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		failure := ""
		resp, err := l.c.Get(l.url)
		if err != nil {
			failure = err.Error()
		} else {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				failure = fmt.Sprintf("%d %q %v", resp.StatusCode, body, err)
			}
		}
		l.fmu.Lock()
		l.sent++
		if failure != "" {
			l.fail = append(l.fail, failure)
		}
		l.fmu.Unlock()
	}
}

// stop ends every client and waits for them (idempotent).
func (l *load) stop() {
	l.once.Do(func() {
		l.set(0)
		l.wg.Wait()
	})
}

func (l *load) result() (int, []string) {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	return l.sent, l.fail
}

// watch records the most instances the app has at once; the returned
// func stops watching (it may be called again) and says how many.
func watch(g *harness.Gatehouse) func() int {
	stop, done := make(chan struct{}), make(chan struct{})
	most := 0
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			most = max(most, len(g.Instances("web")))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() int {
		once.Do(func() { close(stop); <-done })
		return most
	}
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

// Every gatehouse a test starts is stopped by the harness (which waits for
// the scales under way), every client closes its idle connections, every
// process is reaped and every fake scaler's Run has returned, so nothing
// may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.Cleanup(testutil.ExitRemovingBinaries)) }
