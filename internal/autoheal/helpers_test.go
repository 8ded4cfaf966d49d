package autoheal_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// start runs the fault app with n instances and the auto_heal block ah,
// sampling every 200ms, and waits until every instance is ready.
func start(t *testing.T, n int, ah *config.AutoHeal) *harness.Gatehouse {
	t.Helper()
	cfg, app := harness.FaultApp(t, n)
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	app.AutoHeal = ah
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", n, 15*time.Second)
	return g
}

// autoHeal is the defaults of a present auto_heal block.
func autoHeal() *config.AutoHeal { return config.NewAutoHeal() }

// client returns a gateway client whose idle connections are closed when
// the test ends.
func client(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	c := harness.Client(timeout)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// get fetches url and returns the status, body and the instance that
// served it (X-Instance).
func get(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	code, body, inst, err := tryGet(c, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return code, body, inst
}

func tryGet(c *http.Client, url string) (int, string, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", "", fmt.Errorf("read body: %w", err)
	}
	return resp.StatusCode, string(body), resp.Header.Get("X-Instance"), nil
}

// mustGet fetches url and fails unless it answered want.
func mustGet(t *testing.T, c *http.Client, url string, want int) string {
	t.Helper()
	code, body, inst := get(t, c, url)
	if code != want {
		t.Fatalf("GET %s = %d %q, want %d", url, code, body, want)
	}
	return inst
}

// instance returns the status of instance id, and whether it exists.
func instance(g *harness.Gatehouse, id string) (supervisor.InstanceStatus, bool) {
	for _, in := range g.Instances("web") {
		if in.ID == id {
			return in, true
		}
	}
	return supervisor.InstanceStatus{}, false
}

// only returns the single instance of the app.
func only(t *testing.T, g *harness.Gatehouse) supervisor.InstanceStatus {
	t.Helper()
	ins := g.Instances("web")
	if len(ins) != 1 {
		t.Fatalf("instances = %+v, want exactly one", ins)
	}
	return ins[0]
}

// waitEvent waits for an event of type typ for instance id (any when "")
// that match accepts (nil: any), and returns the first.
func waitEvent(t *testing.T, g *harness.Gatehouse, timeout time.Duration, typ, id string, match func(telemetry.Event) bool) telemetry.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range g.Events(typ) {
			if (id == "" || e.Instance == id) && (match == nil || match(e)) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for a %q event of %q; events:\n%s", timeout, typ, id, describe(g.Events()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hold checks for d that no event of the given types happens, as a user
// watching the event log would: it fails naming the event that did.
func hold(t *testing.T, g *harness.Gatehouse, d time.Duration, types ...string) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if evs := g.Events(types...); len(evs) > 0 {
			t.Fatalf("unexpected %s event(s):\n%s", strings.Join(types, "/"), describe(evs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// trigger matches auto_heal events by trigger.
func trigger(name string) func(telemetry.Event) bool {
	return func(e telemetry.Event) bool { return e.Trigger == name }
}

// describe formats events for failure messages.
func describe(evs []telemetry.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %s %s pid=%d trigger=%q value=%q: %s\n", e.Time.Format("15:04:05.000"), e.Instance, e.Type, e.PID, e.Trigger, e.Value, e.Detail)
	}
	return b.String()
}

// waitReplaced waits until instance old is gone and one ready instance
// other than it serves, and returns the replacement's status.
func waitReplaced(t *testing.T, g *harness.Gatehouse, old string, timeout time.Duration) supervisor.InstanceStatus {
	t.Helper()
	var nw supervisor.InstanceStatus
	testutil.WaitFor(t, timeout, old+" replaced by a ready instance", func() bool {
		if _, ok := instance(g, old); ok {
			return false
		}
		for _, in := range g.Instances("web") {
			if in.State == "ready" {
				nw = in
				return true
			}
		}
		return false
	})
	return nw
}

// waitReplacedAmong waits until instance gone no longer exists and the app
// has n ready instances again.
func waitReplacedAmong(t *testing.T, g *harness.Gatehouse, gone string, n int) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("%s replaced, %d ready instances", gone, n), func() bool {
		if _, ok := instance(g, gone); ok {
			return false
		}
		ready := 0
		for _, in := range g.Instances("web") {
			if in.State == "ready" {
				ready++
			}
		}
		return ready == n
	})
}
