package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// An app whose health path answers 403 never becomes ready; status says
// why, and so does the 503 a held request gets.
func TestProbeRejected403NeverReady(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1, "-health-status", "403")
	app.HoldTimeout = config.Duration(300 * time.Millisecond)
	g := harness.Start(t, cfg)

	testutil.WaitFor(t, 5*time.Second, "health detail naming the 403", func() bool {
		in, _ := instance(g, "web-1")
		return strings.Contains(in.Health, "403")
	})
	// Several more probes, each of which the app logs as it answers 403:
	// the instance must stay out of rotation.
	ac := admin.NewClient(g.AdminURL, "")
	t.Cleanup(ac.HTTP.CloseIdleConnections)
	rejected := func() int {
		lines, err := ac.Logs(t.Context(), "app=web")
		if err != nil {
			t.Fatalf("GET /api/logs: %v", err)
		}
		n := 0
		for _, l := range lines {
			if strings.Contains(l.Line, "/healthz answering 403") {
				n++
			}
		}
		return n
	}
	first := rejected()
	testutil.WaitFor(t, 10*time.Second, "three more probes answered 403", func() bool { return rejected() >= first+3 })
	in, _ := instance(g, "web-1")
	if in.State == "ready" {
		t.Fatalf("instance with a 403 health path is %s", in.State)
	}
	if evs := g.Events("ready"); len(evs) > 0 {
		t.Fatalf("ready events for an app whose probe answers 403:\n%s", describeEvents(evs))
	}
	if !strings.Contains(in.Health, "403 Forbidden from GET /healthz") {
		t.Errorf("health = %q, want it to contain %q", in.Health, "403 Forbidden from GET /healthz")
	}

	// The admin API shows the same detail.
	c := client(t, 5*time.Second)
	code, body, _ := get(t, c, g.AdminURL+"/api/status")
	var st admin.StatusResponse
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("GET /api/status = %d, %v:\n%s", code, err, body)
	}
	if len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 || !strings.Contains(st.Apps[0].Instances[0].Health, "403") {
		t.Errorf("/api/status health does not contain 403:\n%s", body)
	}

	// A request is held, then refused with the reason.
	code, body, h := get(t, c, g.URL+"/")
	if code != 503 || h.Get("Gatehouse-Cause") != "no_ready_instance" {
		t.Errorf("GET / = %d cause %q, want 503 no_ready_instance", code, h.Get("Gatehouse-Cause"))
	}
	if !strings.Contains(body, "403") {
		t.Errorf("503 body does not say the probe got 403:\n%s", body)
	}
}

// An app that never binds its port is killed at start_timeout, with an
// event, and its process is gone.
func TestNeverListensStartTimeout(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1, "-no-listen")
	app.StartTimeout = config.Duration(time.Second)
	began := time.Now()
	g := harness.Start(t, cfg)

	ev := waitEvent(t, g, 5*time.Second, "start_timeout", "web-1", nil)
	if took := ev.Time.Sub(began); took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("start_timeout after %v, want about 1s", took)
	}
	if ev.PID <= 0 {
		t.Fatalf("start_timeout event without pid: %+v", ev)
	}
	if !strings.Contains(ev.Detail, "connection refused on port") {
		t.Errorf("start_timeout detail %q does not say what the last check saw", ev.Detail)
	}
	testutil.WaitFor(t, 3*time.Second, "the timed-out process to be gone", func() bool { return !testutil.ProcessAlive(ev.PID) })
	exit := waitEvent(t, g, 3*time.Second, "exit", "web-1", func(e telemetry.Event) bool { return e.PID == ev.PID })
	if exit.Signal != "SIGKILL" {
		t.Errorf("exit after start_timeout: signal %q, want SIGKILL (%s)", exit.Signal, exit.Detail)
	}
	if evs := g.Events("ready"); len(evs) > 0 {
		t.Errorf("ready events for an app that never listens:\n%s", describeEvents(evs))
	}
}
