package cli_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Against a real gatehouse: the `run` terminal shows a crash with its restart, and a start_timeout, each
// on one line; `logs` shows recent app output, as text and JSON; names
// complete from the running gatehouse; `logs -f` ends cleanly when
// gatehouse stops.
func TestRunTerminalLifecycle(t *testing.T) {
	dir := t.TempDir()
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	testutil.BuildBinary(t, gatehousePkg)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cfgText := fmt.Sprintf(`listen: %q
admin: %q
data_dir: data
apps:
  web:
    command: [%q]
    instances: 1
    routes: ["/"]
    health: {path: /healthz, interval: 200ms, timeout: 1s}
    start_timeout: 10s
    stop_timeout: 2s
  stuck:
    command: [%q, "-no-listen"]
    instances: 1
    routes: ["/stuck/"]
    health: {path: /healthz, interval: 200ms, timeout: 1s}
    start_timeout: 1s
    stop_timeout: 2s
`, listen, adminAddr, fault, fault)
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGatehouse(t, dir, "run", "-c", cfgFile)
	adminURL := "http://" + adminAddr
	c := httpClient(t, 10*time.Second)
	waitReady(t, c, adminURL, "web", 1, g)
	if st := status(c, adminURL); st != nil {
		for _, a := range st.Apps {
			for _, in := range a.Instances {
				g.track([]int{in.PID}, nil)
			}
		}
	}

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
	if st := status(c, adminURL); st != nil {
		for _, a := range st.Apps {
			for _, in := range a.Instances {
				g.track([]int{in.PID}, nil)
			}
		}
	}

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
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := g.wait(t, 20*time.Second); code != 0 {
		t.Errorf("gatehouse run exit %d after SIGTERM, want 0", code)
	}
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

// --version prints what `version` prints; completion scripts are
// generated; names complete from the config when no gatehouse runs; scale
// accepts 0 on the command line.
func TestVersionCompletionScale(t *testing.T) {
	v, _, code := gatehouse(t, "", "version")
	vf, _, codeF := gatehouse(t, "", "--version")
	if code != 0 || codeF != 0 || v != vf || !strings.HasPrefix(v, "gatehouse ") {
		t.Errorf("version = %q (exit %d), --version = %q (exit %d); want the same line", v, code, vf, codeF)
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		out, stderr, code := gatehouse(t, "", "completion", sh)
		if code != 0 || !strings.Contains(out, "gatehouse") {
			t.Errorf("completion %s: exit %d, %d bytes\n%s", sh, code, len(out), stderr)
		}
	}
	closed := testutil.ClosedAddr(t)
	for _, args := range [][]string{
		{"__complete", "scale", "-c", "good.yaml", "--admin", closed, ""},
		{"__complete", "reload", "-c", "good.yaml", "--admin", closed, "w"},
		{"__complete", "logs", "-c", "good.yaml", "--admin", closed, "--app", ""},
	} {
		out, stderr, code := gatehouse(t, "testdata", args...)
		if code != 0 || !strings.HasPrefix(out, "web\n:4\n") {
			t.Errorf("gatehouse %v = %q (exit %d, %s); want web from the config", args, out, code, stderr)
		}
	}
	out, _, _ := gatehouse(t, "testdata", "__complete", "scale", "-c", "good.yaml", "--admin", closed, "web", "")
	if strings.Contains(out, "web\n") {
		t.Errorf("scale's second argument completed with app names: %q", out)
	}
	// 0 passes the command line's check and goes to gatehouse (which is
	// not running here): not a usage error.
	_, stderr, code := gatehouse(t, "testdata", "scale", "web", "0", "--admin", closed)
	if code == 2 || strings.Contains(stderr, "must be a whole number") {
		t.Errorf("scale web 0: exit %d, %s; want it sent to gatehouse", code, stderr)
	}
	if _, _, code := gatehouse(t, "testdata", "scale", "web", "-1", "--admin", closed); code != 2 {
		t.Errorf("scale web -1: exit %d, want 2", code)
	}
}
