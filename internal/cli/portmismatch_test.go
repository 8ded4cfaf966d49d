package cli_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// An app that listens on a fixed port instead of its PORT: the run
// terminal says so on one line, with the fix, within seconds rather than
// at start_timeout, and only once however many probes are refused after;
// a held request's 503 says it too.
func TestRunTerminalNamesPortMismatch(t *testing.T) {
	dir := t.TempDir()
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	testutil.BuildBinary(t, gatehousePkg)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	fixed := testutil.FreePort(t)
	cfgText := fmt.Sprintf(`listen: %q
admin: %q
data_dir: data
apps:
  web:
    command: [%q, "-listen-port", "%d"]
    instances: 1
    routes: ["/"]
    health: {path: /healthz, interval: 200ms, timeout: 1s}
    start_timeout: 230s
    hold_timeout: 2s
    stop_timeout: 2s
`, listen, adminAddr, fault, fixed)
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	g := startGatehouse(t, dir, "run", "-c", cfgFile)
	c := httpClient(t, 10*time.Second)

	port := 0
	testutil.WaitFor(t, 15*time.Second, "web-1 started", func() bool {
		select {
		case <-g.done:
			t.Fatalf("gatehouse exited early\nstderr:\n%s", g.stderr)
		default:
		}
		st := status(c, "http://"+adminAddr)
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
	resp, err := c.Get("http://" + listen + "/")
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
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := g.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}
