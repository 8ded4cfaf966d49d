package supervisor_test

// Reload, scale, recycle and restart while traffic flows through the gateway. A user notices a failed request, a
// process that is still the old one, a wrong instance count or a command
// that claims success when it failed; these tests look for exactly that.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

const gatehousePkg = "github.com/gatehouse/gatehouse/cmd/gatehouse"

// ---------------------------------------------------------------------------
// Load: concurrent GET and POST through the gateway, counting failures.

// load sends GET / and POST /echo (with a body it checks comes back)
// through the gateway from several goroutines until stopped. Any non-2xx,
// transport error or wrong echo is a failure.
type load struct {
	t     *testing.T
	c     *http.Client
	stop  chan struct{}
	wg    sync.WaitGroup
	total atomic.Int64
	// sent is signalled (without blocking) as each request is sent.
	sent   chan struct{}
	failed atomic.Int64
	// failedGET counts failed GETs: gatehouse retries those on another
	// instance whatever went wrong, so even a hard restart must not fail one.
	failedGET atomic.Int64
	mu        sync.Mutex
	first     []string
	halted    bool
}

// loadMaxRun bounds a load loop even if a test forgets to stop it.
const loadMaxRun = 60 * time.Second

// startLoad starts workers goroutines (half GET, half POST) against base.
func startLoad(t *testing.T, base string, workers int) *load {
	t.Helper()
	l := &load{t: t, c: harness.Client(10 * time.Second), stop: make(chan struct{}), sent: make(chan struct{}, 1)}
	deadline := time.Now().Add(loadMaxRun)
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if w%2 == 0 {
					l.do(http.MethodGet, base+"/", "")
				} else {
					l.do(http.MethodPost, base+"/echo", fmt.Sprintf("worker %d request %d", w, i))
				}
				// Paced, to keep the machine responsive: probes and starts
				// share it.
				select {
				case <-l.stop:
					return
				case <-time.After(3 * time.Millisecond):
				}
			}
		}()
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

func (l *load) do(method, url, body string) {
	l.total.Add(1)
	select {
	case l.sent <- struct{}{}:
	default:
	}
	var rd io.Reader
	if method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		l.fail(method, fmt.Sprintf("%s %s: %v", method, url, err))
		return
	}
	resp, err := l.c.Do(req)
	if err != nil {
		l.fail(method, fmt.Sprintf("%s %s: transport error: %v", method, url, err))
		return
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		l.fail(method, fmt.Sprintf("%s %s: %d, reading body: %v (Gatehouse-Cause %q)", method, url, resp.StatusCode, err, resp.Header.Get("Gatehouse-Cause")))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		l.fail(method, fmt.Sprintf("%s %s: status %d, Gatehouse-Cause %q, body %q", method, url, resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), trim(string(got))))
	case method == http.MethodPost && string(got) != body:
		l.fail(method, fmt.Sprintf("%s %s: status %d but echo %q, want %q", method, url, resp.StatusCode, trim(string(got)), body))
	}
}

func (l *load) fail(method, msg string) {
	l.failed.Add(1)
	if method == http.MethodGet {
		l.failedGET.Add(1)
	}
	l.mu.Lock()
	if len(l.first) < 5 {
		l.first = append(l.first, time.Now().Format("15:04:05.000")+" "+msg)
	}
	l.mu.Unlock()
}

// Stop stops the workers and waits for them (idempotent).
func (l *load) Stop() {
	l.mu.Lock()
	if l.halted {
		l.mu.Unlock()
		return
	}
	l.halted = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	l.c.CloseIdleConnections()
}

// requireNoFailures stops the load and fails the test if any request
// failed, or if too few were sent to mean anything.
func (l *load) requireNoFailures(t *testing.T, during string) {
	t.Helper()
	// An operation quicker than the load's first twenty requests (a
	// reload that only scales can take half a second) still has the
	// load run through it, and on past it until it has sent them.
	l.awaitSent(20, 10*time.Second)
	l.Stop()
	total, failed := l.total.Load(), l.failed.Load()
	t.Logf("load during %s: %d requests, %d failed", during, total, failed)
	if failed > 0 {
		t.Errorf("%d of %d requests failed during %s; first failures:\n  %s", failed, total, during, strings.Join(l.first, "\n  "))
	}
	if total < 20 {
		t.Errorf("only %d requests were sent during %s; the load did not run", total, during)
	}
}

// awaitSent waits until the load has sent n requests in all; false if it
// has not within d.
func (l *load) awaitSent(n int64, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for l.total.Load() < n {
		select {
		case <-l.sent:
		case <-deadline.C:
			return false
		}
	}
	return true
}

// awaitMore waits until the load has sent n more requests than it has
// now: under way before an operation starts, or run on past its end.
func (l *load) awaitMore(t *testing.T, n int64) {
	t.Helper()
	if want := l.total.Load() + n; !l.awaitSent(want, 20*time.Second) {
		t.Fatalf("the load sent %d requests in all within 20s; want %d", l.total.Load(), want)
	}
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// ---------------------------------------------------------------------------
// Configs.

// startWeb runs the fault app (with args) as web, instances of it,
// tuned and then edited by edit (if set), and waits until all are ready.
func startWeb(t *testing.T, instances int, edit func(*config.App), args ...string) *harness.Gatehouse {
	t.Helper()
	cfg, app := harness.FaultApp(t, instances, args...)
	tune(app)
	if edit != nil {
		edit(app)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", instances, 15*time.Second)
	return g
}

// tune shortens probe and stop timings for tests on a busy machine.
func tune(app *config.App) {
	app.Health.Interval = config.Duration(300 * time.Millisecond)
	app.Health.Timeout = config.Duration(time.Second)
	app.StopTimeout = config.Duration(5 * time.Second)
	app.StartTimeout = config.Duration(10 * time.Second)
}

// fileConfig is a gatehouse.yaml written to disk, so that Server.Reload
// (and `gatehouse reload`) re-read it.
type fileConfig struct {
	path, dataDir, bin string
}

func newFileConfig(t *testing.T) *fileConfig {
	t.Helper()
	dir := t.TempDir()
	return &fileConfig{
		path:    filepath.Join(dir, "gatehouse.yaml"),
		dataDir: filepath.Join(dir, "data"),
		bin:     testutil.BuildBinary(t, testutil.FaultAppPkg),
	}
}

// write writes the config for one app "web" running the fault app with
// args and env, and loads it.
func (f *fileConfig) write(t *testing.T, instances int, args []string, env map[string]string) *config.Config {
	t.Helper()
	return f.writeArgv(t, instances, append([]string{f.bin}, args...), env)
}

// writeCommand writes the config with any command.
func (f *fileConfig) writeCommand(t *testing.T, instances int, argv []string) *config.Config {
	t.Helper()
	return f.writeArgv(t, instances, argv, nil)
}

func (f *fileConfig) writeArgv(t *testing.T, instances int, argv []string, env map[string]string) *config.Config {
	t.Helper()
	cmd, _ := json.Marshal(argv)
	envJSON, _ := json.Marshal(env)
	if env == nil {
		envJSON = []byte("{}")
	}
	dd, _ := json.Marshal(f.dataDir)
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
data_dir: %s
apps:
  web:
    command: %s
    env: %s
    instances: %d
    routes: ["/"]
    health: {path: /healthz, interval: 300ms, timeout: 1s}
    start_timeout: 10s
    stop_timeout: 5s
    hold_timeout: 5s
    request_timeout: 10s
`, dd, cmd, envJSON, instances)
	if err := os.WriteFile(f.path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatalf("load %s: %v\n%s", f.path, err, yaml)
	}
	return cfg
}

// ---------------------------------------------------------------------------
// Inspecting the running gatehouse.

func webApp(t *testing.T, g *harness.Gatehouse) *supervisor.App {
	t.Helper()
	a, err := g.Srv.App("web")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// snapshot maps instance id to pid.
func snapshot(g *harness.Gatehouse) map[string]int {
	out := map[string]int{}
	for _, in := range g.Instances("web") {
		out[in.ID] = in.PID
	}
	return out
}

func states(g *harness.Gatehouse) string {
	var parts []string
	for _, in := range g.Instances("web") {
		parts = append(parts, fmt.Sprintf("%s(pid %d, %s, restarts %d)", in.ID, in.PID, in.State, in.Restarts))
	}
	return strings.Join(parts, " ")
}

func describeEvents(evs []telemetry.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %-6s %-12s pid=%d sig=%s: %s\n", e.Time.Format("15:04:05.000"), e.Instance, e.Type, e.PID, e.Signal, e.Detail)
	}
	return b.String()
}

// progress logs an operation's progress lines to the test log.
func progress(t *testing.T) supervisor.Progress {
	return func(format string, args ...any) { t.Logf("progress: "+format, args...) }
}

// requireDrainBeforeStop checks that each stopped instance id was drained
// (taken out of rotation) before it was stopped.
func requireDrainBeforeStop(t *testing.T, g *harness.Gatehouse, ids []string) {
	t.Helper()
	for _, id := range ids {
		var drain, stop telemetry.Event
		for _, e := range g.Events("drain", "stop") {
			if e.Instance != id {
				continue
			}
			if e.Type == "drain" && drain.Time.IsZero() {
				drain = e
			}
			if e.Type == "stop" && stop.Time.IsZero() {
				stop = e
			}
		}
		switch {
		case drain.Time.IsZero() || stop.Time.IsZero():
			t.Errorf("%s: want a drain and a stop event; events:\n%s", id, describeEvents(g.Events()))
		case stop.Time.Before(drain.Time):
			t.Errorf("%s: stopped at %s before it was drained at %s", id, stop.Time.Format("15:04:05.000"), drain.Time.Format("15:04:05.000"))
		}
	}
}

// ---------------------------------------------------------------------------
// The CLI.

type cliResult struct {
	code           int
	stdout, stderr string
}

// gatehouse runs the gatehouse binary with args, bounded by 60s.
func gatehouse(t *testing.T, args ...string) cliResult {
	t.Helper()
	bin := testutil.BuildBinary(t, gatehousePkg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir() // no ./gatehouse.yaml to pick up
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("gatehouse %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %s: did not finish within 60s", strings.Join(args, " "))
	}
	t.Logf("$ gatehouse %s → exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// cliStatusCount is the number of instances of web that
// `gatehouse status --json` reports.
func cliStatusCount(t *testing.T, g *harness.Gatehouse) int {
	t.Helper()
	r := gatehouse(t, "status", "--json", "--admin", g.AdminURL)
	if r.code != 0 {
		t.Fatalf("gatehouse status --json: exit %d: %s", r.code, r.stderr)
	}
	var st struct {
		Apps []struct {
			Name      string `json:"name"`
			Instances []struct {
				ID    string `json:"id"`
				PID   int    `json:"pid"`
				State string `json:"state"`
			} `json:"instances"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("gatehouse status --json: %v\n%s", err, r.stdout)
	}
	for _, a := range st.Apps {
		if a.Name == "web" {
			for _, in := range a.Instances {
				if in.State != "ready" || in.PID <= 0 {
					t.Errorf("status --json: %s is %s with pid %d, want ready", in.ID, in.State, in.PID)
				}
			}
			return len(a.Instances)
		}
	}
	t.Fatalf("status --json has no app web:\n%s", r.stdout)
	return 0
}

// ---------------------------------------------------------------------------
// Tests.

// Three reloads in a row, each re-reading a config file whose env
// changed, lose no request; afterwards every instance is a new process
// under a new id, and every old one was drained before it was stopped.
func TestReloadThreeTimesUnderLoad(t *testing.T) {
	fc := newFileConfig(t)
	cfg := fc.write(t, 2, nil, map[string]string{"RELEASE": "0"})
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 10*time.Second)
	before := snapshot(g)

	l := startLoad(t, g.URL, 4)
	l.awaitMore(t, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	for i := 1; i <= 3; i++ {
		fc.write(t, 2, nil, map[string]string{"RELEASE": fmt.Sprint(i)})
		if err := g.Srv.Reload(ctx, "web", progress(t)); err != nil {
			t.Fatalf("reload %d: %v\nevents:\n%s", i, err, describeEvents(g.Events()))
		}
	}
	t.Logf("3 reloads took %v", time.Since(began).Round(time.Millisecond))
	l.awaitMore(t, 20)
	l.requireNoFailures(t, "three reloads")

	after := snapshot(g)
	if len(after) != 2 {
		t.Fatalf("after the reloads: %s; want 2 instances", states(g))
	}
	oldPIDs := map[int]bool{}
	for _, pid := range before {
		oldPIDs[pid] = true
	}
	for id, pid := range after {
		if _, ok := before[id]; ok {
			t.Errorf("instance %s survived three reloads; want new ids", id)
		}
		if oldPIDs[pid] {
			t.Errorf("%s has old pid %d", id, pid)
		}
	}
	for id, pid := range before {
		if testutil.ProcessAlive(pid) {
			t.Errorf("old %s (pid %d) is still running", id, pid)
		}
	}
	// The new processes run the new config.
	c := harness.Client(5 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(g.URL + "/env?key=RELEASE")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "3" {
		t.Errorf("GET /env after the last reload = %q; want RELEASE=3", trim(string(body)))
	}
	if n := len(g.Events("reload")); n < 3 {
		t.Errorf("%d reload events, want at least 3", n)
	}
	// Six old instances in all (2 per reload) were drained, then stopped.
	var stopped []string
	for _, e := range g.Events("stop") {
		stopped = append(stopped, e.Instance)
	}
	slices.Sort(stopped)
	if want := []string{"web-1", "web-2", "web-3", "web-4", "web-5", "web-6"}; !slices.Equal(stopped, want) {
		t.Errorf("stopped instances %v, want %v", stopped, want)
	}
	requireDrainBeforeStop(t, g, stopped)
}

// A reload whose new command cannot start (a binary that does not
// exist; an app that exits at once) fails with an error that names the
// cause, both from App.Reload and through `gatehouse reload` (non-zero
// exit, cause on stderr). The old instances serve throughout, unchanged.
func TestReloadThatCannotStartKeepsOldInstances(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command func(bin string) []string
		cause   []string // each must appear in the error
	}{
		{"missing binary", func(string) []string { return []string{"/nonexistent/gatehouse-test-no-such-binary"} },
			[]string{"gatehouse-test-no-such-binary", "no such file"}},
		{"exit at start", func(bin string) []string { return []string{bin, "-exit-at-start", "1"} },
			[]string{"code 1", "exit-at-start"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFileConfig(t)
			cfg := fc.write(t, 2, nil, nil)
			g := harness.Start(t, cfg)
			g.WaitReady(t, "web", 2, 10*time.Second)
			before := snapshot(g)
			a := webApp(t, g)
			gatehouse(t, "version") // build the CLI before the load starts
			l := startLoad(t, g.URL, 4)
			bad := tc.command(fc.bin)

			// In Go: App.Reload with the new config.
			next := *a.Config()
			next.Command = bad
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			began := time.Now()
			err := a.Reload(ctx, &next, progress(t))
			t.Logf("failed reload took %v: %v", time.Since(began).Round(time.Millisecond), err)
			if err == nil {
				t.Fatalf("reload to %v succeeded; instances: %s", bad, states(g))
			}
			for _, c := range tc.cause {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("reload error %q does not name the cause (want %q in it)", err, c)
				}
			}
			if got := a.Config().Command; !slices.Equal(got, cfg.Apps["web"].Command) {
				t.Errorf("app command after the failed reload is %v, want the old %v", got, cfg.Apps["web"].Command)
			}

			// Through the CLI, re-reading the edited config file.
			fc.writeCommand(t, 2, bad)
			r := gatehouse(t, "reload", "web", "--admin", g.AdminURL)
			if r.code == 0 {
				t.Errorf("gatehouse reload to %v: exit 0, want non-zero", bad)
			}
			for _, c := range tc.cause {
				if !strings.Contains(r.stderr, c) {
					t.Errorf("gatehouse reload stderr does not name the cause (want %q in it):\n%s", c, r.stderr)
				}
			}

			l.awaitMore(t, 20)
			l.requireNoFailures(t, "failed reloads")
			if got := snapshot(g); !maps.Equal(got, before) {
				t.Errorf("instances after the failed reloads %v, want the old ones %v (%s)", got, before, states(g))
			}
			g.WaitReady(t, "web", 2, 5*time.Second)
		})
	}
}

// Scale 2 → 4 (API) → 1 (CLI) under load loses no request, and both the
// supervisor and `gatehouse status --json` show the counts.
func TestScaleUpAndDownUnderLoad(t *testing.T) {
	g := startWeb(t, 2, nil)
	gatehouse(t, "version") // build the CLI before the load starts
	a := webApp(t, g)

	l := startLoad(t, g.URL, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	if err := a.Scale(ctx, 4, progress(t)); err != nil {
		t.Fatalf("scale to 4: %v", err)
	}
	t.Logf("scale 2 → 4 took %v", time.Since(began).Round(time.Millisecond))
	if n := len(g.Instances("web")); n != 4 {
		t.Errorf("after scale 4: %s; want 4 instances", states(g))
	}
	g.WaitReady(t, "web", 4, 5*time.Second)
	if n := cliStatusCount(t, g); n != 4 {
		t.Errorf("gatehouse status --json shows %d instances after scale 4, want 4", n)
	}
	l.awaitMore(t, 20)

	began = time.Now()
	if r := gatehouse(t, "scale", "web", "1", "--admin", g.AdminURL); r.code != 0 {
		t.Fatalf("gatehouse scale web 1: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("scale 4 → 1 took %v", time.Since(began).Round(time.Millisecond))
	if n := len(g.Instances("web")); n != 1 {
		t.Errorf("after scale 1: %s; want 1 instance", states(g))
	}
	if n := cliStatusCount(t, g); n != 1 {
		t.Errorf("gatehouse status --json shows %d instances after scale 1, want 1", n)
	}
	l.awaitMore(t, 20)
	l.requireNoFailures(t, "scale 2 → 4 → 1")
	if evs := g.Events("scale"); len(evs) != 2 {
		t.Errorf("%d scale events, want 2:\n%s", len(evs), describeEvents(evs))
	}
	// Scale-down drains the surplus (newest first) before stopping it.
	requireDrainBeforeStop(t, g, []string{"web-2", "web-3", "web-4"})
}

// Recycling an instance with long requests in flight lets them finish with
// 200 while other traffic continues without a failure.
func TestRecycleUnderLoadFinishesLongRequests(t *testing.T) {
	g := startWeb(t, 2, nil)
	a := webApp(t, g)

	// Four 3s requests, spread over both instances.
	const long = 3 * time.Second
	c := harness.Client(15 * time.Second)
	defer c.CloseIdleConnections()
	type result struct {
		code     int
		instance string
		err      error
	}
	results := make(chan result, 4)
	sent := time.Now()
	for i := 0; i < 4; i++ {
		go func() {
			resp, err := c.Get(g.URL + "/sleep?d=" + long.String())
			if err != nil {
				results <- result{err: err}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{code: resp.StatusCode, instance: resp.Header.Get("X-Instance")}
		}()
	}
	// Recycle the instance that holds the most of them.
	var target supervisor.InstanceStatus
	testutil.WaitFor(t, 5*time.Second, "4 long requests in flight", func() bool {
		var n int64
		target = supervisor.InstanceStatus{}
		for _, in := range g.Instances("web") {
			n += in.Inflight
			if in.Inflight > target.Inflight {
				target = in
			}
		}
		return n == 4
	})
	t.Logf("recycling %s with %d long requests in flight", target.ID, target.Inflight)

	l := startLoad(t, g.URL, 4)
	l.awaitMore(t, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	if err := a.Recycle(ctx, target.ID, "test", progress(t)); err != nil {
		t.Fatalf("recycle %s: %v", target.ID, err)
	}
	t.Logf("recycle took %v", time.Since(began).Round(time.Millisecond))
	// The old instance drained its long requests before it stopped.
	if since := time.Since(sent); since < long-300*time.Millisecond {
		t.Errorf("recycle returned %v after the %v requests were sent: %s stopped before they could finish", since, long, target.ID)
	}
	onOld := 0
	for i := 0; i < 4; i++ {
		select {
		case r := <-results:
			if r.err != nil || r.code != 200 {
				t.Errorf("long request: status %d, err %v; want 200", r.code, r.err)
			}
			if r.instance == target.ID {
				onOld++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("long requests did not finish within 10s")
		}
	}
	if onOld != int(target.Inflight) {
		t.Errorf("%d long requests were answered by %s, want the %d it held", onOld, target.ID, target.Inflight)
	}
	l.awaitMore(t, 20)
	l.requireNoFailures(t, "a recycle")

	if evs := g.Events("recycle"); len(evs) != 1 || evs[0].Instance != target.ID {
		t.Errorf("want one recycle event for %s:\n%s", target.ID, describeEvents(g.Events()))
	}
	after := snapshot(g)
	if _, ok := after[target.ID]; ok || len(after) != 2 {
		t.Errorf("after recycling %s: %s; want the other instance and a new one", target.ID, states(g))
	}
	if testutil.ProcessAlive(target.PID) {
		t.Errorf("recycled %s (pid %d) is still running", target.ID, target.PID)
	}
	requireDrainBeforeStop(t, g, []string{target.ID})
}

// An app that ignores SIGTERM is SIGKILLed after stop_timeout (the
// stop event says so), and a reload of it under load loses no request.
func TestReloadIgnoringSIGTERMIsKilledAfterStopTimeout(t *testing.T) {
	g := startWeb(t, 2, func(a *config.App) {
		a.StopTimeout = config.Duration(time.Second)
	}, "-ignore-sigterm")
	before := snapshot(g)

	l := startLoad(t, g.URL, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	// The harness config has no file: Server.Reload re-applies the same
	// config, which rolls every process.
	if err := g.Srv.Reload(ctx, "web", progress(t)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	t.Logf("reload took %v", time.Since(began).Round(time.Millisecond))
	l.awaitMore(t, 20)
	l.requireNoFailures(t, "a reload of an app that ignores SIGTERM")

	for id, pid := range before {
		var stop *telemetry.Event
		for _, e := range g.Events("stop") {
			if e.Instance == id {
				stop = &e
			}
		}
		if stop == nil {
			t.Errorf("no stop event for %s:\n%s", id, describeEvents(g.Events()))
			continue
		}
		if stop.Signal != "SIGKILL" || !strings.Contains(stop.Detail, "stop_timeout") || !strings.Contains(stop.Detail, "SIGKILL") {
			t.Errorf("%s stop event: signal %q, detail %q; want SIGKILL after stop_timeout", id, stop.Signal, stop.Detail)
		}
		if testutil.ProcessAlive(pid) {
			t.Errorf("%s (pid %d) still alive", id, pid)
		}
	}
	requireDrainBeforeStop(t, g, slices.Sorted(maps.Keys(before)))
}

// A second reload of the same app while one is running is refused with a
// clear message, both in Go (ErrBusy) and through the CLI; the first one
// completes.
func TestConcurrentReloadIsRefused(t *testing.T) {
	g := startWeb(t, 1, nil)
	gatehouse(t, "version") // build the CLI before the reload starts
	a := webApp(t, g)

	l := startLoad(t, g.URL, 2)
	next := *a.Config()
	// The slow start keeps the first reload busy for a while.
	next.Command = append(slices.Clone(next.Command), "-start-delay", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- a.Reload(ctx, &next, func(string, ...any) {}) }()
	testutil.WaitFor(t, 5*time.Second, "the first reload to start", func() bool { return len(g.Events("reload")) > 0 })

	err := a.Reload(ctx, &next, progress(t))
	if !errors.Is(err, supervisor.ErrBusy) {
		t.Errorf("second reload: %v, want ErrBusy", err)
	} else if !strings.Contains(err.Error(), "in progress") {
		t.Errorf("second reload error %q does not say a reload is in progress", err)
	}
	r := gatehouse(t, "reload", "web", "--admin", g.AdminURL)
	if r.code == 0 || !strings.Contains(r.stderr, "another operation on this app is in progress") {
		t.Errorf("gatehouse reload during a reload: exit %d, stderr %q; want non-zero and 'in progress'", r.code, r.stderr)
	}
	select {
	case err := <-first:
		if err != nil {
			t.Errorf("first reload: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("first reload did not finish within 20s")
	}
	l.requireNoFailures(t, "concurrent reloads")
}

// `gatehouse restart web-1` restarts that one instance under the same id
// (restarts + 1, new pid) and leaves the other alone.
func TestRestartInstanceCLI(t *testing.T) {
	g := startWeb(t, 2, nil)
	gatehouse(t, "version")
	before := map[string]supervisor.InstanceStatus{}
	for _, in := range g.Instances("web") {
		before[in.ID] = in
	}

	l := startLoad(t, g.URL, 4)
	r := gatehouse(t, "restart", "web-1", "--admin", g.AdminURL)
	if r.code != 0 {
		t.Fatalf("gatehouse restart web-1: exit %d: %s", r.code, r.stderr)
	}
	l.awaitMore(t, 20)
	l.Stop()
	// A restart is hard (no draining), so unlike a reload it does not
	// promise that no POST fails; a GET is retried on web-2 and must not.
	t.Logf("load during a restart: %d requests, %d failed %v", l.total.Load(), l.failed.Load(), l.first)
	if n := l.failedGET.Load(); n > 0 {
		t.Errorf("%d GETs failed during a restart of one of two instances; first failures:\n  %s", n, strings.Join(l.first, "\n  "))
	}

	after := map[string]supervisor.InstanceStatus{}
	for _, in := range g.Instances("web") {
		after[in.ID] = in
	}
	w1, ok := after["web-1"]
	switch {
	case !ok || len(after) != 2:
		t.Fatalf("after restart: %s; want web-1 and web-2", states(g))
	case w1.Restarts != before["web-1"].Restarts+1:
		t.Errorf("web-1 restarts = %d, want %d", w1.Restarts, before["web-1"].Restarts+1)
	case w1.PID == before["web-1"].PID:
		t.Errorf("web-1 has the same pid %d after a restart", w1.PID)
	case w1.State != "ready":
		t.Errorf("web-1 is %s after the restart returned, want ready", w1.State)
	}
	if w2 := after["web-2"]; w2.PID != before["web-2"].PID || w2.Restarts != before["web-2"].Restarts {
		t.Errorf("web-2 was disturbed: %+v (was %+v)", w2, before["web-2"])
	}
	if testutil.ProcessAlive(before["web-1"].PID) {
		t.Errorf("old web-1 process %d still alive", before["web-1"].PID)
	}
}

// `gatehouse scale web 0` is a usage error (exit 2), checked before any
// request is sent.
// `gatehouse stop APP` takes an app down without removing it: every
// instance drains and stops, its requests are answered no_ready_instance;
// `gatehouse start APP` brings its configured instances back. A negative
// count is still a usage error, caught before the admin API is called.
func TestStopAndStartApp(t *testing.T) {
	g := startWeb(t, 2, func(a *config.App) {
		a.HoldTimeout = config.Duration(200 * time.Millisecond)
	})
	if r := gatehouse(t, "stop", "web", "--admin", g.AdminURL); r.code != 0 {
		t.Fatalf("gatehouse stop web: exit %d: %s", r.code, r.stderr)
	}
	if n := len(g.Instances("web")); n != 0 {
		t.Errorf("after stop: %s; want no instance", states(g))
	}
	resp, err := http.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := resp.Header.Get("Gatehouse-Cause"); resp.StatusCode != 503 || c != "no_ready_instance" {
		t.Errorf("a request to a stopped app got %d %q, want 503 no_ready_instance", resp.StatusCode, c)
	}
	if r := gatehouse(t, "start", "web", "--admin", g.AdminURL); r.code != 0 {
		t.Fatalf("gatehouse start web: exit %d: %s", r.code, r.stderr)
	}
	g.WaitReady(t, "web", 2, 10*time.Second)
	if r := gatehouse(t, "scale", "web", "-1", "--admin", "127.0.0.1:1"); r.code != 2 || strings.Contains(r.stderr, "reach gatehouse admin") {
		t.Errorf("gatehouse scale web -1: exit %d, %s; want 2 (usage) without contacting gatehouse", r.code, r.stderr)
	}
}

// A reload whose config only changes probe and timeout settings applies
// them to the running instances: no process is replaced.
func TestReloadSettingsOnlyKeepsProcesses(t *testing.T) {
	fc := newFileConfig(t)
	cfg := fc.write(t, 2, nil, nil)
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 10*time.Second)
	before := snapshot(g)

	text, err := os.ReadFile(fc.path)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.NewReplacer("interval: 300ms", "interval: 400ms", "request_timeout: 10s", "request_timeout: 3s").Replace(string(text))
	if changed == string(text) {
		t.Fatal("the test config no longer has the settings this test changes")
	}
	if err := os.WriteFile(fc.path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Srv.Reload(ctx, "web", progress(t)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if diff := cmp.Diff(before, snapshot(g)); diff != "" {
		t.Errorf("instances changed on a settings-only reload (-before +after):\n%s", diff)
	}
	c := webApp(t, g).Config()
	if c.RequestTimeout.D() != 3*time.Second || c.Health.Interval.D() != 400*time.Millisecond {
		t.Errorf("after reload request_timeout=%s interval=%s; want 3s and 400ms", c.RequestTimeout.D(), c.Health.Interval.D())
	}
	var found bool
	for _, e := range g.Events("reload") {
		found = found || strings.Contains(e.Detail, "without restarting processes")
	}
	if !found {
		t.Errorf("no reload event says the settings applied without restarting processes:\n%s", describeEvents(g.Events()))
	}
}

// A scale down stops the instances that do not serve before ready ones,
// newest first only among those alike: with web-1 unhealthy, a scale to
// 1 keeps web-2, which serves, rather than leave the app only web-1.
func TestScaleDownStopsInstancesNotServingFirst(t *testing.T) {
	g := startWeb(t, 2, nil)
	var port int
	for _, in := range g.Instances("web") {
		if in.ID == "web-1" {
			port = in.Port
		}
	}
	if port == 0 {
		t.Fatalf("no web-1: %s", states(g))
	}
	c := harness.Client(10 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/set-health?status=500", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testutil.WaitFor(t, 10*time.Second, "web-1 unhealthy", func() bool {
		for _, in := range g.Instances("web") {
			if in.ID == "web-1" {
				return in.State == "unhealthy"
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := webApp(t, g).Scale(ctx, 1, progress(t)); err != nil {
		t.Fatalf("scale to 1: %v", err)
	}
	if ins := g.Instances("web"); len(ins) != 1 || ins[0].ID != "web-2" || ins[0].State != "ready" {
		t.Errorf("after a scale to 1 with web-1 unhealthy: %s; want web-2, ready", states(g))
	}
}

// A restart of an instance that has restarted before waits for its new
// process as for a new instance's: one exit of that process is retried,
// not taken, with the restarts of the instance's earlier life, for an
// instance that keeps failing.
func TestRestartCountsExitsFromTheRestart(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "exit-once")
	cfg, app := harness.FaultApp(t, 1)
	tune(app)
	// The process exits with 3 at its start once while the flag exists.
	app.Command = config.Command{"sh", "-c", `if [ -e "$EXIT_ONCE" ]; then rm -f "$EXIT_ONCE"; exit 3; fi; exec "$0"`, app.Command[0]}
	app.Env = map[string]string{"EXIT_ONCE": flag}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 15*time.Second)
	a := webApp(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 2 {
		if err := a.RestartInstance(ctx, "web-1", progress(t)); err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.RestartInstance(ctx, "web-1", progress(t)); err != nil {
		t.Errorf("a restart whose process exited once, then started: %v", err)
	}
	if len(g.Events("exit")) == 0 {
		t.Errorf("the restarted process never exited (the flag was not seen): %s", describeEvents(g.Events()))
	}
}
