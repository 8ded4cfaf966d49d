package server_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// probe is one answer of /livez or /readyz.
type probe struct {
	Status int
	Body   string
}

func getProbe(t *testing.T, c *http.Client, url string, host string) probe {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return probe{resp.StatusCode, string(b)}
}

// /readyz passes only once every app has its min_ready ready instances,
// fails while gatehouse is drained (gatehouse drain) and passes again
// after undrain; /livez passes throughout. On the admin listener both
// answer without the token and whatever the Host (a kubelet probes the
// pod's address); the rest of the API still wants the token.
func TestReadyzFollowsInstancesAndDrain(t *testing.T) {
	t.Parallel()
	cfg, _ := harness.FaultApp(t, 1, "-start-delay", "1500ms")
	cfg.AdminToken = "s3cret"
	g := harness.Start(t, cfg)
	c := client(t, 10*time.Second)
	const podHost = "10.1.2.3:9901"
	ok, notReady, draining := probe{200, "ok\n"}, probe{503, "not ready\n"}, probe{503, "draining\n"}

	if got := getProbe(t, c, g.AdminURL+"/readyz", podHost); got != notReady {
		t.Errorf("/readyz while the instance starts = %+v, want %+v", got, notReady)
	}
	if got := getProbe(t, c, g.AdminURL+"/livez", podHost); got != ok {
		t.Errorf("/livez while the instance starts = %+v, want %+v", got, ok)
	}
	g.WaitReady(t, "web", 1, 20*time.Second)
	testutil.WaitFor(t, 5*time.Second, "/readyz to pass", func() bool {
		return getProbe(t, c, g.AdminURL+"/readyz", podHost) == ok
	})
	if st := getProbe(t, c, g.AdminURL+"/api/status", podHost).Status; st != http.StatusUnauthorized {
		t.Errorf("/api/status without the token: %d, want 401", st)
	}

	progress := func(string, ...any) {}
	if err := g.Srv.Drain(context.Background(), true, progress); err != nil {
		t.Fatal(err)
	}
	if got := getProbe(t, c, g.AdminURL+"/readyz", podHost); got != draining {
		t.Errorf("/readyz after drain = %+v, want %+v", got, draining)
	}
	// Drained, requests are still served, each on a connection that
	// closes after it.
	resp, err := c.Get(g.URL + "/pid")
	wantClosingAnswer(t, "a request while drained", resp, err)
	if err := g.Srv.Drain(context.Background(), false, progress); err != nil {
		t.Fatal(err)
	}
	if got := getProbe(t, c, g.AdminURL+"/readyz", podHost); got != ok {
		t.Errorf("/readyz after undrain = %+v, want %+v", got, ok)
	}
	resp, err = c.Get(g.URL + "/pid")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Errorf("after undrain, connections still close after each answer")
	}
	var got []string
	for _, e := range g.Events(telemetry.EventNodeDrain, telemetry.EventNodeUndrain) {
		got = append(got, e.Type)
	}
	if diff := cmp.Diff([]string{telemetry.EventNodeDrain, telemetry.EventNodeUndrain}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// min_ready says how many ready instances /readyz needs, capped at the
// instances the app is meant to run; an external pool needs none unless it
// says so.
func TestReadyzMinReady(t *testing.T) {
	t.Parallel()
	intp := func(n int) *int { return &n }
	for _, tc := range []struct {
		name      string
		instances int
		minReady  *int
		// ready: whether /readyz passes with every instance still
		// starting (5 s start delay) and, after a scale to 0, with none.
		whileStarting, scaledToZero int
	}{
		{"default needs one", 2, nil, 503, 200},
		{"zero never holds back", 2, intp(0), 200, 200},
		{"two of two", 2, intp(2), 503, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, app := harness.FaultApp(t, tc.instances, "-start-delay", "5s")
			app.MinReady = tc.minReady
			g := harness.Start(t, cfg)
			c := client(t, 10*time.Second)
			if got := getProbe(t, c, g.AdminURL+"/readyz", "").Status; got != tc.whileStarting {
				t.Errorf("/readyz while starting: %d, want %d", got, tc.whileStarting)
			}
			a := g.Srv.Supervisor().App("web")
			if err := a.Scale(context.Background(), 0, func(string, ...any) {}); err != nil {
				t.Fatal(err)
			}
			if got := getProbe(t, c, g.AdminURL+"/readyz", "").Status; got != tc.scaledToZero {
				t.Errorf("/readyz scaled to 0: %d, want %d", got, tc.scaledToZero)
			}
		})
	}
}

// With health_prefix, /livez and /readyz are answered on the public
// listener under it, by gatehouse, ahead of the app's routes and without
// an access-log line; other paths under it are the app's.
func TestHealthPrefixOnThePublicListener(t *testing.T) {
	t.Parallel()
	g := serving(t, 1, func(cfg *config.Config, _ *config.App) { cfg.HealthPrefix = "/.gatehouse" })
	// One connection: what it carried before a later request's access-log
	// line was logged before that line (the front logs a request before
	// it reads the next).
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	t.Cleanup(c.CloseIdleConnections)
	testutil.WaitFor(t, 5*time.Second, "/readyz to pass", func() bool {
		return getProbe(t, c, g.URL+"/.gatehouse/readyz", "").Status == 200
	})
	for _, tc := range []struct {
		method, path string
		want         int
		fromApp      bool
	}{
		{"GET", "/.gatehouse/livez", 200, false},
		{"HEAD", "/.gatehouse/readyz", 200, false},
		{"POST", "/.gatehouse/readyz", 405, false},
		{"GET", "/.gatehouse/other", 404, true},
		{"GET", "/livez", 404, true},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := len(g.Access())
			req, _ := http.NewRequest(tc.method, g.URL+tc.path, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			// The app's answers are logged (after the response: wait).
			if tc.fromApp {
				testutil.WaitFor(t, 5*time.Second, "the access-log line", func() bool { return len(g.Access()) > before })
				return
			}
			// A probe is not: once a request after it on its connection
			// is logged, that must be the only line since.
			const after = "/pid"
			if st, _, _ := get(t, c, g.URL+after); st != 200 {
				t.Fatalf("GET %s: %d", after, st)
			}
			testutil.WaitFor(t, 5*time.Second, "the access-log line of the request after the probe", func() bool {
				return slices.ContainsFunc(g.Access()[before:], func(e telemetry.AccessEntry) bool { return e.Path == after })
			})
			if since := g.Access()[before:]; len(since) != 1 {
				t.Errorf("a probe was logged as a request: %+v", since)
			}
		})
	}
}

// wantClosingAnswer checks an answer of a drained gatehouse: a 200 that
// says Connection: close. It reads the body whole.
func wantClosingAnswer(t *testing.T, what string, resp *http.Response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("%s: %d, Connection: close %v; want 200 and close", what, resp.StatusCode, resp.Close)
	}
}

// In process (the gatehouse command's SIGTERM is
// TestSIGTERMWithShutdownDelay): a stop with shutdown_delay fails /readyz
// at once, serves on for the delay, then stops accepting. Not parallel:
// it times how soon /readyz fails.
func TestShutdownDelayServesOnThenStops(t *testing.T) {
	g := serving(t, 1, func(cfg *config.Config, _ *config.App) { cfg.ShutdownDelay = config.Duration(time.Second) })
	c := client(t, 5*time.Second)
	stopped := make(chan struct{})
	start := time.Now()
	go func() { defer close(stopped); g.Stop(t) }()
	testutil.WaitFor(t, time.Second, "/readyz to fail", func() bool {
		return getProbe(t, c, g.AdminURL+"/readyz", "").Status == 503
	})
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("/readyz failed %v after the stop began, want within 100 ms", took)
	}
	served := 0
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for ; time.Since(start) < 750*time.Millisecond; <-pace.C {
		resp, err := c.Get(g.URL + "/pid")
		if err != nil {
			t.Fatalf("a request %v into the shutdown delay failed: %v", time.Since(start), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a request %v into the shutdown delay: %d", time.Since(start), resp.StatusCode)
		}
		served++
	}
	<-stopped
	if took := time.Since(start); took < time.Second {
		t.Errorf("gatehouse stopped %v after the stop began, before its shutdown_delay of 1s", took)
	}
	ev := g.Events(telemetry.EventShutdown)
	if len(ev) != 1 || !strings.Contains(ev[0].Detail, "shutdown_delay 1s") {
		t.Errorf("shutdown events = %+v, want one naming shutdown_delay 1s", ev)
	}
	t.Logf("%d requests served during the delay", served)
}

// An idle-unloaded app needs no ready instance, and waking it (a request
// arrived) must not take the whole node out of rotation for as long as
// the app starts: the request that woke it is held, the other apps serve
// on, and a load balancer that followed /readyz would cut them all off.
func TestReadyzPassesWhileAnIdleAppWakes(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1, "-start-delay", "1500ms")
	app.IdleTimeout = config.Duration(time.Second)
	app.HoldTimeout = config.Duration(20 * time.Second)
	g := harness.Start(t, cfg)
	c := client(t, 20*time.Second)
	pool := g.Srv.Supervisor().App("web").Pool()
	testutil.WaitFor(t, 20*time.Second, "the idle unload", pool.Unloaded)
	if got := getProbe(t, c, g.AdminURL+"/readyz", "").Status; got != 200 {
		t.Fatalf("/readyz with the app unloaded: %d, want 200", got)
	}
	woke := make(chan error, 1)
	go func() {
		resp, err := c.Get(g.URL + "/pid")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		woke <- err
	}()
	testutil.WaitFor(t, 10*time.Second, "the wake", func() bool { return !pool.Unloaded() })
	// Throughout the wake, until the request that woke the app is
	// answered, /readyz passes.
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	var err error
	for waking := true; waking; {
		if got := getProbe(t, c, g.AdminURL+"/readyz", ""); got.Status != 200 {
			t.Fatalf("/readyz while the idle app wakes = %+v, want 200", got)
		}
		select {
		case err = <-woke:
			waking = false
		case <-pace.C:
		}
	}
	if err != nil {
		t.Fatalf("the request that woke the app: %v", err)
	}
	if got := getProbe(t, c, g.AdminURL+"/readyz", "").Status; got != 200 {
		t.Errorf("/readyz once the app woke: %d, want 200", got)
	}
}

// An external pool holds readiness back only when it says so, and then by
// its ready members, not capped at how many it has: an edge whose one
// upstream refuses connections is not ready with min_ready 1.
func TestReadyzExternalPool(t *testing.T) {
	t.Parallel()
	one := 1
	for _, tc := range []struct {
		name     string
		minReady *int
		want     int
	}{
		{"default needs none", nil, 200},
		{"min_ready 1 with no member up", &one, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, _ := harness.FaultApp(t, 1)
			edge := config.NewApp("web")
			edge.Upstreams = []string{testutil.ClosedAddr(t)}
			edge.Routes = config.PlainRoutes("/")
			edge.MinReady = tc.minReady
			edge.Health.Interval = config.Duration(200 * time.Millisecond)
			cfg.Apps = map[string]*config.App{"web": edge}
			g := harness.Start(t, cfg)
			c := client(t, 5*time.Second)
			testutil.WaitFor(t, 5*time.Second, "the member to be found unhealthy", func() bool {
				in := g.Instances("web")
				return len(in) == 1 && in[0].State == "unhealthy"
			})
			if got := getProbe(t, c, g.AdminURL+"/readyz", "").Status; got != tc.want {
				t.Errorf("/readyz = %d, want %d", got, tc.want)
			}
		})
	}
}

// Drained, gatehouse tells its HTTP/2 clients to go away (GOAWAY): a
// client's next request opens a new connection, which a load balancer in
// front would send elsewhere. The request in between is served.
func TestDrainSendsHTTP2ClientsAway(t *testing.T) {
	t.Parallel()
	var roots *x509.CertPool
	g := serving(t, 1, func(cfg *config.Config, _ *config.App) { roots = harness.TLS(t, cfg) })
	c := harness.H2Client(roots, 10*time.Second)
	defer c.CloseIdleConnections()
	reused := func() bool {
		t.Helper()
		var info httptrace.GotConnInfo
		req, _ := http.NewRequest(http.MethodGet, g.SecureURL+"/pid", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { info = i },
		}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET over HTTP/2: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("GET: %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
		}
		return info.Reused
	}
	reused()
	if !reused() {
		t.Fatalf("the client did not keep its HTTP/2 connection before the drain")
	}
	if err := g.Srv.Drain(context.Background(), true, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	// The GOAWAY reaches the client asynchronously: its next request
	// either sees it (a new connection) or races it; the one after must
	// be on a new connection.
	testutil.WaitFor(t, 5*time.Second, "a request on a new connection after the drain", func() bool { return !reused() })
	if !reused() {
		t.Errorf("the new connection was not kept: HTTP/2 clients should stay on the new one")
	}
}

// Drained, the front answers a pipelined pair of requests with one
// answer that says Connection: close, then closes: the second request is
// left for the client to send again, on a new connection (the raw bytes
// of lame-duck mode on the HTTP/1 engine).
func TestDrainedAnswerClosesPipelinedConnection(t *testing.T) {
	t.Parallel()
	g := serving(t, 1, nil)
	if err := g.Srv.Drain(context.Background(), true, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	conn := dial(t, g.Srv.Addr())
	req := "GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(conn, req+req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	wantClosingAnswer(t, "first answer", resp, err)
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("after the closing answer the connection carried %q; want nothing (closed)", rest)
	}
}
