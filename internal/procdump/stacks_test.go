package procdump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

// TestStacksNameTheRunningCode takes the stacks of a program of each
// runtime, stopped in a known function, and finds that function in them.
func TestStacksNameTheRunningCode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		start   func(*testing.T) *app
		opt     func(*app) Options
		tool    string
		want    []string // on one line
		ended   bool
		runtime Runtime
	}{{
		name:    "node in a busy loop",
		start:   func(t *testing.T) *app { return startNode(t, nodeBusy) },
		tool:    "node inspector",
		want:    []string{"at spinForever (", "app.js:4:"},
		runtime: RuntimeNode,
	}, {
		name: "python asleep",
		start: func(t *testing.T) *app {
			requirePyBt(t)
			return startPython(t, pythonSleeping)
		},
		tool:    "gdb py-bt",
		want:    []string{"app.py", pythonSleepLine, "sleep_in_named_function"},
		runtime: RuntimePython,
	}, {
		name:    "go allowed to exit",
		start:   startGo,
		opt:     func(a *app) Options { return Options{AllowExit: true, Output: a.outputFrom} },
		tool:    "SIGQUIT",
		want:    []string{"goroutine 1 "},
		ended:   true,
		runtime: RuntimeGo,
	}, {
		name: "jvm asleep",
		start: func(t *testing.T) *app {
			testutil.SkipInShort(t)
			// The JVM case is optional: it skips without a JDK, CI or not.
			for _, tool := range []string{"java", "jcmd"} {
				if _, err := exec.LookPath(tool); err != nil {
					t.Skipf("%s is not installed", tool)
				}
			}
			return startApp(t, "java", writeFile(t, "Sleeper.java", javaSleeping))
		},
		tool:    "jcmd",
		want:    []string{"at Sleeper.sleepInNamedMethod(Sleeper.java:"},
		runtime: RuntimeJVM,
	}, {
		name: "native asleep",
		start: func(t *testing.T) *app {
			requireTools(t, "gdb", "sh")
			return startApp(t, "sh", "-c", "echo ready; exec sleep 600")
		},
		tool:    "gdb",
		want:    []string{"#0 "},
		runtime: RuntimeNative,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.start(t)
			var opt Options
			if tc.opt != nil {
				opt = tc.opt(a)
			}
			var out bytes.Buffer
			res, err := Take(context.Background(), KindStacks, a.pid(), &out, opt)
			if err != nil {
				t.Fatalf("Take: %v\n%s", err, out.String())
			}
			t.Logf("%s: paused %v, %d bytes, note %q\n%s", tc.name, res.Paused.Round(time.Millisecond), out.Len(), res.Note, head(out.String(), 12))
			if !hasLine(out.String(), tc.want...) {
				t.Errorf("no line with %q in the stacks", tc.want)
			}
			want := Result{Kind: KindStacks, Runtime: tc.runtime, Tool: tc.tool, Ended: tc.ended, Format: "txt"}
			got := res
			got.Paused, got.Note = 0, ""
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
			if !tc.ended && (res.Paused <= 0 || !a.running()) {
				t.Errorf("paused %v, running %v: want a pause and the program running on", res.Paused, a.running())
			}
		})
	}
}

const javaSleeping = `public class Sleeper {
    static void sleepInNamedMethod() throws InterruptedException {
        System.out.println("ready");
        Thread.sleep(600_000);
    }
    public static void main(String[] args) throws InterruptedException {
        sleepInNamedMethod();
    }
}
`

func head(s string, lines int) string {
	parts := strings.SplitN(s, "\n", lines+1)
	if len(parts) > lines {
		parts = parts[:lines]
	}
	return strings.Join(parts, "\n")
}

// TestStacksOfGoNeedAllowExit refuses SIGQUIT unless asked, and the
// program runs on.
func TestStacksOfGoNeedAllowExit(t *testing.T) {
	a := startGo(t)
	_, err := Take(context.Background(), KindStacks, a.pid(), &bytes.Buffer{}, Options{Output: a.outputFrom})
	var unsupported *UnsupportedError
	if !errors.As(err, &unsupported) || !unsupported.NeedsAllowExit {
		t.Errorf("Take = %v, want an UnsupportedError that needs AllowExit", err)
	}
	if why := a.notRunning(); why != "" {
		t.Errorf("the Go program does not run after a refused dump: %s", why)
	}
}

// TestStacksOfIdleNodeSayItIsIdle: a pause has no JavaScript to stop in
// while the event loop waits; Take says so instead of waiting for the
// next timer, and closes the inspector it opened.
func TestStacksOfIdleNodeSayItIsIdle(t *testing.T) {
	a := startNode(t, `setInterval(() => {}, 60000); console.log('ready');`)
	before := len(listeners(a.pid()))
	var out bytes.Buffer
	start := time.Now()
	res, err := Take(context.Background(), KindStacks, a.pid(), &out, Options{})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second || !strings.Contains(out.String(), "no JavaScript was running") {
		t.Errorf("Take took %v and wrote %q, want the idle loop said at once", d, out.String())
	}
	waitListeners(t, a.pid(), before)
	if res.Note == "" || strings.Contains(res.Note, "stays open") {
		t.Errorf("Note = %q, want the idle loop said, and no inspector left open", res.Note)
	}
}

// TestInspectorOfBusyNodeClosesWhenItYields: a loop that never yields
// cannot run the inspector's close, which the Result says; once the loop
// yields, the inspector closes.
func TestInspectorOfBusyNodeClosesWhenItYields(t *testing.T) {
	a := startNode(t, `const fs = require('fs');
function spinUntilStopped() {
  console.log('ready');
  while (!fs.existsSync('stop')) {}
}
spinUntilStopped();
setInterval(() => {}, 60000);
`)
	before := len(listeners(a.pid()))
	res, err := Take(context.Background(), KindStacks, a.pid(), &bytes.Buffer{}, Options{})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if !strings.Contains(res.Note, "stays open") || len(listeners(a.pid())) == before {
		t.Errorf("Note = %q, listening on %v: want the inspector open and said to be", res.Note, listeners(a.pid()))
	}
	if err := os.WriteFile(filepath.Join(a.cmd.Dir, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitListeners(t, a.pid(), before)
}

// waitListeners polls until pid listens on n addresses.
func waitListeners(t *testing.T, pid, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(listeners(pid)) != n {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d listens on %v, want %d addresses as before the dump", pid, listeners(pid), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExitOnSignalIsReported: a node program that exits on SIGUSR1 (it
// took the signal for itself) is reported as exited at once, not after
// the wait for its inspector.
func TestExitOnSignalIsReported(t *testing.T) {
	a := startNode(t, `process.on('SIGUSR1', () => process.exit(3)); setInterval(() => {}, 1000); console.log('ready');`)
	start := time.Now()
	_, err := Take(context.Background(), KindStacks, a.pid(), &bytes.Buffer{}, Options{})
	if !errors.Is(err, ErrExited) {
		t.Errorf("Take = %v, want ErrExited", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Take took %v to see the exit", d)
	}
}

// TestMissingToolSaysWhatToInstall looks the tools up in a PATH without
// them, or with a gdb whose py-bt is missing.
func TestMissingToolSaysWhatToInstall(t *testing.T) {
	empty := t.TempDir()
	noPyBt := t.TempDir()
	fakeGDB := "#!/bin/sh\necho 'Undefined command: \"py-bt\".  Try \"help\".' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(noPyBt, "gdb"), []byte(fakeGDB), 0o755); err != nil {
		t.Fatal(err)
	}
	pythonHint := "install py-spy (pip install py-spy), or gdb with the interpreter's debug package for gdb's py-bt (apt-get install gdb " + pythonDbg() + ")"
	for _, tc := range []struct {
		name  string
		kind  Kind
		start func(*testing.T) *app
		path  string
		want  MissingToolError
	}{
		{"core", KindCore, startSleep, empty, MissingToolError{Tool: "gcore", Runtime: RuntimeNative, Install: "install gdb, which ships gcore (apt-get install gdb)"}},
		{"native stacks", KindStacks, startSleep, empty, MissingToolError{Tool: "gdb", Runtime: RuntimeNative, Install: "apt-get install gdb"}},
		{"python stacks", KindStacks, startSystemPython, empty, MissingToolError{Tool: "py-spy or gdb py-bt", Runtime: RuntimePython, Install: pythonHint}},
		{"python stacks without py-bt", KindStacks, startSystemPython, noPyBt, MissingToolError{Tool: "gdb py-bt", Runtime: RuntimePython, Install: pythonHint}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.start(t)
			_, err := Take(context.Background(), tc.kind, a.pid(), &bytes.Buffer{}, Options{Path: tc.path})
			var missing *MissingToolError
			if !errors.As(err, &missing) {
				t.Fatalf("Take = %v, want a MissingToolError", err)
			}
			if diff := cmp.Diff(tc.want, *missing); diff != "" {
				t.Errorf("MissingToolError (-want +got):\n%s", diff)
			}
		})
	}
}

func startSleep(t *testing.T) *app {
	requireTools(t, "sh")
	return startApp(t, "sh", "-c", "echo ready; exec sleep 600")
}

func startSystemPython(t *testing.T) *app { return startPython(t, pythonSleeping) }

// pythonDbg is the debug package of the system interpreter.
func pythonDbg() string {
	exe, err := filepath.EvalSymlinks(systemPython)
	if err != nil {
		return "python3-dbg"
	}
	return filepath.Base(exe) + "-dbg"
}

// TestDetectNamesTheRuntime runs a program of each runtime.
func TestDetectNamesTheRuntime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(*testing.T) *app
		want  Runtime
	}{
		{"node", func(t *testing.T) *app { return startNode(t, nodeIdle) }, RuntimeNode},
		{"python", startSystemPython, RuntimePython},
		{"go", startGo, RuntimeGo},
		{"native", startSleep, RuntimeNative},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.start(t)
			got, err := Detect(a.pid())
			if err != nil || got != tc.want {
				t.Errorf("Detect = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
