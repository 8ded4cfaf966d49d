package gateway_test

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

func TestMain(m *testing.M) {
	flag.Parse()
	testutil.WaitingParallel(parallelTests())
	goleak.VerifyTestMain(m, goleak.Cleanup(testutil.ExitRemovingBinaries))
}

// parallelTests is how many parallel tests run at once (unless
// -parallel is given): they spend their time waiting on app processes,
// timeouts and sockets, not on a core. Under the race detector, which
// makes each of them costlier, fewer. The tests that load the CPU, or
// read what the whole process holds (goroutines, allocations, open
// files), stay serial, and so never run beside a parallel one.
func parallelTests() int {
	if raceEnabled {
		return max(4, 2*runtime.GOMAXPROCS(0))
	}
	return max(8, 4*runtime.GOMAXPROCS(0))
}

// parallelUnlessRace is t.Parallel but under the race detector: for a
// test that keeps the CPU busy within time bounds, which hold beside
// other tests in a plain run but not when the race detector makes every
// test several times costlier.
func parallelUnlessRace(t *testing.T) {
	if !raceEnabled {
		t.Parallel()
	}
}

// result is what a client saw of one request.
type result struct {
	id       string
	method   string
	path     string
	status   int
	cause    string // Gatehouse-Cause header
	header   http.Header
	body     string
	err      error
	start    time.Time
	duration time.Duration
}

func (r result) String() string {
	s := fmt.Sprintf("%s %s [%s] → ", r.method, r.path, r.id)
	if r.err != nil {
		return s + "error: " + r.err.Error()
	}
	return fmt.Sprintf("%s%d %s in %v: %.200q", s, r.status, r.cause, r.duration.Round(time.Millisecond), r.body)
}

// client sends requests to one gatehouse and keeps every result, so that
// checkCauses can cross-check them with the access log.
type client struct {
	t    testing.TB
	g    *harness.Gatehouse
	http *http.Client
	base string // the gateway's URL: plain HTTP/1.1, or HTTPS with HTTP/2
	name string
	n    atomic.Int64

	mu      sync.Mutex
	results []result
}

func newClient(t testing.TB, g *harness.Gatehouse, timeout time.Duration) *client {
	c := &client{t: t, g: g, http: harness.Client(timeout), base: g.URL, name: strings.ReplaceAll(t.Name(), "/", "-")}
	if g.H2Roots != nil {
		c.http, c.base = harness.H2Client(g.H2Roots, timeout), g.SecureURL
	}
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

// req describes one request; id "" gets a unique X-Request-Id so the
// access entry can be found, noID sends none.
type req struct {
	method string
	path   string
	body   string
	header map[string]string
	noID   bool
	ctx    context.Context
	// bodyReader, if set, is sent instead of body (unknown length).
	bodyReader io.Reader
}

func (c *client) get(path string) result { return c.do(req{method: "GET", path: path}) }

func (c *client) do(q req) result {
	if q.method == "" {
		q.method = "GET"
	}
	if q.ctx == nil {
		q.ctx = context.Background()
	}
	var body io.Reader
	if q.bodyReader != nil {
		body = q.bodyReader
	} else if q.body != "" {
		body = strings.NewReader(q.body)
	}
	hr, err := http.NewRequestWithContext(q.ctx, q.method, c.base+q.path, body)
	if err != nil {
		c.t.Errorf("new request: %v", err)
		return result{err: err}
	}
	r := result{method: q.method, path: q.path}
	if !q.noID {
		r.id = fmt.Sprintf("%s-%d", c.name, c.n.Add(1))
		hr.Header.Set("X-Request-Id", r.id)
	}
	for k, v := range q.header {
		hr.Header.Set(k, v)
	}
	r.start = time.Now()
	resp, err := c.http.Do(hr)
	if err != nil {
		r.err = err
		r.duration = time.Since(r.start)
		c.record(r)
		return r
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.duration = time.Since(r.start)
	r.status, r.header, r.body, r.err = resp.StatusCode, resp.Header, string(b), err
	if c.g.H2Roots != nil && resp.ProtoMajor != 2 {
		c.t.Errorf("%s %s answered in %s; the test is of HTTP/2", q.method, q.path, resp.Proto)
	}
	r.cause = resp.Header.Get("Gatehouse-Cause")
	if r.id == "" {
		r.id = resp.Header.Get("X-Request-Id")
	}
	c.record(r)
	return r
}

func (c *client) record(r result) {
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
}

func (c *client) all() []result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]result(nil), c.results...)
}

// accessFor waits for the access entry of request id: up to 15 s, past
// the 11 s that the entry of a request cut off by a dying process may
// wait for its exit on a busy machine (exitNoteWait, exitNoteDyingWait).
func accessFor(t testing.TB, g *harness.Gatehouse, id string) (telemetry.AccessEntry, bool) {
	t.Helper()
	var found telemetry.AccessEntry
	ok := waitUntil(15*time.Second, func() bool {
		for _, e := range g.Access() {
			if e.RequestID == id {
				found = e
				return true
			}
		}
		return false
	})
	return found, ok
}

// waitUntil polls cond until it holds, and reports whether it did
// within d. Unlike testutil.WaitFor it leaves failing to the caller, and
// may run on any goroutine.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// checkCauses holds every test to the rule on causes: every status
// >= 500 that gatehouse produced carries Gatehouse-Cause, an error page
// carries the cause's status, and the access log names the same cause as
// the header. A 5xx without the header must be the app's own (app_error).
func checkCauses(t testing.TB, g *harness.Gatehouse, results []result) {
	t.Helper()
	byID := map[string]telemetry.AccessEntry{}
	for _, e := range g.Access() {
		byID[e.RequestID] = e
	}
	for _, r := range results {
		if r.err != nil || (r.status < 500 && r.cause == "") {
			continue
		}
		e, ok := byID[r.id]
		if !ok {
			if e, ok = accessFor(t, g, r.id); !ok {
				t.Errorf("%v: no access entry with request_id %q", r, r.id)
				continue
			}
		}
		switch {
		case r.cause != "":
			if e.Cause != r.cause {
				t.Errorf("%v: Gatehouse-Cause %q but the access log says cause %q", r, r.cause, e.Cause)
			}
			if e.Status != r.status {
				t.Errorf("%v: status %d but the access log says %d", r, r.status, e.Status)
			}
			if r.header.Get("X-Request-Id") != r.id {
				t.Errorf("%v: error page carries X-Request-Id %q", r, r.header.Get("X-Request-Id"))
			}
		case e.Cause != "app_error":
			t.Errorf("%v: a %d without Gatehouse-Cause; access log: cause %q detail %q", r, r.status, e.Cause, e.Detail)
		}
	}
}

// pidOf returns the pid and state of instance id, as the pool (what the
// gateway routes by) has them. (harness.Instances goes through the
// supervisor's Status, which another change is reworking.)
func pidOf(g *harness.Gatehouse, id string) (int, string) {
	for _, m := range g.Srv.Supervisor().App("web").Pool().Members() {
		if m.ID == id {
			return m.PID(), m.State().String()
		}
	}
	return 0, ""
}

// waitReady waits for n routable members of web.
func waitReady(t testing.TB, g *harness.Gatehouse, n int) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("%d ready instances", n), func() bool {
		ready := 0
		for _, m := range g.Srv.Supervisor().App("web").Pool().Members() {
			if m.Routable() {
				ready++
			}
		}
		return ready == n
	})
}

// killAll SIGKILLs the given pids and waits until they are gone.
func killAll(t testing.TB, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("pids %v to die", pids), func() bool {
		for _, pid := range pids {
			if testutil.ProcessAlive(pid) {
				return false
			}
		}
		return true
	})
}

// startFault runs the fault app with n instances and args and waits for
// them to be ready; adjust, if set, changes the app's config first.
func startFault(t testing.TB, n int, adjust func(*config.App), args ...string) *harness.Gatehouse {
	t.Helper()
	return startFaultOver(t, "http/1.1", n, adjust, args...)
}

// The protocols clients speak in the fault tests: HTTP/1.1 to the plain
// listener, and HTTP/2 over TLS to the HTTPS one. gatehouse speaks
// HTTP/1.1 to the app either way, and every failure must look the same.
var protocols = []string{"http/1.1", "h2"}

func forEachProtocol(t *testing.T, f func(t *testing.T, proto string)) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}

// forEachProtocolInParallel is forEachProtocol with the protocols' runs
// at once (each with its own gatehouse): for tests that mostly wait.
func forEachProtocolInParallel(t *testing.T, f func(t *testing.T, proto string)) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) { t.Parallel(); f(t, p) })
	}
}

// startFaultOver is startFault for clients speaking proto: with "h2" the
// gatehouse gets an HTTPS listener, and newClient's clients use it.
func startFaultOver(t testing.TB, proto string, n int, adjust func(*config.App), args ...string) *harness.Gatehouse {
	t.Helper()
	cfg, app := harness.FaultApp(t, n, args...)
	if adjust != nil {
		adjust(app)
	}
	var roots *x509.CertPool
	switch proto {
	case "h2":
		roots = harness.TLS(t, cfg)
	case "h2c":
		cfg.H2C = true // the plain listener takes HTTP/2 with prior knowledge too
	}
	g := harness.Start(t, cfg)
	g.H2Roots = roots
	waitReady(t, g, n)
	return g
}
