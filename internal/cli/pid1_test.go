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
	*fixture
	// pid is gatehouse's pid as this test sees it (outside the namespace).
	pid int
}

// startPID1 runs gatehouse as PID 1 of a new PID namespace with one app
// whose command is script (sh -c), which ends by exec'ing the fault app.
func startPID1(t *testing.T, script string, top ...string) *pid1 {
	t.Helper()
	testutil.SkipInShort(t)
	if err := exec.Command("unshare", "-fp", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace here (unshare -fp needs root or user namespaces): %v", err)
	}
	f := prepareUpgradeFixture(t, nil, "1s", top...)
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	cfg := strings.Replace(f.config(t), fmt.Sprintf("command: [%q]", fault),
		fmt.Sprintf("command: %q", script+"; exec "+fault), 1)
	f.writeConfig(t, f.listen, cfg)
	f.start(t, "unshare", "-fp", "--mount-proc", f.real, "run", "-c", f.cfgFile)
	p := &pid1{fixture: f}
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

// descendants lists the processes below pid.
func descendants(pid int) []int {
	kids := map[int][]int{}
	for _, p := range procid.List() {
		if st, err := procid.ReadStat(p); err == nil {
			kids[st.PPID] = append(kids[st.PPID], p)
		}
	}
	var out []int
	for next := kids[pid]; len(next) > 0; {
		p := next[0]
		next = append(next[1:], kids[p]...)
		out = append(out, p)
	}
	return out
}

// cmdline is pid's command line, its arguments joined by spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
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
	t.Parallel()
	// Five double-forked children that exit after 0.2-1 s, and one that
	// keeps running in its own session (a daemon: the stop of the app's
	// process group does not reach it).
	p := startPID1(t, "for d in 0.2 0.4 0.6 0.8 1; do (sleep $d &); done; (setsid sleep 300 &)")
	// The instance is ready: its script made the orphans before it
	// exec'd the app. They end meanwhile.
	testutil.WaitFor(t, 10*time.Second, "the orphans to end", func() bool {
		for _, c := range descendants(p.pid) {
			// A zombie's command line is empty.
			if cmd := cmdline(c); strings.HasPrefix(cmd, "sleep 0.") || cmd == "sleep 1" {
				return false
			}
		}
		return true
	})
	var left []int
	testutil.Eventually(5*time.Second, func() bool {
		left = zombies(p.pid)
		return len(left) == 0
	})
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
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
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
