package cli_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// SIGTERM to gatehouse under load lets every in-flight request finish,
// exits 0, and leaves no process of the app behind, not even a grandchild
// the app forked.
func TestSIGTERMUnderLoad(t *testing.T) {
	dir := t.TempDir()
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	testutil.BuildBinary(t, gatehousePkg)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	// sh -c "exec ..." keeps the instance's pid; each instance writes its
	// grandchild's pid to its own file.
	cfgText := fmt.Sprintf(`listen: %q
admin: %q
data_dir: data
apps:
  web:
    command: "exec %s -spawn-child -child-pidfile %s/$GATEHOUSE_INSTANCE.child"
    instances: 2
    health: {path: /healthz, interval: 500ms, timeout: 1s}
    start_timeout: 10s
    stop_timeout: 5s
    hold_timeout: 5s
    request_timeout: 10s
`, listen, adminAddr, fault, dir)
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGatehouse(t, dir, "run", "-c", cfgFile)
	adminURL := "http://" + adminAddr
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
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
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
