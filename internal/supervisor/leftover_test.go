package supervisor

// An app run through sh -c keeps running (under its shim, still listening)
// when gatehouse is killed with SIGKILL, and the next `gatehouse run` on
// the same data_dir adopts it: the same pid serves, with no cold start,
// and is stopped drain-first when that run stops. A record without shims
// (written by a gatehouse that ran its apps without them) cannot be
// adopted: its processes are stopped. gatehouse runs as a real child
// process here: an in-process server cannot be SIGKILLed.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/adoption/adoptiontest"
	"github.com/gatehouse/gatehouse/internal/process"
	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

const gatehouseCmdPkg = "github.com/gatehouse/gatehouse/cmd/gatehouse"

func TestSIGKILLedGatehouseAppsAdoptedByNextRun(t *testing.T) {
	for _, tc := range []struct {
		name             string
		procfile, legacy bool
	}{
		{name: "config string command"},
		{name: "Procfile", procfile: true},
		{name: "record without shims", legacy: true},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			testLeftovers(t, tc.procfile, tc.legacy)
		})
	}
}

func testLeftovers(t *testing.T, procfile, legacy bool) {
	dir := t.TempDir()
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	gh := testutil.BuildBinary(t, gatehouseCmdPkg)
	// trap keeps sh from being replaced by the app, and "& … wait" keeps it
	// the app's parent, whatever the shell's exec optimisations: the shape
	// of a Procfile line that gatehouse cannot exec directly.
	line := fmt.Sprintf("trap '' TERM; %s & echo $! > %s/$GATEHOUSE_INSTANCE.pid; wait", fault, dir)
	if got := process.CommandArgv([]string{"sh", "-c", line}); got[0] != "sh" || got[2] != line {
		t.Fatalf("CommandArgv(%q) = %q; the test needs sh to stay the app's parent", line, got)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	var args []string
	dataDir := filepath.Join(dir, "data")
	if procfile {
		dataDir = filepath.Join(dir, ".gatehouse")
		write(t, filepath.Join(dir, "Procfile"), "web: "+line+"\n")
		args = []string{"run", "--listen", listen, "--admin", adminAddr}
	} else {
		write(t, filepath.Join(dir, "gatehouse.yaml"), fmt.Sprintf(`listen: %q
admin: %q
data_dir: data
apps:
  web:
    command: %q
    health: {path: /healthz, interval: 300ms, timeout: 1s}
    start_timeout: 10s
    stop_timeout: 3s
`, listen, adminAddr, line))
		args = []string{"run", "-c", "gatehouse.yaml"}
	}

	// The first run: wait until the app listens and is recorded.
	first := startChild(t, dir, gh, args...)
	var rec adoption.ProcessRecord
	var app procid.ID
	testutil.WaitFor(t, 20*time.Second, "the app to listen and be recorded in processes.json", func() bool {
		recs := readRecords(t, dataDir)
		if len(recs) != 1 {
			return false
		}
		rec = recs[0]
		b, err := os.ReadFile(filepath.Join(dir, rec.ID+".pid"))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || !listening(rec.Port) {
			return false
		}
		st, err := procid.ReadStat(pid)
		app = procid.ID{PID: pid, StartTicks: st.StartTicks}
		return err == nil
	})
	if rec.PGID != rec.PID || rec.StartTicks == 0 || rec.Command[0] != "sh" {
		t.Fatalf("record %+v: want sh in its own group with a start time", rec)
	}
	shell := procid.ID{PID: rec.PID, StartTicks: rec.StartTicks}
	old := []procid.ID{shell, app}
	t.Cleanup(func() {
		for _, p := range old {
			if p.Alive() {
				syscall.Kill(p.PID, syscall.SIGKILL)
			}
		}
	})
	if !app.Alive() || !shell.Alive() {
		t.Fatalf("before the kill: sh %d alive %v, app %d alive %v", shell.PID, shell.Alive(), app.PID, app.Alive())
	}

	// SIGKILL gatehouse: no chance to stop the app, which stays behind.
	first.kill(t)
	// Deliberately a moment: an app that were to die with gatehouse (its
	// parent's death signal, a closed pipe) would be gone by then.
	time.Sleep(300 * time.Millisecond)
	if !app.Alive() || !listening(rec.Port) {
		t.Fatalf("the app (pid %d) is gone after gatehouse's SIGKILL: the leftover this test is about did not happen", app.PID)
	}
	t.Logf("after SIGKILL of gatehouse: app pid %d alive, ppid %s, listening on %d; sh pid %d alive %v",
		app.PID, ppid(app.PID), rec.Port, shell.PID, shell.Alive())

	if legacy {
		stripShims(t, dataDir)
	}

	second := startChild(t, dir, gh, args...)
	if legacy {
		// The next run stops a process it cannot adopt before starting
		// its own.
		began := time.Now()
		testutil.WaitFor(t, 10*time.Second, "the previous run's processes to be gone", func() bool {
			return !shell.Alive() && !app.Alive()
		})
		t.Logf("old processes gone %v after the second run started", time.Since(began).Round(time.Millisecond))
		testutil.WaitFor(t, 20*time.Second, "the second run's own instance", func() bool {
			recs := readRecords(t, dataDir)
			return len(recs) == 1 && recs[0].PID != rec.PID && listening(recs[0].Port)
		})
		if out := second.stderr.String(); !strings.Contains(out, "left running by a previous gatehouse") {
			t.Errorf("the second run does not say it stopped the leftovers; stderr:\n%s", out)
		}
		second.term(t)
		return
	}
	// The next run adopts it: same pid, same port, no new process.
	testutil.WaitFor(t, 20*time.Second, "the second run to adopt web-1 and serve through it", func() bool {
		recs := readRecords(t, dataDir)
		if len(recs) != 1 || recs[0].PID != rec.PID || recs[0].Port != rec.Port {
			return false
		}
		resp, err := http.Get("http://" + listen + "/pid")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.TrimSpace(string(b)) == strconv.Itoa(app.PID)
	})
	if !shell.Alive() || !app.Alive() {
		t.Errorf("after adoption: sh %d alive %v, app %d alive %v; want both running on", shell.PID, shell.Alive(), app.PID, app.Alive())
	}
	// The console says it after the event, which may come after the
	// first answer through the adopted process.
	testutil.WaitFor(t, 10*time.Second, "the second run to say it adopted web-1", func() bool {
		return strings.Contains(second.stderr.String(), "adopt")
	})
	if out := second.stderr.String(); strings.Contains(out, "web-1 start:") {
		t.Errorf("the second run started a new process for web-1; stderr:\n%s", out)
	}
	// Its stop stops the adopted app, drain-first, and says how it ended.
	second.term(t)
	testutil.WaitFor(t, 10*time.Second, "the adopted processes to be stopped with the second run", func() bool {
		return !shell.Alive() && !app.Alive()
	})
	if out := second.stderr.String(); !strings.Contains(out, "web-1 stop:") {
		t.Errorf("the second run's stop of the adopted web-1 is not reported; stderr:\n%s", out)
	}
}

// stripShims rewrites processes.json as a gatehouse before shims wrote
// it. The shims still run: they end once the next run stops their apps.
func stripShims(t *testing.T, dataDir string) {
	t.Helper()
	doc, _ := adoptiontest.ReadDoc(t, dataDir)
	for i := range doc.Processes {
		doc.Processes[i].ShimPID, doc.Processes[i].ShimStartTicks, doc.Processes[i].StatusFile = 0, 0, ""
	}
	adoptiontest.WriteDoc(t, dataDir, doc)
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readRecords(t *testing.T, dataDir string) []adoption.ProcessRecord {
	doc, _ := adoptiontest.ReadDoc(t, dataDir)
	return doc.Processes
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func ppid(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 {
			return f[1]
		}
	}
	return "?"
}

// child is a gatehouse binary run in the background.
type child struct {
	cmd    *exec.Cmd
	stderr *testutil.LockedBuffer
	done   chan struct{}
}

func startChild(t *testing.T, dir, bin string, args ...string) *child {
	t.Helper()
	c := &child{stderr: &testutil.LockedBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	c.cmd.WaitDelay = 2 * time.Second
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		if !c.signal(syscall.SIGTERM, 10*time.Second) {
			c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("gatehouse %s output:\n%s", strings.Join(args, " "), c.stderr)
		}
	})
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if !c.signal(syscall.SIGKILL, 10*time.Second) {
		t.Fatal("gatehouse did not die of SIGKILL")
	}
}

func (c *child) term(t *testing.T) {
	t.Helper()
	if !c.signal(syscall.SIGTERM, 15*time.Second) {
		t.Errorf("gatehouse did not exit within 15s of SIGTERM")
	}
}

// signal sends sig and reports whether gatehouse exited within d.
func (c *child) signal(sig syscall.Signal, d time.Duration) bool {
	c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}
