package procdump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// takeStacks writes the stacks of the process's threads (goroutines for
// Go, JavaScript frames for node) as text.
func takeStacks(t *target, w io.Writer, opt Options, res *Result) error {
	switch res.Runtime {
	case RuntimeNode:
		return nodeStacks(t, w, res)
	case RuntimePython:
		return pythonStacks(t, w, opt, res)
	case RuntimeGo:
		return goStacks(t, w, opt, res)
	case RuntimeJVM:
		return jvmStacks(t, w, opt, res)
	default:
		return gdbStacks(t, w, opt, res)
	}
}

// gdbStacks prints the native backtrace of every thread.
func gdbStacks(t *target, w io.Writer, opt Options, res *Result) error {
	res.Tool = "gdb"
	gdb, err := opt.lookPath("gdb")
	if err != nil {
		return &MissingToolError{Tool: "gdb", Runtime: res.Runtime, Install: "apt-get install gdb"}
	}
	run, err := runGDB(t, opt, gdb, "thread apply all bt")
	res.Paused = run.elapsed
	if err != nil {
		return err
	}
	_, err = w.Write(run.stdout.Bytes())
	return err
}

// runGDB attaches gdb to the process, runs one command and detaches.
func runGDB(t *target, opt Options, gdb, command string) (*toolRun, error) {
	return runTool(t.live, t, opt, nil, gdb, "-p", strconv.Itoa(t.pid), "-batch", "-nx", "-ex", "set pagination off", "-ex", command)
}

// pythonStacks prefers py-spy, which reads the interpreter's memory
// without symbols; gdb's py-bt needs the interpreter's debug package,
// whose gdb extension defines the command.
func pythonStacks(t *target, w io.Writer, opt Options, res *Result) error {
	missing := &MissingToolError{Tool: "py-spy or gdb py-bt", Runtime: res.Runtime, Install: pythonInstall(t.pid)}
	if pyspy, err := opt.lookPath("py-spy"); err == nil {
		res.Tool = "py-spy"
		run, err := runTool(t.live, t, opt, nil, pyspy, "dump", "--pid", strconv.Itoa(t.pid))
		res.Paused = run.elapsed
		if err != nil {
			return err
		}
		_, err = w.Write(run.stdout.Bytes())
		return err
	}
	gdb, err := opt.lookPath("gdb")
	if err != nil {
		return missing
	}
	res.Tool = "gdb py-bt"
	run, err := runGDB(t, opt, gdb, "thread apply all py-bt")
	res.Paused = run.elapsed
	out := run.stdout.Bytes()
	pyBt := bytes.Contains(out, []byte(`File "`))
	var failed *toolFailedError
	if !pyBt && (err == nil || errors.As(err, &failed)) && pyBtMissing(out, run.stderr.String()) {
		missing.Tool = "gdb py-bt"
		return missing
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// pyBtMissing reads gdb's answer to py-bt: an undefined command (no
// extension loaded) or no frame found (no debug symbols for it to read
// the interpreter's frames by).
func pyBtMissing(stdout []byte, stderr string) bool {
	for _, s := range []string{`Undefined command: "py-bt"`, "Unable to locate python frame"} {
		if bytes.Contains(stdout, []byte(s)) || strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// pythonInstall says what to install for the stacks of the interpreter
// pid runs: its own version's debug package on Debian.
func pythonInstall(pid int) string {
	dbg := "python3-dbg"
	if exe, err := exePath(pid); err == nil {
		if v := strings.TrimSuffix(filepath.Base(exe), "d"); strings.Contains(v, ".") {
			dbg = v + "-dbg"
		}
	}
	return "install py-spy (pip install py-spy), or gdb with the interpreter's debug package for gdb's py-bt (apt-get install gdb " + dbg + ")"
}

// jvmStacks has jcmd print the threads. The JVM's attach mechanism only
// answers its own user, so jcmd runs as the process's user.
func jvmStacks(t *target, w io.Writer, opt Options, res *Result) error {
	res.Tool = "jcmd"
	jcmd, err := findJcmd(t.pid, opt)
	if err != nil {
		return &MissingToolError{Tool: "jcmd", Runtime: res.Runtime, Install: "install the JDK of the app's java (jcmd is in its bin/), e.g. apt-get install openjdk-17-jdk-headless"}
	}
	cred, err := sameUser(t.pid)
	if err != nil {
		return err
	}
	run, err := runTool(t.live, t, opt, cred, jcmd, strconv.Itoa(t.pid), "Thread.print")
	res.Paused = run.elapsed
	if err != nil {
		// jcmd says why on stdout.
		var failed *toolFailedError
		if errors.As(err, &failed) && failed.Stderr == "" {
			failed.Stderr = tail(run.stdout.String())
		}
		return err
	}
	_, err = w.Write(run.stdout.Bytes())
	return err
}

// findJcmd prefers the jcmd beside the process's java, of the same JDK.
func findJcmd(pid int, opt Options) (string, error) {
	if exe, err := exePath(pid); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "jcmd"); isExecutable(p) {
			return p, nil
		}
	}
	return opt.lookPath("jcmd")
}

// sameUser is the credential to run a tool as the process's user, nil
// when gatehouse already is that user or cannot change user.
func sameUser(pid int) (*syscall.Credential, error) {
	fi, err := os.Stat(procPath(pid, ""))
	if err != nil {
		return nil, fmt.Errorf("owner of pid %d: %w", pid, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 || int(st.Uid) == os.Geteuid() {
		return nil, nil
	}
	return &syscall.Credential{Uid: st.Uid, Gid: st.Gid}, nil
}

func tail(s string) string {
	if len(s) > stderrTail {
		return s[len(s)-stderrTail:]
	}
	return s
}

// maxGoDump bounds what is read of a Go program's output after SIGQUIT.
const maxGoDump = 64 << 20

// goStacks sends SIGQUIT, on which the Go runtime prints every goroutine
// to stderr and exits with status 2, waits for the exit and copies the
// dump from the process's captured output.
// goStacksRefused is the refusal of a Go program's stacks without
// AllowExit.
func goStacksRefused(rt Runtime) error {
	return &UnsupportedError{Kind: KindStacks, Runtime: rt, NeedsAllowExit: true, Reason: "a Go program prints its goroutines only on SIGQUIT, " +
		"which ends it; allow the dump to end the process to take them anyway, take a core instead, " +
		"or have the app serve net/http/pprof and read /debug/pprof/goroutine?debug=2"}
}

func goStacks(t *target, w io.Writer, opt Options, res *Result) error {
	res.Tool = "SIGQUIT"
	if !opt.AllowExit {
		return goStacksRefused(res.Runtime)
	}
	if opt.Output == nil {
		return &UnsupportedError{Kind: KindStacks, Runtime: res.Runtime, Reason: "the goroutines go to the process's stderr and no Output was given to read them from"}
	}
	out, err := opt.Output()
	if err != nil {
		return fmt.Errorf("process output: %w", err)
	}
	if c, ok := out.(io.Closer); ok {
		defer c.Close()
	}
	if err := t.signal(syscall.SIGQUIT); err != nil {
		return fmt.Errorf("SIGQUIT: %w", err)
	}
	<-t.live.Done()
	if !t.exited() {
		return fmt.Errorf("no exit after SIGQUIT (does the program handle SIGQUIT itself?): %w", context.Cause(t.live))
	}
	res.Ended = true
	return copyGoroutines(w, out)
}

// copyGoroutines copies the output from the runtime's first line of the
// dump ("SIGQUIT: quit", else the first "goroutine N [...]") on.
func copyGoroutines(w io.Writer, out io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(out, maxGoDump))
	if err != nil {
		return fmt.Errorf("process output: %w", err)
	}
	start := bytes.Index(b, []byte("SIGQUIT: quit"))
	if start < 0 {
		start = goroutineLine(b)
	}
	if start < 0 {
		return errors.New("no goroutine dump in the process's output after SIGQUIT")
	}
	_, err = w.Write(b[start:])
	return err
}

// goroutineLine is the offset of the first line starting "goroutine ".
func goroutineLine(b []byte) int {
	if bytes.HasPrefix(b, []byte("goroutine ")) {
		return 0
	}
	if i := bytes.Index(b, []byte("\ngoroutine ")); i >= 0 {
		return i + 1
	}
	return -1
}
