package autoscale_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Requests held while the app has no ready instance wait for its start,
// not for capacity: a burst that arrives while an idle-unloaded app wakes,
// or while gatehouse starts it, is held for longer than the held rule's
// window, and its holds end over longer than the hold_wait_ms rule's, yet
// the app stays at its min, as HPA ignores pods not yet ready.
func TestAutoscaleIgnoresHoldsOfAStart(t *testing.T) {
	cold := func(*testing.T, *harness.Gatehouse) {}
	unloaded := func(t *testing.T, g *harness.Gatehouse) {
		g.WaitReady(t, "web", 1, 30*time.Second)
		testutil.WaitFor(t, 30*time.Second, "an idle unload", func() bool {
			return len(g.Events(telemetry.EventIdleUnload)) > 0 && len(g.Instances("web")) == 0
		})
	}
	held := config.ScaleRule{Metric: config.MetricHeld, Above: &config.Threshold{Value: 2}, For: config.Duration(500 * time.Millisecond), Step: 1}
	// The app serves /work one at a time: the burst's requests, all held
	// for the start, end 25ms apart, over several intervals.
	holdWait := config.ScaleRule{Metric: config.MetricHoldWait, Above: &config.Threshold{Value: 1000}, For: config.Duration(200 * time.Millisecond), Step: 1}
	tests := []struct {
		name string
		// before readies the app for the burst: the burst must find it
		// with no ready instance.
		before func(t *testing.T, g *harness.Gatehouse)
		rule   config.ScaleRule
		burst  int
		path   string
	}{
		{"held, cold start", cold, held, 8, "/work?d=10ms"},
		{"held, wake after idle unload", unloaded, held, 8, "/work?d=10ms"},
		{"hold_wait_ms, cold start", cold, holdWait, 16, "/work?d=25ms"},
		{"hold_wait_ms, wake after idle unload", unloaded, holdWait, 16, "/work?d=25ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The start outlasts the held rule's window by far.
			cfg, app := harness.FaultApp(t, 1, "-start-delay", "3s")
			app.HoldTimeout = config.Duration(30 * time.Second)
			app.StartTimeout = config.Duration(30 * time.Second)
			app.IdleTimeout = config.Duration(time.Second)
			app.Autoscale = &config.Autoscale{
				Min: 1, Max: 3, Interval: config.Duration(100 * time.Millisecond),
				Out:         []config.ScaleRule{tt.rule},
				In:          []config.ScaleRule{{Metric: config.MetricInflight, Below: &config.Threshold{Value: 0.5}, For: config.Duration(time.Minute), Step: 1}},
				CooldownOut: config.Duration(time.Minute), CooldownIn: config.Duration(time.Minute),
			}
			g := harness.Start(t, cfg)
			tt.before(t, g)

			if failed := getAtOnce(t, g.URL+tt.path, tt.burst); len(failed) > 0 {
				t.Fatalf("%d of %d requests failed, e.g. %s", len(failed), tt.burst, failed[0])
			}
			// An evaluation after the burst was served: whatever the
			// holds of the start made autoscale decide is decided.
			testutil.WaitFor(t, 30*time.Second, "autoscale to measure no held request", func() bool {
				st := autoscaleStatus(g)
				held, ok := st.Signals[config.MetricHeld]
				return ok && held == 0 && st.Signals[config.MetricHoldWait] == 0
			})
			st := autoscaleStatus(g)
			if st.LastDecision != "" || st.Desired != 1 {
				t.Errorf("autoscale decided %q (desired %d) for a burst held by the start; want no decision", st.LastDecision, st.Desired)
			}
			if n := len(g.Instances("web")); n != 1 {
				t.Errorf("%d instances after the start's burst; want its min of 1", n)
			}
			for _, e := range g.Events(telemetry.EventScale) {
				t.Errorf("scale event %s: %s", e.Trigger, e.Detail)
			}
		})
	}
}

// Requests held while the ready instances are busy are load: an app that
// takes one request at a time (max_inflight: 1) under 16 clients holds
// most of them, and the held rule scales it out once it is ready.
func TestAutoscaleScalesOnHoldsWhileBusy(t *testing.T) {
	cfg, app := harness.FaultApp(t, 1)
	app.MaxInflight = 1
	app.HoldTimeout = config.Duration(30 * time.Second)
	app.Autoscale = &config.Autoscale{
		Min: 1, Max: 2, Interval: config.Duration(100 * time.Millisecond),
		Out:         []config.ScaleRule{{Metric: config.MetricHeld, Above: &config.Threshold{Value: 2}, For: config.Duration(500 * time.Millisecond), Step: 1}},
		In:          []config.ScaleRule{{Metric: config.MetricInflight, Below: &config.Threshold{Value: 0.5}, For: config.Duration(time.Minute), Step: 1}},
		CooldownOut: config.Duration(time.Minute), CooldownIn: config.Duration(time.Minute),
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 30*time.Second)

	l := newLoad(t, g.URL+"/work?d=20ms")
	defer l.stop()
	l.set(16)
	testutil.WaitFor(t, 30*time.Second, "2 ready instances under 16 clients", func() bool { return ready(g) == 2 })
	testutil.WaitFor(t, 10*time.Second, "a scale event for held", func() bool {
		for _, e := range g.Events(telemetry.EventScale) {
			if e.Trigger == config.MetricHeld && strings.Contains(e.Detail, "1 → 2 instances") {
				return true
			}
		}
		return false
	})
	l.stop()
	if sent, failed := l.result(); len(failed) > 0 {
		t.Errorf("%d of %d requests failed, e.g. %s", len(failed), sent, failed[0])
	}
}

// autoscaleStatus is the web app's autoscale status as last published.
func autoscaleStatus(g *harness.Gatehouse) supervisor.AutoscaleStatus {
	for _, a := range g.Srv.Supervisor().Status() {
		if a.Name == "web" && a.Autoscale != nil {
			return *a.Autoscale
		}
	}
	return supervisor.AutoscaleStatus{}
}

// getAtOnce sends n requests for url at once and returns their failures.
func getAtOnce(t *testing.T, url string, n int) []string {
	t.Helper()
	c := harness.Client(60 * time.Second)
	defer c.CloseIdleConnections()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []string
	)
	for range n {
		wg.Go(func() {
			failure := ""
			resp, err := c.Get(url)
			if err != nil {
				failure = err.Error()
			} else {
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					failure = fmt.Sprintf("%d %q %v", resp.StatusCode, strings.TrimSpace(string(body)), err)
				}
			}
			if failure != "" {
				mu.Lock()
				failed = append(failed, failure)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}
