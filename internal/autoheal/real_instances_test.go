package autoheal_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// The wiring of the sampler, the healer and the supervisor's recycle,
// with real processes: a memory trigger of 150 MiB private bytes; the app
// retains 100 MiB per /alloc. After the second /alloc the instance is
// recycled (auto_heal event naming the measured private bytes, then a
// recycle event), a replacement serves, and requests sent all through
// the recycle succeed. What stays under the limit, and the trigger's
// other rules, are TestMemoryTriggerRecyclesOnce's.
func TestMemoryTriggerRecyclesWithoutFailedRequests(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.Triggers.Memory = &config.MemoryTrigger{PrivateBytes: config.Size(150 << 20)}
	g := start(t, 1, ah)
	c := client(t, 10*time.Second)
	oldID, oldPID := only(t, g)

	// Load during the whole episode: concurrent GETs of / that must all
	// succeed, the recycle being overlapped.
	var mu sync.Mutex
	var sent int
	var failures []string
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return sent
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			pace := time.NewTicker(5 * time.Millisecond)
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				code, body, _, err := tryGet(c, g.URL+"/")
				mu.Lock()
				sent++
				if err != nil || code != 200 {
					failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
				}
				mu.Unlock()
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	mustGet(t, c, g.URL+"/alloc?mb=100", 200)
	testutil.WaitFor(t, 5*time.Second, "a sample showing the first 100 MiB", func() bool {
		g.Srv.Supervisor().SampleNow()
		ins := g.Instances("web")
		return len(ins) == 1 && ins[0].ID == oldID && ins[0].RSSBytes >= 90<<20
	})
	if evs := g.Events(telemetry.EventAutoHeal, telemetry.EventRecycle); len(evs) > 0 {
		t.Fatalf("acted below the limit: %+v", evs)
	}

	mustGet(t, c, g.URL+"/alloc?mb=100", 200)
	ev := waitEvent(t, g, 10*time.Second, telemetry.EventAutoHeal, oldID, "memory")
	var mb int
	if _, err := fmt.Sscanf(ev.Value, "private bytes %d MiB", &mb); err != nil {
		t.Fatalf("auto_heal value %q does not name the measured private bytes", ev.Value)
	}
	if mb < 150 || mb > 400 {
		t.Errorf("auto_heal says private bytes %d MiB; the app retains 200 MiB (limit 150 MiB)", mb)
	}
	if ev.PID != oldPID {
		t.Errorf("auto_heal event pid = %d, want the instance's pid %d", ev.PID, oldPID)
	}
	waitEvent(t, g, 10*time.Second, telemetry.EventRecycle, oldID, "")
	if diff := cmp.Diff([]string{"auto_heal memory", "recycle "}, episode(g, oldID)); diff != "" {
		t.Errorf("the instance's events, in order (-want +got):\n%s", diff)
	}
	newID, newPID := waitReplaced(t, g, oldID)
	if newPID == oldPID {
		t.Fatalf("replacement has the old pid %d", newPID)
	}
	if inst := mustGet(t, c, g.URL+"/", 200); inst != newID {
		t.Errorf("after the recycle / was served by %q, want the replacement %s", inst, newID)
	}
	if testutil.ProcessAlive(oldPID) {
		t.Errorf("old process %d still alive after the recycle", oldPID)
	}
	// A little more load on the replacement, then stop.
	after := count()
	testutil.WaitFor(t, 10*time.Second, "20 more requests on the replacement", func() bool { return count() >= after+20 })
	stopLoad()
	if n := len(failures); n > 0 {
		t.Fatalf("%d of %d requests failed during the recycle, e.g. %s", n, sent, failures[0])
	}
	if sent < 20 {
		t.Fatalf("only %d requests were sent during the episode; the load did not run", sent)
	}
	t.Logf("%d requests during the episode, none failed; %s", sent, ev.Value)
}

// The wiring of the gateway's finished requests into the healer: five
// 500s through the gateway recycle the instance that answered them. What
// does not count, and the other request triggers, are
// TestRequestTriggersRecycleThatInstance's.
func TestGatewayStatusCodesRecycleInstance(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.Triggers.StatusCodes = []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 500}, Count: 5, Interval: config.Duration(time.Minute)}}
	g := start(t, 1, ah)
	c := client(t, 5*time.Second)
	oldID, oldPID := only(t, g)

	for range 5 {
		mustGet(t, c, g.URL+"/status?code=500", 500)
	}
	ev := waitEvent(t, g, 5*time.Second, telemetry.EventAutoHeal, oldID, "status_codes")
	if want := "5 responses with status 500 within 1m0s"; ev.Value != want {
		t.Errorf("auto_heal value = %q, want %q", ev.Value, want)
	}
	waitEvent(t, g, 5*time.Second, telemetry.EventRecycle, oldID, "")
	if diff := cmp.Diff([]string{"auto_heal status_codes", "recycle "}, episode(g, oldID)); diff != "" {
		t.Errorf("the instance's events, in order (-want +got):\n%s", diff)
	}
	if _, newPID := waitReplaced(t, g, oldID); newPID == oldPID {
		t.Fatalf("replacement has the old pid %d", newPID)
	}
	mustGet(t, c, g.URL+"/", 200)
}

// The wiring of the probes, the healer and the supervisor's recycle, with
// a real process: the app's /healthz answers 503 from a switch on, its
// probes take it out of rotation, and after health.recycle_after it is
// recycled (an auto_heal event of trigger unhealthy, then a recycle
// event); the replacement, whose /healthz passes, serves, and the
// requests sent through the episode, held while no instance was ready,
// all succeed. When and how often it acts is
// TestUnhealthyInstanceRecycledAfterRecycleAfter's and
// TestUnhealthyRecyclesStopAtMaxRecycles'.
func TestUnhealthyInstanceRecycledWithoutFailedRequests(t *testing.T) {
	cfg, app := harness.FaultApp(t, 1)
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	app.Health.Interval = config.Duration(100 * time.Millisecond)
	app.Health.RecycleAfter = config.Duration(time.Second)
	app.HoldTimeout = config.Duration(30 * time.Second)
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 15*time.Second)
	c := client(t, 60*time.Second)
	oldID, oldPID := only(t, g)

	mustGet(t, c, g.URL+"/set-health?status=503", 200)
	waitEvent(t, g, 10*time.Second, telemetry.EventUnhealthy, oldID, "")
	// Requests sent while the instance is out of rotation are held, and
	// answered by the replacement.
	var wg sync.WaitGroup
	failures := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			if code, body, _, err := tryGet(c, g.URL+"/"); err != nil || code != 200 {
				failures <- fmt.Sprintf("%d %q %v", code, body, err)
			}
		})
	}
	ev := waitEvent(t, g, 10*time.Second, telemetry.EventAutoHeal, oldID, "unhealthy")
	// How long is at least recycle_after, more on a busy machine.
	if !strings.HasPrefix(ev.Value, "unhealthy for ") || !strings.Contains(ev.Value, " (health.recycle_after 1s); last probe: ") || !strings.Contains(ev.Value, "503") {
		t.Errorf("auto_heal value %q does not say how long the instance was unhealthy and its last probe", ev.Value)
	}
	if ev.PID != oldPID {
		t.Errorf("auto_heal event pid = %d, want the instance's pid %d", ev.PID, oldPID)
	}
	rec := waitEvent(t, g, 10*time.Second, telemetry.EventRecycle, oldID, "")
	if want := "auto-heal unhealthy: " + ev.Value; rec.Detail != want {
		t.Errorf("recycle event says %q, want %q", rec.Detail, want)
	}
	if diff := cmp.Diff([]string{"auto_heal unhealthy", "recycle "}, episode(g, oldID)); diff != "" {
		t.Errorf("the instance's events, in order (-want +got):\n%s", diff)
	}
	newID, newPID := waitReplaced(t, g, oldID)
	if newPID == oldPID {
		t.Fatalf("replacement has the old pid %d", newPID)
	}
	st := g.Srv.Supervisor().Status()
	if len(st) != 1 || st[0].LastRecycle == nil {
		t.Fatalf("status has no last recycle: %+v", st)
	}
	last := *st[0].LastRecycle
	last.At = time.Time{}
	if diff := cmp.Diff(supervisor.RecycleStatus{Instance: oldID, Replacement: newID, Reason: rec.Detail}, last); diff != "" {
		t.Errorf("status's last recycle (-want +got):\n%s", diff)
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("a request sent while the instance was unhealthy failed: %s", f)
	}
	if inst := mustGet(t, c, g.URL+"/", 200); inst != newID {
		t.Errorf("after the recycle / was served by %q, want the replacement %s", inst, newID)
	}
	if testutil.ProcessAlive(oldPID) {
		t.Errorf("old process %d still alive after the recycle", oldPID)
	}
}

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

// client returns a gateway client whose idle connections are closed when
// the test ends.
func client(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	c := harness.Client(timeout)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// tryGet fetches url and returns the status, body and the instance that
// served it (X-Instance).
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
	code, body, inst, err := tryGet(c, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if code != want {
		t.Fatalf("GET %s = %d %q, want %d", url, code, body, want)
	}
	return inst
}

// only returns the id and pid of the app's single instance.
func only(t *testing.T, g *harness.Gatehouse) (string, int) {
	t.Helper()
	ins := g.Instances("web")
	if len(ins) != 1 {
		t.Fatalf("instances = %+v, want exactly one", ins)
	}
	return ins[0].ID, ins[0].PID
}

// waitEvent waits for an event of type typ for instance id with the
// given trigger ("": any), and returns the first.
func waitEvent(t *testing.T, g *harness.Gatehouse, timeout time.Duration, typ, id, trigger string) telemetry.Event {
	t.Helper()
	return g.WaitEvent(t, timeout, typ, id, func(e telemetry.Event) bool { return trigger == "" || e.Trigger == trigger })
}

// episode is the type and trigger of instance id's auto_heal and recycle
// events, in order.
func episode(g *harness.Gatehouse, id string) []string {
	var out []string
	for _, e := range g.Events(telemetry.EventAutoHeal, telemetry.EventRecycle) {
		if e.Instance == id {
			out = append(out, e.Type+" "+e.Trigger)
		}
	}
	return out
}

// waitReplaced waits until instance old is gone and one ready instance
// other than it serves, and returns the replacement's id and pid.
func waitReplaced(t *testing.T, g *harness.Gatehouse, old string) (id string, pid int) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, old+" replaced by a ready instance", func() bool {
		ins := g.Instances("web")
		if len(ins) != 1 || ins[0].ID == old || ins[0].State != "ready" {
			return false
		}
		id, pid = ins[0].ID, ins[0].PID
		return true
	})
	return id, pid
}

// Every gatehouse a test starts is stopped by the harness (which waits for
// the healer's actions under way), every client closes its idle
// connections, every process is reaped and every fake healer's Run has
// returned, so nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.Cleanup(testutil.ExitRemovingBinaries)) }
