package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// load runs workers until stop, each calling one() in a loop.
func load(workers int, d time.Duration, one func(worker, i int)) {
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				one(w, i)
			}
		}()
	}
	wg.Wait()
}

// An instance SIGKILLed every ~1.5s under mixed load loses no GET, and a
// POST fails only when the dead instance already had it, with a 502
// upstream_reset that names the exit. Serial, a protocol at a time: its
// load keeps the cores busy, and the kills need the instances to restart
// within the run.
func TestKilledInstanceUnderLoad(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto string) {
		g := startFaultOver(t, proto, 2, nil)
		c := newClient(t, g, 15*time.Second)

		stop := make(chan struct{})
		killerDone := make(chan []int)
		go func() {
			var killed []int
			defer func() { killerDone <- killed }()
			tick := time.NewTicker(1500 * time.Millisecond)
			defer tick.Stop()
			next := 0
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				// Kill one instance only while the other is ready, and
				// alternate, so that each comes back between its kills.
				ids := []string{"web-1", "web-2"}
				pid, state := pidOf(g, ids[next%2])
				_, other := pidOf(g, ids[(next+1)%2])
				if pid == 0 || state != "ready" || other != "ready" {
					continue
				}
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					killed = append(killed, pid)
				}
				next++
			}
		}()
		load(8, 8*time.Second, func(w, i int) {
			if w%2 == 0 {
				c.get("/")
				return
			}
			body := fmt.Sprintf("post %d/%d %s", w, i, strings.Repeat("x", 512))
			r := c.do(req{method: "POST", path: "/echo", body: body})
			if r.err == nil && r.status == 200 && r.body != body {
				t.Errorf("%v: echoed body differs from the %d bytes sent", r, len(body))
			}
		})
		close(stop)
		killed := <-killerDone
		if len(killed) < 2 {
			t.Errorf("only %d kills happened in 8s; the test did not exercise crashes", len(killed))
		}

		var gets, posts, failedPosts int
		attributed := 0
		for _, r := range c.all() {
			if r.method == "GET" {
				gets++
				if r.err != nil || r.status != 200 {
					t.Errorf("GET failed while an instance was killed: %v", r)
				}
				continue
			}
			posts++
			if r.err == nil && r.status == 200 {
				continue
			}
			failedPosts++
			if r.err != nil || r.status != 502 || r.cause != "upstream_reset" {
				t.Errorf("failed POST: %v; want 502 upstream_reset (only a POST the dead instance had may fail)", r)
				continue
			}
			e, ok := accessFor(t, g, r.id)
			if !ok {
				continue // checkCauses reports it
			}
			if !strings.Contains(e.Detail, "killed by SIGKILL") {
				t.Errorf("failed POST %s: access detail %q does not name the exit (killed by SIGKILL)", r.id, e.Detail)
				continue
			}
			attributed++
		}
		checkCauses(t, g, c.all())
		t.Logf("%d kills; %d GETs, %d POSTs, %d failed POSTs (%d attributed to an exit)", len(killed), gets, posts, failedPosts, attributed)

		// Each exit event counts the requests that failed with it.
		var sum int
		ok := waitUntil(3*time.Second, func() bool {
			sum = 0
			for _, e := range g.Events("exit") {
				sum += e.Failed
			}
			return sum >= attributed
		})
		if !ok {
			for _, e := range g.Events("exit") {
				t.Logf("exit event: %s pid %d failed_requests %d: %s", e.Instance, e.PID, e.Failed, e.Detail)
			}
			t.Errorf("exit events count %d failed requests in all, but %d failed POSTs were attributed to an exit", sum, attributed)
		}
	})
}

// The app closes idle keep-alive connections after 1s and says nothing;
// clients that pace requests around 1s see no failure.
func TestKeepAliveRace(t *testing.T) {
	t.Parallel()
	forEachProtocolInParallel(t, func(t *testing.T, proto string) {
		g := startFaultOver(t, proto, 2, nil, "-keepalive-idle", "1s")
		c := newClient(t, g, 10*time.Second)
		load(6, 10*time.Second, func(w, i int) {
			// The point: a request every 0.9-1.1s, racing the app's
			// close of its connections idle for 1s.
			time.Sleep(900*time.Millisecond + rand.N(200*time.Millisecond))
			if (w+i)%2 == 0 {
				c.get("/")
			} else {
				c.do(req{method: "POST", path: "/echo", body: "keep-alive " + strings.Repeat("y", 100)})
			}
		})
		failed, stale := 0, 0
		for _, r := range c.all() {
			if r.err != nil || r.status != 200 {
				failed++
				t.Errorf("request failed in the keep-alive race: %v", r)
			}
		}
		for _, e := range g.Access() {
			for _, rc := range e.RetriedCauses {
				if rc == "stale_connection" {
					stale++
				}
			}
		}
		checkCauses(t, g, c.all())
		t.Logf("%d requests, %d failed, %d retried after stale_connection", len(c.all()), failed, stale)
	})
}

// Every instance killed at once, the app slow to start: requests arriving
// meanwhile are held, then served.
func TestAllInstancesKilledRequestsHeld(t *testing.T) {
	t.Parallel()
	forEachProtocolInParallel(t, func(t *testing.T, proto string) {
		g := startFaultOver(t, proto, 2, func(a *config.App) { a.HoldTimeout = config.Duration(8 * time.Second) }, "-start-delay", "1.5s")
		c := newClient(t, g, 15*time.Second)
		p1, _ := pidOf(g, "web-1")
		p2, _ := pidOf(g, "web-2")
		killAll(t, p1, p2)
		// Arrivals spread over the restart: a worker's first request
		// every 200ms.
		turn := make(chan struct{})
		go func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for range 5 {
				<-tick.C
				turn <- struct{}{}
			}
		}()
		load(6, 1500*time.Millisecond, func(w, i int) {
			if i == 0 && w > 0 {
				<-turn
			}
			if w%2 == 0 {
				c.get("/")
			} else {
				c.do(req{method: "POST", path: "/echo", body: "held"})
			}
		})
		held := 0
		for _, r := range c.all() {
			if r.err != nil || r.status != 200 {
				t.Errorf("request after all instances died: %v; want it held until an instance is ready", r)
			}
			if r.duration >= time.Second {
				held++
			}
		}
		if held == 0 {
			t.Errorf("no request took 1s or more; were they held at all? (%d requests)", len(c.all()))
		}
		checkCauses(t, g, c.all())
		t.Logf("%d requests, %d held ≥1s", len(c.all()), held)
	})
}

// A handler slower than request_timeout gets a 504 upstream_timeout after
// about request_timeout.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	forEachProtocolInParallel(t, func(t *testing.T, proto string) {
		g := startFaultOver(t, proto, 1, func(a *config.App) { a.RequestTimeout = config.Duration(time.Second) })
		c := newClient(t, g, 10*time.Second)
		r := c.get("/sleep?d=3s")
		if r.status != http.StatusGatewayTimeout || r.cause != "upstream_timeout" {
			t.Errorf("%v; want 504 upstream_timeout", r)
		}
		if r.duration < 900*time.Millisecond || r.duration > 2500*time.Millisecond {
			t.Errorf("504 after %v; want about request_timeout 1s", r.duration)
		}
		if e, ok := accessFor(t, g, r.id); ok && e.Attempts != 1 {
			t.Errorf("a timed-out request was tried %d times; upstream_timeout is never retried", e.Attempts)
		}
		checkCauses(t, g, c.all())
	})
}

// A retry waits for an instance only as long as the request has left:
// when the only instance is killed from outside under a GET (which is
// then held for a replacement) and restarts slowly, the request ends near
// request_timeout with 503 no_ready_instance, not with a 504 that blames
// the app once the restart is done.
func TestRetryHoldBoundedByRequestTimeout(t *testing.T) {
	t.Parallel()
	g := startFault(t, 1, func(a *config.App) {
		a.RequestTimeout = config.Duration(time.Second)
		a.HoldTimeout = config.Duration(10 * time.Second)
		a.Command = append(a.Command, "-start-delay", "3s")
		a.StartTimeout = config.Duration(20 * time.Second)
	})
	c := newClient(t, g, 15*time.Second)
	pid, _ := pidOf(g, "web-1")
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		// Once the GET is at the app (its sleep outlasts the kill).
		waitUntil(5*time.Second, func() bool { return g.Srv.Supervisor().App("web").Pool().Inflight() != 0 })
		syscall.Kill(pid, syscall.SIGKILL)
	}()
	defer func() { <-killed }()
	r := c.get("/sleep?d=5s")
	if r.status != http.StatusServiceUnavailable || r.cause != "no_ready_instance" {
		t.Errorf("%v; want 503 no_ready_instance", r)
	}
	if r.duration > 2500*time.Millisecond {
		t.Errorf("answered after %v; want about request_timeout 1s, not the 3s restart", r.duration)
	}
	checkCauses(t, g, c.all())
}

// An app that ignores PORT never becomes ready; requests end after
// hold_timeout with a 503 that says what gatehouse saw.
func TestIgnoresPort(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1, "-ignore-port")
	app.HoldTimeout = config.Duration(time.Second)
	app.StartTimeout = config.Duration(2 * time.Minute)
	g := harness.Start(t, cfg)
	testutil.WaitFor(t, 10*time.Second, "a probe of web-1 refused", func() bool {
		in := g.Instances("web")
		return len(in) == 1 && in[0].PID != 0 && strings.Contains(in[0].Health, "connection refused on port")
	})
	c := newClient(t, g, 10*time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := map[string]string{}
			if i%2 == 1 {
				h["Accept"] = "application/json"
			}
			c.do(req{path: "/", header: h})
		}()
	}
	wg.Wait()
	for _, r := range c.all() {
		if r.status != 503 || r.cause != "no_ready_instance" {
			t.Errorf("%v; want 503 no_ready_instance", r)
			continue
		}
		if r.duration < 900*time.Millisecond || r.duration > 3*time.Second {
			t.Errorf("%v: answered after %v; want about hold_timeout 1s", r, r.duration)
		}
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%v: 503 without Retry-After", r)
		}
		text := r.body
		if strings.Contains(r.header.Get("Content-Type"), "application/json") {
			var body struct {
				Cause, Instance, Detail, Hint string
				RequestID                     string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Errorf("%v: JSON body does not parse: %v", r, err)
				continue
			}
			if body.Cause != "no_ready_instance" || body.RequestID != r.id || body.Hint == "" || (body.Instance == "" && body.Detail == "") {
				t.Errorf("JSON error body %+v; want cause, request_id %q, hint, and instance or detail", body, r.id)
			}
			text = body.Detail
		} else if r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%v: Content-Type %q without Accept: want text/plain", r, r.header.Get("Content-Type"))
		}
		if !strings.Contains(text, "connection refused on port") || !strings.Contains(text, "web-1") {
			t.Errorf("503 body does not say what gatehouse saw (want the instance id and \"connection refused on port\"): %q", text)
		}
	}
	checkCauses(t, g, c.all())
}

// The cases of the cause table (docs/diagnose.md) that the tests above do not reach.

func TestBadResponse(t *testing.T) {
	t.Parallel()
	g := startFault(t, 2, nil)
	c := newClient(t, g, 10*time.Second)
	r := c.get("/garbage")
	if r.status != 502 || r.cause != "bad_response" {
		t.Errorf("%v; want 502 bad_response", r)
	}
	if e, ok := accessFor(t, g, r.id); ok && (e.Attempts != 1 || len(e.RetriedCauses) != 0) {
		t.Errorf("bad_response tried %d times (retried %v); it is never retried", e.Attempts, e.RetriedCauses)
	}
	checkCauses(t, g, c.all())
}

func TestResponseTruncated(t *testing.T) {
	t.Parallel()
	g := startFault(t, 1, nil)
	c := newClient(t, g, 10*time.Second)
	r := c.get("/truncate")
	if r.err == nil {
		t.Errorf("%v: the client got a complete response; the body was cut short", r)
	}
	if !waitUntil(5*time.Second, func() bool {
		for _, e := range g.Access() {
			if e.RequestID == r.id {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no access entry for %s", r.id)
	}
	e, _ := accessFor(t, g, r.id)
	if e.Cause != "response_truncated" || e.Status != 200 {
		t.Errorf("access entry status %d cause %q; want 200 response_truncated", e.Status, e.Cause)
	}
}

func TestClientClosed(t *testing.T) {
	t.Parallel()
	forEachProtocolInParallel(t, func(t *testing.T, proto string) {
		g := startFaultOver(t, proto, 1, nil)
		c := newClient(t, g, 10*time.Second)
		// The connection first (over TLS, a handshake a busy machine may
		// take longer than the request's half second over): the request
		// itself must reach the gateway before its client gives up.
		if r := c.get("/"); r.status != 200 {
			t.Fatalf("before the hanging request: %v", r)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		r := c.do(req{path: "/hang", ctx: ctx})
		if r.err == nil {
			t.Fatalf("%v: want the client's own timeout", r)
		}
		e, ok := accessFor(t, g, r.id)
		if !ok {
			t.Fatalf("no access entry for %s", r.id)
		}
		if e.Status != 499 || e.Cause != "client_closed" {
			t.Errorf("access entry status %d cause %q; want 499 client_closed", e.Status, e.Cause)
		}
		// The gateway is done with the request once the pool no longer
		// counts it: an ejection for it would have come before.
		p := g.Srv.Supervisor().App("web").Pool()
		testutil.WaitFor(t, 5*time.Second, "the gateway done with the request", func() bool { return p.Inflight() == 0 })
		for _, m := range p.Members() {
			if m.Ejected() {
				t.Errorf("%s ejected after a client went away", m.ID)
			}
		}
		if r := c.get("/"); r.status != 200 {
			t.Errorf("after a client went away: %v", r)
		}
	})
}

func TestAppError(t *testing.T) {
	t.Parallel()
	g := startFault(t, 2, nil)
	c := newClient(t, g, 10*time.Second)
	r := c.get("/status?code=500")
	if r.status != 500 || r.cause != "" || !strings.Contains(r.body, "status 500") {
		t.Errorf("%v; want the app's own 500, without Gatehouse-Cause", r)
	}
	e, ok := accessFor(t, g, r.id)
	if ok && (e.Cause != "app_error" || e.Attempts != 1) {
		t.Errorf("access entry cause %q attempts %d; want app_error, 1 attempt", e.Cause, e.Attempts)
	}
	for _, m := range g.Srv.Supervisor().App("web").Pool().Members() {
		if m.Ejected() {
			t.Errorf("%s ejected after an app 500", m.ID)
		}
	}
	checkCauses(t, g, c.all())
}

func TestNoRoute(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1)
	app.Routes = config.PlainRoutes("/api/")
	g := harness.Start(t, cfg)
	waitReady(t, g, 1)
	c := newClient(t, g, 10*time.Second)
	r := c.get("/other")
	if r.status != 404 || r.cause != "no_route" {
		t.Errorf("%v; want 404 no_route", r)
	}
	if e, ok := accessFor(t, g, r.id); ok && e.Cause != "no_route" {
		t.Errorf("access entry cause %q; want no_route", e.Cause)
	}
	if r := c.get("/api/x"); r.status != 404 || r.cause != "" {
		t.Errorf("%v; want the app's own 404 (routed)", r)
	}
	checkCauses(t, g, c.all())
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1, "-no-listen")
	app.QueueSize = 2
	app.HoldTimeout = config.Duration(2 * time.Second)
	g := harness.Start(t, cfg)
	c := newClient(t, g, 10*time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.get("/") }()
	}
	wg.Wait()
	full, noReady := 0, 0
	for _, r := range c.all() {
		switch {
		case r.status == 503 && r.cause == "queue_full":
			full++
			if r.header.Get("Retry-After") == "" {
				t.Errorf("%v: queue_full without Retry-After", r)
			}
			if r.duration > time.Second {
				t.Errorf("%v: queue_full should answer at once", r)
			}
		case r.status == 503 && r.cause == "no_ready_instance":
			noReady++
		default:
			t.Errorf("%v; want 503 queue_full or no_ready_instance", r)
		}
	}
	if full < 3 || noReady > 2 {
		t.Errorf("%d queue_full, %d no_ready_instance; want 3 turned away (queue_size 2)", full, noReady)
	}
	checkCauses(t, g, c.all())
}
