// Package harness starts a real gatehouse in the test process, in front of
// real app processes (usually the fault app), on loopback ports, and
// stops it when the test ends. Tests of every layer above the supervisor
// use it so that they exercise what users run.
package harness

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Gatehouse is a running gatehouse under test.
type Gatehouse struct {
	Srv *server.Server
	// URL is the gateway's base URL, AdminURL the admin API's.
	URL      string
	AdminURL string
	// SecureURL is the HTTPS listener's base URL, when the config has a
	// tls: block (see TLS).
	SecureURL string
	// H2Roots, when a test sets it, makes its clients speak HTTP/2 to
	// SecureURL, trusting these roots (see TLS and H2Client).
	H2Roots *x509.CertPool
	Config  *config.Config

	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	access []telemetry.AccessEntry
}

// FaultApp returns a one-app config running the fault app with args,
// with short timeouts suited to tests. Adjust the returned app before
// Start.
func FaultApp(t testing.TB, instances int, args ...string) (*config.Config, *config.App) {
	t.Helper()
	bin := testutil.BuildBinary(t, testutil.FaultAppPkg)
	cfg := config.Default()
	cfg.Listen, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	app := config.NewApp("web")
	app.Command = append(config.Command{bin}, args...)
	app.Instances = instances
	app.Routes = config.PlainRoutes("/")
	app.Health.Path = "/healthz"
	app.Health.Interval = config.Duration(500 * time.Millisecond)
	app.Health.Timeout = config.Duration(time.Second)
	app.StartTimeout = config.Duration(10 * time.Second)
	app.StopTimeout = config.Duration(5 * time.Second)
	app.HoldTimeout = config.Duration(5 * time.Second)
	app.RequestTimeout = config.Duration(10 * time.Second)
	cfg.Apps = map[string]*config.App{"web": app}
	cfg.Order = []string{"web"}
	return cfg, app
}

// Start runs cfg until the test ends. Console output goes to the test log
// when -v is set.
func Start(t testing.TB, cfg *config.Config) *Gatehouse {
	t.Helper()
	return StartWith(t, cfg, server.Options{})
}

// StartWith is Start with server options (console and observer are the
// harness's own).
func StartWith(t testing.TB, cfg *config.Config, opts server.Options) *Gatehouse {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	g := &Gatehouse{Config: cfg, done: make(chan error, 1)}
	console := &testWriter{t: t}
	opts.Console, opts.Observe = console, g.observe
	// Registered before Stop's cleanup, so it runs after it: a failed
	// test shows what gatehouse printed, up to its stop.
	t.Cleanup(console.showIfFailed)
	srv, err := newServer(cfg, opts)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	g.Srv = srv
	g.URL = "http://" + srv.Addr()
	g.AdminURL = "http://" + srv.AdminAddr()
	if a := srv.TLSAddr(); a != "" {
		g.SecureURL = "https://" + a
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- srv.Run(ctx) }()
	t.Cleanup(func() { g.Stop(t) })
	return g
}

// newServer is server.New, waiting a moment for a data_dir lock that
// this process's own gatehouse, stopped before, still holds. Its lock is
// an open file's, and every process forked meanwhile (another test's app
// instances) shares the file until its exec closes it, so the lock may
// outlive the Stop that closed it by that long.
func newServer(cfg *config.Config, opts server.Options) (*server.Server, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		srv, err := server.New(cfg, opts)
		var inUse *server.DataDirInUseError
		if !errors.As(err, &inUse) || inUse.PID != os.Getpid() || time.Now().After(deadline) {
			return srv, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop shuts gatehouse down and waits for it (idempotent).
func (g *Gatehouse) Stop(t testing.TB) {
	g.cancel()
	select {
	case err, ok := <-g.done:
		if !ok {
			return // stopped before
		}
		if err != nil {
			t.Errorf("gatehouse run: %v", err)
		}
		close(g.done)
	case <-time.After(30 * time.Second):
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Errorf("gatehouse did not stop within 30s; goroutines:\n%s", stacks.String())
	}
}

func (g *Gatehouse) observe(e *telemetry.AccessEntry) {
	c := *e
	c.RetriedCauses = append([]string(nil), e.RetriedCauses...)
	g.mu.Lock()
	g.access = append(g.access, c)
	g.mu.Unlock()
}

// Access returns a copy of every access entry so far.
func (g *Gatehouse) Access() []telemetry.AccessEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]telemetry.AccessEntry(nil), g.access...)
}

// Events returns the events so far, of the given types (all when none).
func (g *Gatehouse) Events(types ...string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range g.Srv.Events().Since(time.Time{}) {
		if len(types) == 0 || contains(types, e.Type) {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvent waits until an event of type typ ("": any) for instance id
// ("": any) that match accepts (nil: any) has been emitted, and returns
// the first.
func (g *Gatehouse) WaitEvent(t testing.TB, timeout time.Duration, typ, id string, match func(telemetry.Event) bool) telemetry.Event {
	t.Helper()
	var types []string
	if typ != "" {
		types = []string{typ}
	}
	var found telemetry.Event
	testutil.WaitFor(t, timeout, fmt.Sprintf("a %q event of %q", typ, id), func() bool {
		for _, e := range g.Events(types...) {
			if (id == "" || e.Instance == id) && (match == nil || match(e)) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// DescribeEvents formats events, one a line, for failure messages.
func DescribeEvents(evs []telemetry.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %-6s %-12s pid=%d", e.Time.Format("15:04:05.000"), e.Instance, e.Type, e.PID)
		if e.Signal != "" {
			fmt.Fprintf(&b, " sig=%s", e.Signal)
		}
		fmt.Fprintf(&b, " %s: %s\n", e.Trigger, e.Detail)
	}
	return b.String()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Instances returns the app's instance statuses.
func (g *Gatehouse) Instances(app string) []supervisor.InstanceStatus {
	for _, a := range g.Srv.Supervisor().Status() {
		if a.Name == app {
			return a.Instances
		}
	}
	return nil
}

// WaitReady waits until app has n ready instances.
func (g *Gatehouse) WaitReady(t testing.TB, app string, n int, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, fmt.Sprintf("%d ready instances of %s", n, app), func() bool {
		ready := 0
		for _, in := range g.Instances(app) {
			if in.State == "ready" {
				ready++
			}
		}
		return ready == n
	})
}

// Client returns an HTTP client for the gateway with a bounded timeout.
func Client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// testWriter takes gatehouse's console: into the test log at once with
// -v, else kept (the last consoleKeep lines) for a failed test to show.
type testWriter struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

// consoleKeep bounds the console lines a test keeps.
const consoleKeep = 400

func (w *testWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	if testing.Verbose() {
		w.t.Log(line)
		return len(p), nil
	}
	w.mu.Lock()
	if len(w.lines) == consoleKeep {
		w.lines = w.lines[1:]
	}
	w.lines = append(w.lines, line)
	w.mu.Unlock()
	return len(p), nil
}

func (w *testWriter) showIfFailed() {
	if !w.t.Failed() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) > 0 {
		w.t.Logf("gatehouse's console (last %d lines):\n%s", len(w.lines), strings.Join(w.lines, "\n"))
	}
}
