package diagnose_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Every detector is shown its situation for real, a misbehaving fault app
// on loopback, and must name it as the root cause: first in the report,
// with the evidence a person needs.

// Normal traffic to a healthy two-instance app is nothing to report.
func TestHealthyNoCriticalFinding(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 2, nil)
	for range 4 {
		for _, r := range parallel(c, 10, http.MethodGet, g.URL+"/") {
			if r.status != 200 {
				t.Errorf("GET / on a healthy app: %v", r)
			}
		}
	}
	mustGet(t, c, g.URL+"/echo", 200)
	rep, err := g.Srv.Diagnose(since)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := apiDiagnose(t, g, since)
	for _, r := range []diagnose.Report{rep, api} {
		for _, f := range r.Findings {
			if f.Severity == diagnose.Critical {
				t.Errorf("healthy app, critical finding %s:\n%s", f.ID, render(r))
			}
		}
		if r.Errors != 0 || r.Requests < 41 {
			t.Errorf("healthy app: %d requests, %d 5xx; want >= 41, 0", r.Requests, r.Errors)
		}
	}
}

// crashScenario: one instance serving three POSTs crashes on /crash with
// exit code 3 and a panic line; the POSTs die with it (a POST is not
// retried once sent). It returns after the instance is ready again.
func crashScenario(t *testing.T) (*harness.Gatehouse, time.Time) {
	t.Helper()
	g, since, c := serving(t, 1, nil)
	var wg sync.WaitGroup
	inflight := make([]result, 3)
	for i := range inflight {
		wg.Add(1)
		go func() { defer wg.Done(); inflight[i] = do(c, http.MethodPost, g.URL+"/sleep?d=8s") }()
	}
	testutil.WaitFor(t, 5*time.Second, "3 requests in flight", func() bool {
		in := g.Instances("web")
		return len(in) == 1 && in[0].Inflight >= 3
	})
	do(c, http.MethodPost, g.URL+"/crash")
	wg.Wait()
	for _, r := range inflight {
		if r.status != http.StatusBadGateway {
			t.Errorf("in-flight POST when the app crashed: %v; want 502", r)
		}
	}
	waitEvents(t, g, 5*time.Second, telemetry.EventExit, 1)
	g.WaitReady(t, "web", 1, 15*time.Second)
	return g, since
}

func TestDetectorCrash(t *testing.T) {
	t.Parallel()
	g, since := crashScenario(t)
	f := expectFirst(t, g, since, "crash", "exited with code 3", "output: panic: crash requested on /crash")
	if f.Severity != diagnose.Critical || f.RequestsAffected < 3 || f.Instance != "web-1" {
		t.Errorf("crash finding: severity %s, instance %q, %d requests affected; want critical, web-1, >= 3 (the in-flight POSTs)",
			f.Severity, f.Instance, f.RequestsAffected)
	}
}

// SIGKILL from outside (the OOM killer, an operator) under requests.
func TestDetectorCrashSIGKILL(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 1, nil)
	// Two connections to the app first, kept alive: a POST still
	// connecting when the kill comes would be refused, never seen by the
	// app, and retried on its replacement (unaffected by the crash).
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); do(c, http.MethodGet, g.URL+"/sleep?d=200ms") }()
	}
	wg.Wait()
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); do(c, http.MethodPost, g.URL+"/sleep?d=8s") }()
	}
	testutil.WaitFor(t, 5*time.Second, "2 requests in flight", func() bool {
		in := g.Instances("web")
		return len(in) == 1 && in[0].Inflight >= 2
	})
	pid := pidOf(t, g, "web-1")
	if err := killPID(pid); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
	wg.Wait()
	waitEvents(t, g, 5*time.Second, telemetry.EventExit, 1)
	// The entries of requests cut off by a death wait for the exit to be
	// recorded, and are written a moment after it: the finding counts
	// them once they are.
	testutil.WaitFor(t, 5*time.Second, "the crash finding to count both requests", func() bool {
		rep, err := g.Srv.Diagnose(since)
		return err == nil && len(rep.Findings) > 0 && rep.Findings[0].RequestsAffected >= 2
	})
	f := expectFirst(t, g, since, "crash", "killed by SIGKILL", "pid "+strconv.Itoa(pid))
	if f.RequestsAffected < 2 {
		t.Errorf("crash finding counts %d requests affected; want >= 2", f.RequestsAffected)
	}
}

func TestDetectorRestartLoop(t *testing.T) {
	t.Parallel()
	g, since := start(t, 1, func(_ *config.Config, a *config.App) {
		a.HoldTimeout = config.Duration(time.Second)
	}, "-exit-at-start", "1")
	waitEvents(t, g, 10*time.Second, telemetry.EventExit, 3)
	c := client(t, 10*time.Second)
	if r := do(c, http.MethodGet, g.URL+"/"); r.status != 503 {
		t.Errorf("GET / while the app loops: %v; want 503", r)
	}
	f := expectFirst(t, g, since, "restart_loop", "exited with code 1", "output: faultapp", "exit-at-start: exiting with code 1")
	if f.Severity != diagnose.Critical {
		t.Errorf("restart_loop with no ready instance: severity %s; want critical", f.Severity)
	}
}

// An app that never listens: start_timeout 1s kills it, again and again.
// Even after several failed starts this is a start failure, not a crash
// loop of a running app.
func TestDetectorStartFailure(t *testing.T) {
	t.Parallel()
	g, since := start(t, 1, func(_ *config.Config, a *config.App) {
		a.StartTimeout = config.Duration(time.Second)
		a.HoldTimeout = config.Duration(time.Second)
	}, "-no-listen")
	c := client(t, 10*time.Second)
	if r := do(c, http.MethodGet, g.URL+"/"); r.status != 503 || r.cause != "no_ready_instance" {
		t.Errorf("GET / to an app that never listens: %v; want 503 no_ready_instance", r)
	}
	waitEvents(t, g, 15*time.Second, telemetry.EventStartTimeout, 3)
	waitEvents(t, g, 5*time.Second, telemetry.EventExit, 3)
	// That it listens on no port comes from a sample of the process that
	// runs now: the instance spends its back-off between starts with none,
	// and each process lives 1s. Diagnose early in one's life.
	testutil.WaitFor(t, 30*time.Second, "a sample of a process started under 500ms ago", func() bool {
		in := g.Instances("web")
		return len(in) == 1 && in[0].PID > 0 && in[0].RSSBytes > 0 && time.Since(in[0].StartedAt) < 500*time.Millisecond
	})
	f := expectFirst(t, g, since, "start_failure", "start_timeout 1s", "listens on no port")
	if f.RequestsAffected < 1 {
		t.Errorf("start_failure counts %d requests affected; want >= 1", f.RequestsAffected)
	}
}

func TestDetectorPortMismatch(t *testing.T) {
	t.Parallel()
	fixed := testutil.FreePort(t)
	g, since := start(t, 1, func(_ *config.Config, a *config.App) {
		a.StartTimeout = config.Duration(60 * time.Second)
		a.HoldTimeout = config.Duration(time.Second)
	}, "-listen-port", strconv.Itoa(fixed))
	c := client(t, 10*time.Second)
	begin := time.Now()
	r := do(c, http.MethodGet, g.URL+"/")
	if r.status != 503 || time.Since(begin) > 3*time.Second {
		t.Errorf("GET / to an app on the wrong port: %v after %v; want 503 within hold_timeout 1s", r, time.Since(begin))
	}
	// The sampler must have seen the process listen.
	testutil.WaitFor(t, 10*time.Second, "the fault app to listen on its fixed port", func() bool {
		cn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(fixed), time.Second)
		if err == nil {
			cn.Close()
		}
		return err == nil
	})
	port := g.Instances("web")[0].Port
	f := expectFirst(t, g, since, "port_mismatch", strconv.Itoa(fixed), "PORT="+strconv.Itoa(port))
	if f.RequestsAffected < 1 {
		t.Errorf("port_mismatch counts %d requests affected; want >= 1", f.RequestsAffected)
	}
}

func TestDetectorProbeRejected(t *testing.T) {
	t.Parallel()
	g, since := start(t, 1, func(_ *config.Config, a *config.App) {
		a.StartTimeout = config.Duration(60 * time.Second)
		a.HoldTimeout = config.Duration(time.Second)
	}, "-health-status", "403")
	testutil.WaitFor(t, 10*time.Second, "a probe answered 403", func() bool {
		in := g.Instances("web")
		return len(in) == 1 && strings.Contains(in[0].Health, "403")
	})
	c := client(t, 10*time.Second)
	do(c, http.MethodGet, g.URL+"/")
	f := expectFirst(t, g, since, "probe_rejected", "403", "/healthz")
	if f.Severity != diagnose.Critical {
		t.Errorf("probe_rejected with no ready instance: severity %s; want critical", f.Severity)
	}
}

// A blocked event loop: the process is alive and spins a core, and
// answers nothing, its probes included.
func TestDetectorUnresponsive(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 1, func(_ *config.Config, a *config.App) {
		a.Health.Interval = config.Duration(200 * time.Millisecond)
		a.Health.Timeout = config.Duration(300 * time.Millisecond)
		a.Health.UnhealthyThreshold = 2
		a.StopTimeout = config.Duration(time.Second)
	})
	pid := pidOf(t, g, "web-1")
	mustGet(t, c, g.URL+"/freeze?d=5s", 200)
	waitEvents(t, g, 4*time.Second, telemetry.EventUnhealthy, 1)
	testutil.WaitFor(t, 4*time.Second, "a sample of the spinning core", func() bool {
		in := g.Instances("web")
		return len(in) == 1 && in[0].CPUPercent != nil && *in[0].CPUPercent > 0
	})
	f := expectFirst(t, g, since, "unresponsive", "timeout after 300ms", fmt.Sprintf("pid %d", pid))
	if f.Instance != "web-1" || f.Severity != diagnose.Critical {
		t.Errorf("unresponsive finding: instance %q severity %s; want web-1, critical", f.Instance, f.Severity)
	}
}

func TestDetectorSlowRequests(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 1, func(_ *config.Config, a *config.App) {
		a.RequestTimeout = config.Duration(time.Second)
	})
	for _, r := range parallel(c, 3, http.MethodGet, g.URL+"/sleep?d=2s") {
		if r.status != 504 || r.cause != "upstream_timeout" {
			t.Errorf("GET /sleep?d=2s with request_timeout 1s: %v; want 504 upstream_timeout", r)
		}
	}
	f := expectFirst(t, g, since, "slow_requests", "request_timeout 1s", "504 upstream_timeout", "/sleep")
	if f.RequestsAffected != 3 {
		t.Errorf("slow_requests counts %d requests affected; want 3", f.RequestsAffected)
	}
}

func TestDetectorMemoryPressure(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 1, func(_ *config.Config, a *config.App) {
		ah := config.NewAutoHeal()
		ah.Triggers.Memory = &config.MemoryTrigger{PrivateBytes: 100 << 20}
		a.AutoHeal = ah
	})
	mustGet(t, c, g.URL+"/alloc?mb=150", 200)
	testutil.WaitFor(t, 10*time.Second, "a memory auto_heal event", func() bool {
		for _, e := range g.Events(telemetry.EventAutoHeal) {
			if e.Trigger == "memory" {
				return true
			}
		}
		return false
	})
	expectFirst(t, g, since, "memory_pressure", "web-1", "private bytes", "100 MiB")
}

func TestDetectorOutboundExhaustion(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	accepted.Add(1)
	go func() {
		defer accepted.Done()
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, cn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		accepted.Wait()
		mu.Lock()
		for _, cn := range conns {
			cn.Close()
		}
		mu.Unlock()
	})
	g, since, c := serving(t, 1, nil)
	mustGet(t, c, g.URL+"/connect-out?n=130&addr="+ln.Addr().String(), 200)
	f := expectFirst(t, g, since, "outbound_exhaustion", "130 outbound connections to "+ln.Addr().String())
	if f.Severity != diagnose.Critical || f.Instance != "web-1" {
		t.Errorf("outbound_exhaustion: severity %s instance %q; want critical, web-1", f.Severity, f.Instance)
	}
}

// The app closes idle keep-alive connections after 200ms without saying
// so, and clients pace requests at about that: gatehouse sometimes writes
// a request on a connection the app is closing. The race is timing-based:
// bursts of POSTs about 250ms apart make it likely within 15s; if it never
// happens the test is skipped, since there is nothing to diagnose.
func TestDetectorKeepaliveRace(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 2, func(_ *config.Config, a *config.App) {
		a.UpstreamIdleTimeout = config.Duration(5 * time.Second)
	}, "-keepalive-idle", "200ms")
	stale := func() bool {
		for _, e := range g.Access() {
			if e.Cause == "stale_connection" {
				return true
			}
			for _, rc := range e.RetriedCauses {
				if rc == "stale_connection" {
					return true
				}
			}
		}
		return false
	}
	// Bursts of requests that each take 50ms open many connections at
	// once; the next burst, about 250ms later, reuses every one of them
	// after it idled about as long as the app allows. Within a burst the
	// starts are staggered by 1ms, so that the connections' idle times
	// span tens of milliseconds around the app's 200ms, and the period
	// sweeps a few milliseconds either way, so the reuses cover the
	// instant the app closes whatever the machine's delays.
	const workers = 24
	offsets := []time.Duration{0, 2, -2, 4, -4, 1, -1, 3, -3, 6, -6}
	sent := 0
	deadline := time.Now().Add(15 * time.Second)
	next := time.Now()
	for n := 0; !stale() && time.Now().Before(deadline); n++ {
		var wg sync.WaitGroup
		for j := range workers {
			wg.Add(1)
			at := next.Add(time.Duration(j) * time.Millisecond)
			go func() {
				defer wg.Done()
				time.Sleep(time.Until(at))
				// A POST with a body: Go's transport in gatehouse would
				// silently retry a GET itself on a connection closed while
				// idle, and gatehouse would never see the race.
				resp, err := c.Post(g.URL+"/sleep?d=50ms", "text/plain", strings.NewReader("keep-alive race"))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		sent += workers
		next = next.Add(250*time.Millisecond + offsets[n%len(offsets)]*time.Millisecond)
		time.Sleep(time.Until(next) - 5*time.Millisecond)
		// A slow machine may have fallen behind: start again from now.
		if time.Until(next) < 0 {
			next = time.Now().Add(5 * time.Millisecond)
		}
	}
	if !stale() {
		t.Skipf("the keep-alive race never happened in 15s (%d paced requests): no access entry carries stale_connection; nothing to diagnose", sent)
	}
	expectFirst(t, g, since, "keepalive_race", "had just closed", "upstream_idle_timeout 5s")
}

func TestDetectorColdStart(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 1, func(_ *config.Config, a *config.App) {
		a.IdleTimeout = config.Duration(time.Second)
	})
	waitEvents(t, g, 10*time.Second, telemetry.EventIdleUnload, 1)
	// The event comes as the unload begins: the request must find the app
	// unloaded, not its last instance still in the pool (which would
	// serve it, unheld, while it stops).
	pool := g.Srv.Supervisor().App("web").Pool()
	testutil.WaitFor(t, 10*time.Second, "the app to be unloaded, its last instance out of the pool", func() bool {
		if !pool.Unloaded() {
			return false
		}
		for _, m := range pool.Members() {
			if m.Routable() {
				return false
			}
		}
		return true
	})
	mustGet(t, c, g.URL+"/", 200)
	waitEvents(t, g, 5*time.Second, telemetry.EventWake, 1)
	f := expectFirst(t, g, since, "cold_start", "idle_timeout 1s", "woke from idle 1 time")
	var held time.Duration
	for _, e := range g.Access() {
		held = max(held, e.Held)
	}
	if held == 0 {
		t.Errorf("the request that woke the app was held while it started, but no access entry has Held > 0 " +
			"(no held_ms in access.log): the gateway does not record reqState.held in the entry (gateway.finish), " +
			"so cold_start cannot count the held requests or say how long they waited")
	}
	if f.RequestsAffected < 1 {
		t.Errorf("cold_start counts %d held requests; want >= 1 (title: %s)", f.RequestsAffected, f.Title)
	}
}

// Ten requests at once for an instance still starting (3s), with room to
// hold only two: the rest are turned away at once.
func TestDetectorOverload(t *testing.T) {
	t.Parallel()
	g, since := start(t, 1, func(_ *config.Config, a *config.App) {
		a.QueueSize = 2
		a.HoldTimeout = config.Duration(500 * time.Millisecond)
	}, "-start-delay", "3s")
	c := client(t, 10*time.Second)
	full := 0
	for _, r := range parallel(c, 10, http.MethodGet, g.URL+"/") {
		if r.cause == "queue_full" {
			full++
		}
	}
	if full == 0 {
		t.Fatalf("no request got 503 queue_full with queue_size 2 and 10 requests at once")
	}
	f := expectFirst(t, g, since, "overload", "queue_full", "no_ready_instance")
	if f.RequestsAffected != 10 {
		t.Errorf("overload counts %d requests affected; want 10", f.RequestsAffected)
	}
}

func TestDetectorAppErrors(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 1, nil)
	for range 5 {
		mustGet(t, c, g.URL+"/status?code=500", 500)
	}
	mustGet(t, c, g.URL+"/", 200)
	f := expectFirst(t, g, since, "app_errors", "/status 500: 5 responses")
	if f.RequestsAffected != 5 {
		t.Errorf("app_errors counts %d requests; want 5", f.RequestsAffected)
	}
}

func killPID(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
