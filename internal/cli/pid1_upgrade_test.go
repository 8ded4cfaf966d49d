package cli_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// As a container's init (PID 1 of a PID namespace), gatehouse refuses to
// upgrade: the old process exits at the end of an upgrade, and the exit of
// a namespace's init kills every process in it. It says so, and serves on.
// The namespace is a real one (unshare), as a container runtime makes it.
func TestUpgradeRefusedAsPID1(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1) here")
	}
	if out, err := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("no PID namespace for this user here: %v %s", err, out)
	}
	dir := t.TempDir()
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	gh := testutil.BuildBinary(t, gatehousePkg)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cfg := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %q\nadmin: %q\ndata_dir: data\napps:\n  web:\n    command: [%q]\n    health: {path: /healthz}\n",
		listen, adminAddr, fault)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child", gh, "run", "-c", cfg)
	cmd.Dir, cmd.Stderr = dir, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("gatehouse stderr:\n%s", &stderr)
		}
	})
	c := httpClient(t, 5*time.Second)
	get := func() (int, string) {
		resp, err := c.Get("http://" + listen + "/pid")
		if err != nil {
			return 0, err.Error()
		}
		return resp.StatusCode, readBody(t, resp)
	}
	testutil.WaitFor(t, 20*time.Second, "gatehouse, PID 1 of its namespace, to serve", func() bool {
		code, _ := get()
		return code == http.StatusOK
	})
	_, errOut, code := gatehouse(t, dir, "upgrade", "--admin", adminAddr)
	if code == 0 || !strings.Contains(errOut, "PID 1") {
		t.Errorf("gatehouse upgrade of a PID 1 gatehouse: exit %d, stderr %q; want a refusal naming PID 1", code, errOut)
	}
	if code, body := get(); code != http.StatusOK {
		t.Errorf("after the refused upgrade: %d %s; want the same gatehouse serving", code, body)
	}
	select {
	case <-done:
		t.Fatalf("gatehouse (and its namespace) ended after the refused upgrade")
	default:
	}
}
