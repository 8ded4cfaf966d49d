package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Zero config: `gatehouse run -- CMD` runs CMD as app "web" with a PORT of
// its own and serves it through the gateway.
func TestRunZeroConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	g := f.launch(t, nil, f.real, "run", "--listen", f.listen, "--admin", f.admin, "--", f.fault)
	dir, listen := f.dir, f.listen
	c := httpClient(t, 5*time.Second)
	base := "http://" + listen

	var body string
	testutil.WaitFor(t, 15*time.Second, "GET / through the gateway", func() bool {
		select {
		case <-g.done:
			t.Fatalf("gatehouse exited early\nstderr:\n%s", g.stderr)
		default:
		}
		resp, err := c.Get(base + "/")
		if err != nil {
			return false
		}
		body = readBody(t, resp)
		return resp.StatusCode == 200
	})
	var id string
	var pid int
	if _, err := fmt.Sscanf(body, "%s %d", &id, &pid); err != nil || id != "web-1" || pid <= 0 {
		t.Fatalf("GET / = %q, want \"web-1 PID\"", body)
	}
	g.track([]int{pid}, nil)

	env := func(key string) string {
		resp, err := c.Get(base + "/env?key=" + key)
		if err != nil {
			t.Fatal(err)
		}
		return readBody(t, resp)
	}
	port, err := strconv.Atoi(env("PORT"))
	_, listenPort, _ := net.SplitHostPort(listen)
	if err != nil || port <= 0 || strconv.Itoa(port) == listenPort {
		t.Errorf("instance PORT = %q; want a port of its own, not the gateway's %s", env("PORT"), listenPort)
	}
	if got := env("WEBSITES_PORT"); got != strconv.Itoa(port) {
		t.Errorf("WEBSITES_PORT = %q, want %d", got, port)
	}
	if got := env("GATEHOUSE_APP"); got != "web" {
		t.Errorf("GATEHOUSE_APP = %q, want web", got)
	}

	f.stop(t, 15*time.Second)
	testutil.WaitFor(t, 2*time.Second, "the app process to be gone", func() bool { return !testutil.ProcessAlive(pid) })
	// The default data_dir is ./.gatehouse of the working directory.
	if _, err := os.Stat(filepath.Join(dir, ".gatehouse", "access.log")); err != nil {
		t.Errorf("no access log in the default data_dir: %v", err)
	}
}

// Against a real gatehouse: the `run` terminal shows a crash with its restart, and a start_timeout, each
// on one line; `logs` shows recent app output, as text and JSON; names
// complete from the running gatehouse; `logs -f` ends cleanly when
// gatehouse stops.
func TestRunTerminalLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeApps(t, f.webApp(1, nil, "1s", "2s")+fmt.Sprintf(`  stuck:
    command: [%q, "-no-listen"]
    instances: 1
    routes: ["/stuck/"]
    health: {path: /healthz, interval: 200ms, timeout: 1s}
    start_timeout: 1s
    stop_timeout: 2s
`, f.fault))
	g := f.run(t)
	dir, listen, adminURL := f.dir, f.listen, f.adminURL
	c := httpClient(t, 10*time.Second)
	waitReady(t, c, adminURL, "web", 1, g)
	f.trackInstances()

	// A line the app writes, for `logs`.
	msg := "hello-from-" + time.Now().Format("150405.000")
	resp, err := c.Get("http://" + listen + "/print?msg=" + url.QueryEscape(msg))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)

	// The crash.
	if resp, err := c.Post("http://"+listen+"/crash", "text/plain", nil); err == nil {
		readBody(t, resp)
	}
	crash := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d web-1 exited with code 3 \(last output: "panic: crash requested on /crash"[^\n]*\) — restarting (in \S+|now) \(restart 1\)$`)
	timeout := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d stuck-1 killed: not ready within start_timeout 1s \(last check: [^\n]*\)$`)
	testutil.WaitFor(t, 15*time.Second, "crash+restart and start_timeout lines on the run terminal", func() bool {
		s := g.stderr.String()
		return crash.MatchString(s) && timeout.MatchString(s)
	})
	waitReady(t, c, adminURL, "web", 1, g)
	f.trackInstances()

	// logs (no -f): recent output, text and JSON.
	stdout, stderr, code := gatehouse(t, dir, "logs", "--admin", adminURL, "--app", "web", "--lines", "200")
	if code != 0 || !strings.Contains(stdout, "web-1 | "+msg) || !strings.Contains(stdout, "panic: crash requested") {
		t.Errorf("logs --app web: exit %d, want the app's output %q and its panic\nstdout:\n%s\nstderr:\n%s", code, msg, stdout, stderr)
	}
	stdout, stderr, code = gatehouse(t, dir, "logs", "--admin", adminURL, "--instance", "web-1", "--json", "--since", "1m")
	if code != 0 {
		t.Fatalf("logs --json: exit %d: %s", code, stderr)
	}
	var sawLine bool
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var rec map[string]any
		if err := jsonUnmarshal(l, &rec); err != nil {
			t.Fatalf("logs --json line %q: %v", l, err)
		}
		for _, k := range []string{"time", "app", "instance", "stream", "line"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("logs --json line %q has no %q", l, k)
			}
		}
		if rec["instance"] != "web-1" {
			t.Errorf("logs --instance web-1 --json gave %q", l)
		}
		if rec["line"] == msg && rec["stream"] == "output" && rec["app"] == "web" {
			sawLine = true
		}
	}
	if !sawLine {
		t.Errorf("logs --json has no output line %q:\n%s", msg, stdout)
	}
	stdout, _, _ = gatehouse(t, dir, "logs", "--admin", adminURL, "--app", "web", "--lines", "1")
	if n := strings.Count(stdout, "\n"); n != 1 {
		t.Errorf("logs --lines 1 printed %d lines:\n%s", n, stdout)
	}

	// Completion from the running gatehouse.
	stdout, _, code = gatehouse(t, dir, "__complete", "restart", "--admin", adminURL, "")
	for _, want := range []string{"web\n", "stuck\n", "web-1\n", "stuck-1\n"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("__complete restart: exit %d, want %q among:\n%s", code, want, stdout)
		}
	}
	stdout, _, _ = gatehouse(t, dir, "__complete", "logs", "--admin", adminURL, "--instance", "st")
	if !strings.HasPrefix(stdout, "stuck-1\n:4\n") {
		t.Errorf("__complete logs --instance st = %q, want only stuck-1", stdout)
	}

	// logs -f ends with exit 0 when gatehouse stops.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	follow := exec.CommandContext(ctx, testutil.BuildBinary(t, gatehousePkg), "logs", "-f", "--events", "--admin", adminURL)
	var fout, ferr syncBuffer
	follow.Stdout, follow.Stderr = &fout, &ferr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followDone := make(chan error, 1)
	go func() { followDone <- follow.Wait() }()
	// The stream is open once a line or event comes through it.
	testutil.WaitFor(t, 10*time.Second, "logs -f to follow", func() bool {
		if resp, err := c.Get("http://" + listen + "/print?msg=followed"); err == nil {
			readBody(t, resp)
		}
		return strings.Contains(fout.String(), "followed")
	})
	f.stop(t, 20*time.Second)
	select {
	case err := <-followDone:
		if err != nil || strings.Contains(ferr.String(), "EOF") {
			t.Errorf("logs -f when gatehouse stopped: %v\nstderr:\n%s", err, ferr.String())
		}
		if !strings.Contains(fout.String(), "stop") {
			t.Errorf("logs -f --events did not show the instances' stop events:\n%s", fout.String())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("logs -f still running 10s after gatehouse stopped")
	}
}

// An app that listens on a fixed port instead of its PORT: the run
// terminal says so on one line, with the fix, within seconds rather than
// at start_timeout, and only once however many probes are refused after;
// a held request's 503 says it too.
func TestRunTerminalNamesPortMismatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fixed := testutil.FreePort(t)
	f.writeApps(t, fmt.Sprintf(`apps:
  web:
    command: [%q, "-listen-port", "%d"]
    instances: 1
    routes: ["/"]
    health: {path: /healthz, interval: 200ms, timeout: 1s}
    start_timeout: 230s
    hold_timeout: 2s
    stop_timeout: 2s
`, f.fault, fixed))
	begin := time.Now()
	g := f.run(t)
	c := httpClient(t, 10*time.Second)

	port := 0
	testutil.WaitFor(t, 15*time.Second, "web-1 started", func() bool {
		select {
		case <-g.done:
			t.Fatalf("gatehouse exited early\nstderr:\n%s", g.stderr)
		default:
		}
		st := status(c, f.adminURL)
		if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 || st.Apps[0].Instances[0].PID == 0 {
			return false
		}
		g.track([]int{st.Apps[0].Instances[0].PID}, nil)
		port = st.Apps[0].Instances[0].Port
		return true
	})

	what := fmt.Sprintf("listens on 127.0.0.1:%d, but was given PORT=%d", fixed, port)
	line := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d web-1 port mismatch: ` + regexp.QuoteMeta(what) +
		` — fix: bind to the PORT environment variable \(Go: [^\n]*os\.Getenv\("PORT"\)[^\n]*\) instead of a fixed port[^\n]*$`)
	testutil.WaitFor(t, 15*time.Second, "the port mismatch line on the run terminal", func() bool {
		return line.MatchString(g.stderr.String())
	})
	if took := time.Since(begin); took > 15*time.Second {
		t.Errorf("the port mismatch line came after %v; want it within seconds, long before start_timeout 230s", took)
	}

	// Held for hold_timeout 2s, while probes go on being refused.
	resp, err := c.Get("http://" + f.listen + "/")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Gatehouse-Cause") != "no_ready_instance" {
		t.Errorf("GET / = %d %s; want 503 no_ready_instance", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
	}
	if !strings.Contains(body, what) || !strings.Contains(body, "fix: bind to the PORT environment variable") {
		t.Errorf("503 body does not name the port mismatch (want %q and its fix):\n%s", what, body)
	}
	// The hint, the line a person acts on, is the mismatch and its fix
	// rather than the cause's generic advice.
	if hint, _, _ := strings.Cut(body[strings.Index(body, "\nhint: ")+1:], "\n"); !strings.Contains(hint, what) || !strings.Contains(hint, "fix: bind to the PORT") {
		t.Errorf("503 hint line %q; want the port mismatch and its fix", hint)
	}

	if n := len(line.FindAllString(g.stderr.String(), -1)); n != 1 {
		t.Errorf("the port mismatch is on the run terminal %d times; want once\nstderr:\n%s", n, g.stderr)
	}
	f.stop(t, 15*time.Second)
}

// monotonicUsec is CLOCK_MONOTONIC in µs, as systemd compares it.
func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// Under systemd (NOTIFY_SOCKET set, Type=notify) the real `gatehouse run`
// says READY=1 once its public listener answers, RELOADING=1 with
// MONOTONIC_USEC then READY=1 around a SIGHUP reload, STOPPING=1 on
// SIGTERM, and pings the watchdog meanwhile; its apps inherit none of
// systemd's variables.
func TestRunUnderSystemd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeApps(t, f.webApp(1, nil, "1s", "2s"))
	sd := listenNotify(t, f.dir)
	// What systemd sets for a Type=notify unit with WatchdogSec=1s and
	// socket activation; WATCHDOG_PID unset means whoever reads it.
	g := f.run(t, "NOTIFY_SOCKET="+sd.path, "WATCHDOG_USEC=1000000", "WATCHDOG_PID=",
		"LISTEN_FDS=0", "LISTEN_PID=1", "LISTEN_FDNAMES=none")
	c := httpClient(t, 40*time.Second)

	// READY=1: the public listener answers at once (the request waits
	// for the instance, within hold_timeout).
	if got := sd.next(t, 20*time.Second, "READY=1").text; got != "READY=1\nSTATUS=serving\n" {
		t.Fatalf("first notify datagram %q, want READY=1", got)
	}
	resp, err := c.Get("http://" + f.listen + "/")
	if err != nil {
		t.Fatalf("public listener after READY=1: %v", err)
	}
	readBody(t, resp)
	adminURL := f.adminURL
	waitReady(t, c, adminURL, "web", 1, g)

	// The app's environment, by the pid `gatehouse status --json` gives.
	stdout, stderr, code := gatehouse(t, f.dir, "status", "--json", "--admin", adminURL)
	var st admin.StatusResponse
	if code != 0 || jsonUnmarshal(stdout, &st) != nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 {
		t.Fatalf("status --json: exit %d\n%s\n%s", code, stdout, stderr)
	}
	pid := st.Apps[0].Instances[0].PID
	g.track([]int{pid}, nil)
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]bool{}
	for _, kv := range bytes.Split(environ, []byte{0}) {
		k, _, _ := strings.Cut(string(kv), "=")
		env[k] = true
	}
	if !env["GATEHOUSE_INSTANCE"] {
		t.Fatalf("pid %d's environment has no GATEHOUSE_INSTANCE: not the instance?\n%q", pid, environ)
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
		if env[k] {
			t.Errorf("the app instance (pid %d) inherited %s", pid, k)
		}
	}

	// SIGHUP: RELOADING=1 with the time it was sent, then READY=1 once
	// the instance is replaced.
	before := monotonicUsec(t)
	g.signal(t, syscall.SIGHUP)
	reloading := sd.next(t, 20*time.Second, "RELOADING=1").text
	after := monotonicUsec(t)
	lines := strings.Split(reloading, "\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "MONOTONIC_USEC="); ok {
			if usec, err := strconv.ParseInt(v, 10, 64); err != nil || usec < before || usec > after {
				t.Errorf("MONOTONIC_USEC=%s, want CLOCK_MONOTONIC between %d and %d", v, before, after)
			}
			lines[i] = "MONOTONIC_USEC=NOW"
		}
	}
	if diff := cmp.Diff("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=NOW\n", strings.Join(lines, "\n")); diff != "" {
		t.Errorf("after SIGHUP (-want +got):\n%s", diff)
	}
	if got := sd.next(t, 30*time.Second, "READY=1 after the reload").text; got != "READY=1\nSTATUS=serving\n" {
		t.Errorf("after RELOADING=1: %q, want READY=1", got)
	}
	f.trackInstances()

	// The watchdog has been pinged every 0.5s meanwhile.
	if sd.watchdogs.Load() == 0 {
		t.Errorf("no WATCHDOG=1 with WATCHDOG_USEC=1000000")
	}

	// SIGTERM: STOPPING=1, then a clean exit.
	g.signal(t, syscall.SIGTERM)
	if got := sd.next(t, 20*time.Second, "STOPPING=1").text; got != "STOPPING=1\nSTATUS=stopping: draining requests, then the apps\n" {
		t.Errorf("after SIGTERM: %q, want STOPPING=1", got)
	}
	if code := g.wait(t, 20*time.Second); code != 0 {
		t.Errorf("gatehouse exit %d after SIGTERM, want 0", code)
	}
	// Nothing but a last watchdog ping may follow.
	sd.nothingMore(t)
}

// SIGTERM to gatehouse under load lets every in-flight request finish,
// exits 0, and leaves no process of the app behind, not even a grandchild
// the app forked.
func TestSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := f.dir
	// sh -c "exec ..." keeps the instance's pid; each instance writes its
	// grandchild's pid to its own file.
	f.writeApps(t, fmt.Sprintf(`apps:
  web:
    command: "exec %s -spawn-child -child-pidfile %s/$GATEHOUSE_INSTANCE.child"
    instances: 2
    health: {path: /healthz, interval: 500ms, timeout: 1s}
    start_timeout: 10s
    stop_timeout: 5s
    hold_timeout: 5s
    request_timeout: 10s
`, f.fault, dir))
	g := f.run(t)
	listen, adminURL := f.listen, f.adminURL
	c := httpClient(t, 10*time.Second)
	waitReady(t, c, adminURL, "web", 2, g)

	// Instance pids come from `gatehouse status --json`, as a user would
	// get them.
	stdout, stderr, code := gatehouse(t, dir, "status", "--json", "--admin", adminURL)
	if code != 0 {
		t.Fatalf("status --json exit %d: %s", code, stderr)
	}
	var st admin.StatusResponse
	if err := jsonUnmarshal(stdout, &st); err != nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 2 {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	var pids, children []int
	for _, in := range st.Apps[0].Instances {
		if in.PID <= 0 || !testutil.ProcessAlive(in.PID) {
			t.Fatalf("instance %s pid %d not alive", in.ID, in.PID)
		}
		pids = append(pids, in.PID)
	}
	g.track(pids, nil)
	for _, in := range st.Apps[0].Instances {
		var child int
		testutil.WaitFor(t, 5*time.Second, in.ID+"'s grandchild pid file", func() bool {
			b, err := os.ReadFile(filepath.Join(dir, in.ID+".child"))
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil && child > 0
		})
		if !testutil.ProcessAlive(child) {
			t.Fatalf("grandchild %d of %s is not alive", child, in.ID)
		}
		children = append(children, child)
	}
	g.track(nil, children)

	// Load: concurrent slow requests, all in flight when SIGTERM arrives.
	const n = 12
	type result struct {
		code int
		body string
		err  error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get("http://" + listen + "/sleep?d=1s")
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			results <- result{code: resp.StatusCode, body: string(body), err: err}
		}()
	}
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("%d requests in flight", n), func() bool {
		st := status(c, adminURL)
		var inflight int64
		if st != nil {
			for _, in := range st.Apps[0].Instances {
				inflight += in.Inflight
			}
		}
		return inflight == n
	})
	signalled := time.Now()
	g.signal(t, syscall.SIGTERM)
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil || r.code != 200 || r.body != "slept 1s" {
			t.Errorf("in-flight request: %d %q err %v; want 200 \"slept 1s\"", r.code, r.body, r.err)
		}
	}
	if code := g.wait(t, 15*time.Second); code != 0 {
		t.Errorf("gatehouse exit code %d after SIGTERM, want 0\nstderr:\n%s", code, g.stderr)
	}
	took := time.Since(signalled)
	t.Logf("gatehouse exited %v after SIGTERM", took)
	if took > 8*time.Second {
		t.Errorf("gatehouse took %v to exit after SIGTERM; want well within stop_timeout (5s) + the 1s requests", took)
	}
	// Give init a moment to reap orphans: a zombie counts as gone.
	for _, pid := range append(pids, children...) {
		testutil.WaitFor(t, 2*time.Second, fmt.Sprintf("pid %d to be gone", pid), func() bool { return !testutil.ProcessAlive(pid) })
	}
}

// SIGTERM with shutdown_delay: 2s. /readyz answers 503 within 100 ms;
// requests keep succeeding for the delay; then gatehouse drains and exits
// 0. Clients that stop sending when readiness fails (as a load balancer
// following /readyz does) see no failed request, on keep-alive connections
// throughout.
func TestSIGTERMWithShutdownDelay(t *testing.T) {
	t.Parallel()
	f := newUpgradeFixture(t, nil, "1s", "shutdown_delay: 2s")
	var (
		notReadyAt atomic.Int64 // unix nanos of the first failed /readyz
		termAt     atomic.Int64
		mu         sync.Mutex
		ok         int
		failures   []string
		lastLate   time.Duration // the latest success of the stubborn client
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	send := func(c *http.Client, i int) error {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = c.Get("http://" + f.listen + "/pid")
		} else {
			resp, err = c.Post("http://"+f.listen+"/echo", "text/plain", strings.NewReader(fmt.Sprintf("body %d", i)))
		}
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d (cause %q)", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
		}
		return nil
	}
	var wg sync.WaitGroup
	// The readiness watcher: a load balancer's probe, every 10 ms.
	wg.Go(func() {
		c := httpClient(t, 2*time.Second)
		every := time.NewTicker(10 * time.Millisecond)
		defer every.Stop()
		for i := 0; i < 3000 && notReadyAt.Load() == 0; i++ {
			resp, err := c.Get(f.adminURL + "/readyz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				notReadyAt.Store(time.Now().UnixNano())
				return
			}
			<-every.C
		}
	})
	// Eight clients that stop when readiness fails.
	for w := range 8 {
		wg.Go(func() {
			c := httpClient(t, 10*time.Second)
			for i := w; i < 20000 && notReadyAt.Load() == 0; i += 8 {
				if err := send(c, i); err != nil {
					fail("client %d request %d: %v", w, i, err)
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	// One stubborn client that goes on for 1.8 s after SIGTERM: inside
	// the delay, every request is still served.
	wg.Go(func() {
		c := httpClient(t, 10*time.Second)
		every := time.NewTicker(5 * time.Millisecond)
		defer every.Stop()
		for i := 0; i < 20000; i++ {
			if at := termAt.Load(); at != 0 && time.Since(time.Unix(0, at)) > 1800*time.Millisecond {
				return
			}
			if err := send(c, i); err != nil {
				fail("stubborn client request %d: %v", i, err)
				return
			}
			if at := termAt.Load(); at != 0 {
				mu.Lock()
				lastLate = time.Since(time.Unix(0, at))
				mu.Unlock()
			}
			<-every.C
		}
	})
	testutil.WaitFor(t, 20*time.Second, "some load before SIGTERM", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ok >= 200
	})
	termAt.Store(time.Now().UnixNano())
	if err := f.g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	code := f.g.wait(t, 30*time.Second)
	stoppedAfter := time.Since(time.Unix(0, termAt.Load()))

	if code != 0 {
		t.Errorf("gatehouse exited %d, want 0", code)
	}
	if n := notReadyAt.Load(); n == 0 {
		t.Errorf("/readyz never failed")
	} else if d := time.Duration(n - termAt.Load()); d > 100*time.Millisecond {
		t.Errorf("/readyz failed %v after SIGTERM, want within 100 ms", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d failed requests (of %d):\n%s", len(failures), ok, strings.Join(failures, "\n"))
	}
	if lastLate < 1500*time.Millisecond {
		t.Errorf("the last request served after SIGTERM was %v in, want about 1.8 s (the delay is 2 s)", lastLate)
	}
	if stoppedAfter < 2*time.Second {
		t.Errorf("gatehouse exited %v after SIGTERM, before its shutdown_delay of 2s", stoppedAfter)
	}
	t.Logf("%d requests; /readyz failed %v after SIGTERM; served until %v; exited after %v",
		ok, time.Duration(notReadyAt.Load()-termAt.Load()), lastLate, stoppedAfter)
}

// SIGHUP (a reload, say from logrotate) or SIGUSR2 (an upgrade) that
// comes while gatehouse stops, in its shutdown_delay, is ignored: it must
// not kill gatehouse with the signal's default action, which would skip
// the drain and leave the app running without a supervisor.
func TestSignalsWhileStoppingAreIgnored(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR2} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			f := newUpgradeFixture(t, nil, "1s", "shutdown_delay: 2s")
			pid := f.instancePID(t)
			f.g.track([]int{pid}, nil)
			if err := f.g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 5*time.Second, "/readyz to fail", func() bool {
				resp, err := f.c.Get(f.adminURL + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusServiceUnavailable
			})
			// Well into the delay: whatever handled the signal before the
			// stop has had time to stop handling it. Nothing outside shows
			// that moment: time must pass.
			time.Sleep(500 * time.Millisecond)
			if err := f.g.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := f.g.wait(t, 30*time.Second); code != 0 {
				t.Errorf("gatehouse exited %d after %v in its shutdown_delay, want 0 (%v)", code, sig, f.g.cmd.ProcessState)
			}
			if !strings.Contains(f.g.stderr.String(), "gatehouse stopped") {
				t.Errorf("no clean stop in gatehouse's log:\n%s", f.g.stderr)
			}
			if syscall.Kill(pid, 0) == nil {
				t.Errorf("the app (pid %d) still runs after gatehouse exited", pid)
			}
		})
	}
}

// A second SIGTERM (or Ctrl-C) during shutdown_delay skips the rest of
// it: gatehouse drains and exits at once, not 30 s later.
func TestSecondSignalSkipsTheShutdownDelay(t *testing.T) {
	t.Parallel()
	f := newUpgradeFixture(t, nil, "1s", "shutdown_delay: 30s")
	c := httpClient(t, 2*time.Second)
	start := time.Now()
	if err := f.g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "/readyz to fail", func() bool {
		resp, err := c.Get(f.adminURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if !answers(c, f.listen) {
		t.Errorf("a request during the delay was not served")
	}
	if err := f.g.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := f.g.wait(t, 20*time.Second); code != 0 {
		t.Errorf("gatehouse exited %d, want 0", code)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("gatehouse took %v to stop after a second signal, want well under its 30 s delay", took)
	}
	if !strings.Contains(f.g.stderr.String(), "second signal") {
		t.Errorf("gatehouse did not say why it cut the delay short:\n%s", f.g.stderr)
	}
}
