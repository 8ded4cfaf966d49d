package procdump

import (
	"github.com/gatehouse/gatehouse/internal/procid"

	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// dumpTestsEnv, set to 1 (as CI does), turns a missing tool into a
// failure instead of a skip.
const dumpTestsEnv = "GATEHOUSE_DUMP_TESTS"

// systemPython is Debian's interpreter, whose debug package gives gdb
// its py-bt.
const systemPython = "/usr/bin/python3"

// requireTools skips a test whose tools are not installed, or fails it
// when GATEHOUSE_DUMP_TESTS=1.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	testutil.SkipInShort(t)
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missingTool(t, tool+" is not installed")
		}
	}
}

// requirePyBt needs gdb and the system interpreter's gdb extension
// (Debian's python3.X-dbg).
func requirePyBt(t *testing.T) {
	t.Helper()
	requireTools(t, "gdb", systemPython)
	exe, err := filepath.EvalSymlinks(systemPython)
	if err != nil {
		missingTool(t, systemPython+" is not installed")
	}
	if _, err := os.Stat("/usr/share/gdb/auto-load" + exe + "-gdb.py"); err != nil {
		missingTool(t, "gdb's py-bt for "+exe+" is not installed (apt-get install "+filepath.Base(exe)+"-dbg)")
	}
}

func missingTool(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(dumpTestsEnv) == "1" {
		t.Fatalf("%s, and %s=1 requires it", why, dumpTestsEnv)
	}
	t.Skipf("%s (with %s=1 this fails)", why, dumpTestsEnv)
}

// app is a running test program that has said "ready" on stdout.
type app struct {
	cmd    *exec.Cmd
	stderr string // the file its stderr goes to
}

func (a *app) pid() int { return a.cmd.Process.Pid }

// startApp runs argv, waits for the "ready" line on its stdout and kills
// it at the end of the test.
func startApp(t *testing.T, argv ...string) *app {
	t.Helper()
	dir := t.TempDir()
	a := &app{stderr: filepath.Join(dir, "stderr")}
	errf, err := os.Create(a.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	a.cmd = exec.Command(argv[0], argv[1:]...)
	a.cmd.Dir = dir
	a.cmd.Stderr = errf
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = io.ErrUnexpectedEOF
		}
		ready <- err
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			b, _ := os.ReadFile(a.stderr)
			t.Fatalf("%v did not say ready: %v\n%s", argv, err, b)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not say ready within 30s", argv)
	}
	return a
}

// writeFile writes a program's source into a test directory.
func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The test programs. Each says "ready" once in the state a test dumps.
const (
	// nodeIdle waits for timers; its inspector port is its own
	// (--inspect-port=0), so that tests running at once do not race for
	// 9229.
	nodeIdle = `setInterval(() => {}, 1000); console.log('ready');`
	// nodeBusy never yields to its event loop.
	nodeBusy = `function spinForever() {
  console.log('ready');
  let n = 0;
  while (true) { n++; }
}
spinForever();
`
	// pythonSleeping sleeps on line 5, in a named function.
	pythonSleeping = `import time

def sleep_in_named_function():
    print('ready', flush=True)
    time.sleep(600)

sleep_in_named_function()
`
	pythonSleepLine = "line 5"
	goSleeping      = `package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("ready")
	time.Sleep(time.Hour)
}
`
)

func startNode(t *testing.T, src string) *app {
	t.Helper()
	requireTools(t, "node")
	return startApp(t, "node", "--inspect-port=0", writeFile(t, "app.js", src))
}

func startPython(t *testing.T, src string) *app {
	t.Helper()
	requireTools(t, systemPython)
	return startApp(t, systemPython, writeFile(t, "app.py", src))
}

// startGo builds goSleeping with the toolchain running the tests and runs it.
func startGo(t *testing.T) *app {
	t.Helper()
	testutil.SkipInShort(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(goSleeping), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sleeper")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return startApp(t, bin)
}

// running reports whether the app still runs (not exited, not stopped).
func (a *app) running() bool { return a.notRunning() == "" }

// notRunning says why the app does not run, with the end of its stderr,
// or "" when it runs.
func (a *app) notRunning() string {
	st, err := procid.ReadStat(a.pid())
	why := ""
	switch {
	case err != nil:
		why = err.Error()
	case st.State == 'Z' || st.State == 'X' || st.State == 'T' || st.State == 't':
		why = "state " + string(st.State)
	case a.cmd.Process.Signal(syscall.Signal(0)) != nil:
		why = "it cannot be signalled"
	default:
		return ""
	}
	b, _ := os.ReadFile(a.stderr)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return why + "; its stderr:\n" + string(b)
}

// outputFrom is an Options.Output reading the app's stderr from its end
// at the time of the call.
func (a *app) outputFrom() (io.Reader, error) {
	f, err := os.Open(a.stderr)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
