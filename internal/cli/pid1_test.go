package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// pid1 is gatehouse run as PID 1 of a new PID namespace, as in a
// container: unshare forks it there and waits for it.
type pid1 struct {
	*upgradeFixture
	// pid is gatehouse's pid as this test sees it (outside the namespace).
	pid int
}

// startPID1 runs gatehouse as PID 1 of a new PID namespace with one app
// whose command is script (sh -c), which ends by exec'ing the fault app.
func startPID1(t *testing.T, script string, top ...string) *pid1 {
	t.Helper()
	if err := exec.Command("unshare", "-fp", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace here (unshare -fp needs root or user namespaces): %v", err)
	}
	f := prepareUpgradeFixture(t, nil, "1s", top...)
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	cfg := strings.Replace(f.config(t), fmt.Sprintf("command: [%q]", fault),
		fmt.Sprintf("command: %q", script+"; exec "+fault), 1)
	f.writeConfig(t, f.listen, cfg)
	f.start(t, "unshare", "-fp", "--mount-proc", f.real, "run", "-c", f.cfgFile)
	p := &pid1{upgradeFixture: f}
	testutil.WaitFor(t, 10*time.Second, "gatehouse inside the namespace", func() bool {
		p.pid = childOf(f.g.cmd.Process.Pid)
		return p.pid > 0
	})
	return p
}

// childOf is the first child of pid, 0 if it has none.
func childOf(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// zombies lists the zombie children of pid.
func zombies(pid int) []int {
	var out []int
	for _, p := range procid.List() {
		if st, err := procid.ReadStat(p); err == nil && st.State == 'Z' && st.PPID == pid {
			out = append(out, p)
		}
	}
	return out
}

// As PID 1, gatehouse reaps the orphans an app leaves (a double fork: the
// middle process exits at once, the grandchild is reparented to PID 1 and
// exits later), and none is left a zombie after 5 s; the instance it
// supervises is unharmed.
func TestPID1ReapsOrphans(t *testing.T) {
	// Five double-forked children that exit after 0.2-1 s, and one that
	// keeps running in its own session (a daemon: the stop of the app's
	// process group does not reach it).
	p := startPID1(t, "for d in 0.2 0.4 0.6 0.8 1; do (sleep $d &); done; (setsid sleep 300 &)")
	time.Sleep(time.Second) // the orphans exist and end meanwhile
	var left []int
	deadline := time.Now().Add(5 * time.Second)
	for {
		left = zombies(p.pid)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("zombie children of gatehouse (pid %d) after 5 s: %v", p.pid, left)
	}
	if !answers(p.c, p.listen) {
		t.Errorf("the app does not answer through gatehouse after the orphans were reaped")
	}
	if st := status(p.c, p.adminURL); st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 ||
		st.Apps[0].Instances[0].Restarts != 0 {
		t.Errorf("the instance was disturbed by the reaping: %+v", st)
	}
}

// As PID 1 (where the kernel drops a signal that has no handler), SIGTERM
// and SIGINT are gatehouse's own shutdown: it drains, stops the app, ends
// the processes left over, and exits 0 within the bounds its config sets.
func TestPID1StopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startPID1(t, "(setsid sleep 300 &)")
			start := time.Now()
			if err := syscall.Kill(p.pid, sig); err != nil {
				t.Fatal(err)
			}
			// stop_timeout 2s for the drain and for the app each, and 2 s
			// for the processes left over: within 10 s on a busy machine.
			if code := p.g.wait(t, 15*time.Second); code != 0 {
				t.Errorf("gatehouse as PID 1 exited %d on %v, want 0\n%s", code, sig, p.g.stderr)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("gatehouse took %v to stop, want well under 10 s", took)
			}
			if !strings.Contains(p.g.stderr.String(), "gatehouse stopped") {
				t.Errorf("no clean stop in gatehouse's log:\n%s", p.g.stderr)
			}
		})
	}
}
