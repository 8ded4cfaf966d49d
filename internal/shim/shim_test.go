package shim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/shim"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// This test binary imports package shim, so it is a shim itself when
// started with shim.Env set: shim.Start runs it as Spec.Exe.
func TestMain(m *testing.M) {
	if os.Getenv(appEnv) != "" {
		// The app of TestAppInheritsNoShimDescriptor: what are 3 and 4?
		for _, fd := range []string{"3", "4"} {
			target, err := os.Readlink("/proc/self/fd/" + fd)
			if err == nil {
				fmt.Println(fd, target)
			}
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for a process or a pipe: generous, for a busy
// machine.
const wait = 10 * time.Second

// running is a shim started by a test, reaped by its own goroutine and
// killed (app group and shim) when the test ends.
type running struct {
	*shim.Started
	statusPath string
	done       chan struct{} // closed once the shim is reaped
}

// spec runs argv (argv[0] found on PATH) in a test directory, with env
// plus PATH.
func spec(t *testing.T, argv []string, env ...string) shim.Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// PATH for sh's own look-ups; nothing else of the test's environment.
	env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	return shim.Spec{Exe: exe, Path: path, Argv: argv, Dir: dir, Env: env, StatusPath: filepath.Join(dir, "app.exit")}
}

func start(t *testing.T, sp shim.Spec) *running {
	t.Helper()
	st, err := shim.Start(sp)
	if err != nil {
		t.Fatalf("shim.Start(%q): %v", sp.Argv, err)
	}
	r := &running{Started: st, statusPath: sp.StatusPath, done: make(chan struct{})}
	go func() {
		st.Cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			syscall.Kill(-r.PID, syscall.SIGKILL)
			syscall.Kill(r.ShimPID, syscall.SIGKILL)
			<-r.done
		}
		r.Output.Close()
	})
	return r
}

// reaped waits for the shim to end and returns how it did.
func (r *running) reaped(t *testing.T) *os.ProcessState {
	t.Helper()
	select {
	case <-r.done:
		return r.Cmd.ProcessState
	case <-time.After(wait):
		t.Fatalf("shim %d (app %d) still runs after %s", r.ShimPID, r.PID, wait)
		return nil
	}
}

// readAll reads f to its end, or fails the test if that takes too long.
func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	f.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read the output: %v (got %q)", err, b)
	}
	return string(b)
}

// gate makes a FIFO an app can block on (read x < "$GATE") and returns
// its path and the function that lets the app through.
func gate(t *testing.T) (string, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gate")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		t.Helper()
		// Non-blocking: opening fails (ENXIO) until the app opened its
		// end, instead of hanging for good if it never does.
		var f *os.File
		testutil.WaitFor(t, wait, "the app to open "+path, func() bool {
			var err error
			f, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			return err == nil
		})
		defer f.Close()
		if _, err := f.WriteString("go\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// statField returns field n (1-based, as proc(5) numbers them) of
// /proc/PID/stat, counting after the command name.
func statField(t *testing.T, pid, n int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	v, err := strconv.Atoi(f[n-3])
	if err != nil {
		t.Fatalf("/proc/%d/stat field %d: %v", pid, n, err)
	}
	return v
}

func intp(i int) *int { return &i }

// How the app ends is what the status file says, whoever ended it; the
// shim forwards the signals it handles to the app's process group, and
// exits 0 once it wrote the status.
func TestStatus(t *testing.T) {
	sh := func(script string) []string { return []string{"sh", "-c", script} }
	kill := func(sig syscall.Signal, shimToo bool) func(*testing.T, *running) {
		return func(t *testing.T, r *running) {
			pid := r.PID
			if shimToo {
				pid = r.ShimPID
			}
			if err := syscall.Kill(pid, sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name string
		argv []string
		// act ends the app; release lets a gated app through.
		act     func(t *testing.T, r *running)
		release bool
		wantOut string
		want    shim.Status
	}{
		{name: "exit code and output", argv: sh(`read x < "$GATE"; echo out; echo err >&2; exit 7`), release: true,
			wantOut: "out\nerr\n", want: shim.Status{Code: intp(7)}},
		{name: "exit 0", argv: sh(`read x < "$GATE"`), release: true, want: shim.Status{Code: intp(0)}},
		{name: "app killed", argv: []string{"sleep", "30"}, act: kill(syscall.SIGKILL, false), want: shim.Status{Signal: "SIGKILL"}},
		{name: "SIGTERM to the shim", argv: []string{"sleep", "30"}, act: kill(syscall.SIGTERM, true), want: shim.Status{Signal: "SIGTERM"}},
		{name: "SIGINT to the shim", argv: []string{"sleep", "30"}, act: kill(syscall.SIGINT, true), want: shim.Status{Signal: "SIGINT"}},
		{name: "SIGHUP to the shim", argv: []string{"sleep", "30"}, act: kill(syscall.SIGHUP, true), want: shim.Status{Signal: "SIGHUP"}},
		{name: "SIGQUIT to the shim", argv: []string{"sleep", "30"}, act: kill(syscall.SIGQUIT, true), want: shim.Status{Signal: "SIGQUIT"}},
		{name: "app handles SIGTERM", argv: sh(`trap 'echo bye; exit 3' TERM; echo ready; { while :; do sleep 1 & wait $!; done; } 2>/dev/null`),
			act: func(t *testing.T, r *running) {
				// Wait for the trap to be set: the app says so.
				buf := make([]byte, 6)
				r.Output.SetReadDeadline(time.Now().Add(wait))
				if _, err := io.ReadFull(r.Output, buf); err != nil || string(buf) != "ready\n" {
					t.Fatalf("app's first output: %q, %v", buf, err)
				}
				kill(syscall.SIGTERM, true)(t, r)
			}, wantOut: "bye\n", want: shim.Status{Code: intp(3)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gatePath, release := gate(t)
			before := time.Now()
			r := start(t, spec(t, tc.argv, "GATE="+gatePath))
			// The app runs (gated or sleeping), as the shim's child.
			if ppid := statField(t, r.PID, 4); ppid != r.ShimPID {
				t.Errorf("app %d has parent %d, want the shim %d", r.PID, ppid, r.ShimPID)
			}
			ids := []procid.ID{{PID: r.PID, StartTicks: r.StartTicks}, {PID: r.ShimPID, StartTicks: r.ShimStartTicks}}
			want := []procid.ID{procid.Of(r.PID), procid.Of(r.ShimPID)}
			if diff := cmp.Diff(want, ids); diff != "" || r.StartTicks == 0 {
				t.Errorf("Start's app and shim IDs (-/proc +Start):\n%s", diff)
			}
			if tc.release {
				release()
			}
			if tc.act != nil {
				tc.act(t, r)
			}
			if got := readAll(t, r.Output); got != tc.wantOut {
				t.Errorf("output = %q, want %q", got, tc.wantOut)
			}
			if ps := r.reaped(t); ps.ExitCode() != 0 {
				t.Errorf("shim ended %v, want exit code 0", ps)
			}
			st, err := shim.ReadStatus(r.statusPath)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.PID = r.PID
			if diff := cmp.Diff(tc.want, st, cmpopts.IgnoreFields(shim.Status{}, "At")); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if st.At.Before(before.Add(-time.Second)) || st.At.After(time.Now().Add(time.Second)) || st.At.Location() != time.UTC {
				t.Errorf("status time %v, not between the start %v and now, in UTC", st.At, before)
			}
			if _, err := os.Stat(r.statusPath + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary status file left: %v", err)
			}
		})
	}
}

// A signal to the shim reaches every process of the app's group, not
// only the app: a shell's child goes too.
func TestSignalReachesGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	r := start(t, spec(t, []string{"sh", "-c", `sleep 30 & echo $! > "$PIDFILE.tmp"; mv "$PIDFILE.tmp" "$PIDFILE"; wait`}, "PIDFILE="+pidFile))
	var child int
	testutil.WaitFor(t, wait, "the app to write its child's pid", func() bool {
		b, err := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && child > 0
	})
	childID := procid.Of(child)
	if pg := statField(t, child, 5); pg != r.PID {
		t.Fatalf("the app's child %d is in group %d, want the app's %d", child, pg, r.PID)
	}
	if err := syscall.Kill(r.ShimPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r.reaped(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := procid.Wait(ctx, childID); err != nil {
		t.Errorf("the app's child %d outlived a SIGTERM to the shim: %v", child, err)
	}
	if st, err := shim.ReadStatus(r.statusPath); err != nil || st.Signal != "SIGTERM" {
		t.Errorf("status = %+v, %v; want SIGTERM", st, err)
	}
}

// A shim killed outright takes its app along (PR_SET_PDEATHSIG) and
// leaves no status: the adopter learns the app was lost, not how it
// ended.
func TestShimKilled(t *testing.T) {
	r := start(t, spec(t, []string{"sleep", "30"}))
	app := procid.ID{PID: r.PID, StartTicks: r.StartTicks}
	if err := syscall.Kill(r.ShimPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ps := r.reaped(t); ps.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("shim ended %v, want killed", ps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := procid.Wait(ctx, app); err != nil {
		t.Fatalf("app %d outlived its killed shim: %v", r.PID, err)
	}
	if got := readAll(t, r.Output); got != "" {
		t.Errorf("output = %q", got)
	}
	if _, err := shim.ReadStatus(r.statusPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadStatus after the shim was killed: %v, want ErrNotExist", err)
	}
}

// children lists this process's children, zombies included.
func children(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, pid := range procid.List() {
		if st, err := procid.ReadStat(pid); err == nil && st.PPID == os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// When the app cannot start, Start says why in the shim's words and
// leaves nothing running: no shim, no status file.
func TestStartFails(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    func(dir string) shim.Spec
		wantErr string
	}{
		{"missing program", func(dir string) shim.Spec {
			return shim.Spec{Path: "/nonexistent/gatehouse-test-app", Argv: []string{"gatehouse-test-app"}, Dir: dir}
		}, "/nonexistent/gatehouse-test-app"},
		{"program not executable", func(dir string) shim.Spec {
			os.WriteFile(filepath.Join(dir, "app.sh"), []byte("#!/bin/sh\n"), 0o644)
			return shim.Spec{Path: filepath.Join(dir, "app.sh"), Argv: []string{"app.sh"}, Dir: dir}
		}, "permission denied"},
		{"no argv", func(dir string) shim.Spec { return shim.Spec{Path: sh, Dir: dir} }, "no command"},
		{"missing directory", func(dir string) shim.Spec {
			return shim.Spec{Path: sh, Argv: []string{"sh"}, Dir: filepath.Join(dir, "gone")}
		}, filepath.Join("gone")},
		{"missing shim executable", func(dir string) shim.Spec {
			return shim.Spec{Exe: filepath.Join(dir, "no-gatehouse"), Path: sh, Argv: []string{"sh"}, Dir: dir}
		}, "no-gatehouse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sp := tc.spec(dir)
			if sp.Exe == "" {
				sp.Exe = exe
			}
			sp.StatusPath = filepath.Join(dir, "app.exit")
			st, err := shim.Start(sp)
			if err == nil {
				syscall.Kill(-st.PID, syscall.SIGKILL)
				st.Cmd.Process.Kill()
				st.Cmd.Wait()
				st.Output.Close()
				t.Fatalf("Start succeeded (app %d)", st.PID)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Start: %v, want it to name %q", err, tc.wantErr)
			}
			if left := children(t); len(left) > 0 {
				t.Errorf("processes left running (or unreaped) after a failed Start: %v", left)
			}
			if _, err := os.Stat(sp.StatusPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("status file after a failed Start: %v", err)
			}
		})
	}
}

// After the process that started the shim closed its end of the output
// pipe (it died, or handed over), what the app writes waits in the pipe,
// which the shim holds open, and an adopter reads it through OpenOutput.
func TestOpenOutputAfterReaderClosed(t *testing.T) {
	gate1, release1 := gate(t)
	gate2, release2 := gate(t)
	r := start(t, spec(t, []string{"sh", "-c", `read x < "$GATE1"; echo late; read x < "$GATE2"; echo later`}, "GATE1="+gate1, "GATE2="+gate2))
	// As if gatehouse had died.
	r.Output.Close()
	// The app writes with no reader but the shim's: no SIGPIPE, no loss.
	release1()
	f, err := shim.OpenOutput(r.ShimPID)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(f, buf); err != nil || string(buf) != "late\n" {
		t.Fatalf("reopened output: %q, %v; want %q", buf, err, "late\n")
	}
	// The reopened pipe serves deadlines: an adopter can stop reading.
	f.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := f.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read with nothing written: %d bytes, %v; want a deadline error", n, err)
	}
	release2()
	if got := readAll(t, f); got != "later\n" {
		t.Errorf("rest of the output = %q", got)
	}
	if ps := r.reaped(t); ps.ExitCode() != 0 {
		t.Errorf("shim ended %v", ps)
	}
	if st, err := shim.ReadStatus(r.statusPath); err != nil || st.Code == nil || *st.Code != 0 {
		t.Errorf("status = %+v, %v", st, err)
	}
}

func TestOpenOutputFails(t *testing.T) {
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	noFD3 := exec.Command("sleep", "30")
	if err := noFD3.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { noFD3.Process.Kill(); noFD3.Wait() }()
	// Its dynamic loader uses descriptor 3 for a moment as it starts: wait
	// until it is sleep itself, asleep (in nanosleep, past the loader),
	// with no descriptor 3.
	proc := "/proc/" + strconv.Itoa(noFD3.Process.Pid)
	testutil.WaitFor(t, wait, "sleep to run, asleep, without descriptor 3", func() bool {
		exe, _ := os.Readlink(proc + "/exe")
		stat, _ := os.ReadFile(proc + "/stat")
		i := strings.LastIndexByte(string(stat), ')')
		_, err := os.Lstat(proc + "/fd/3")
		return strings.HasSuffix(exe, "/sleep") && i > 0 && i+2 < len(stat) && stat[i+2] == 'S' && errors.Is(err, os.ErrNotExist)
	})
	for _, tc := range []struct {
		name string
		pid  int
	}{{"ended process", ended.Process.Pid}, {"process without the pipe", noFD3.Process.Pid}} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := shim.OpenOutput(tc.pid)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), strconv.Itoa(tc.pid)) {
				t.Errorf("OpenOutput(%d) = %v, want ErrNotExist naming the pid", tc.pid, err)
			}
		})
	}
}

// openFDs lists pid's open descriptors.
func openFDs(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		fds = append(fds, n)
	}
	slices.Sort(fds)
	return fds
}

// passedOn lists this process's descriptors above 2 without
// close-on-exec: inherited from whatever started the tests, every child
// gets them, whatever the shim does.
func passedOn(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, fd := range openFDs(t, os.Getpid()) {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fd > 2 && err == nil && flags&unix.FD_CLOEXEC == 0 {
			out = append(out, fd)
		}
	}
	return out
}

// The app gets the environment it was given and no trace of the shim: not
// its variable, not its descriptors. It leads its own process group, so
// that gatehouse can signal it and its children at once, and the shim
// leads its own session, outside that group and away from the terminal.
func TestAppIsolation(t *testing.T) {
	r := start(t, spec(t, []string{"sleep", "30"}, "APP_VAR=1"))
	// Polled: until the app has exec'd, /proc shows the shim's
	// environment, or none at all; and for a moment after its exe is the
	// app's, an empty one, until the kernel has laid out the new stack.
	var environ []byte
	testutil.Eventually(10*time.Second, func() bool {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(r.PID) + "/exe")
		var err error
		environ, err = os.ReadFile("/proc/" + strconv.Itoa(r.PID) + "/environ")
		return err == nil && filepath.Base(exe) == "sleep" && len(environ) > 0
	})
	vars := strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
	if !slices.Contains(vars, "APP_VAR=1") || slices.ContainsFunc(vars, func(kv string) bool { return strings.HasPrefix(kv, shim.Env+"=") }) {
		t.Errorf("app environment %q: want APP_VAR=1 and no %s", vars, shim.Env)
	}
	// Polled: the app's dynamic loader holds a descriptor or two for a
	// moment as it starts.
	wantFDs := append([]int{0, 1, 2}, passedOn(t)...)
	var diff string
	testutil.Eventually(2*time.Second, func() bool {
		diff = cmp.Diff(wantFDs, openFDs(t, r.PID))
		return diff == ""
	})
	if diff != "" {
		t.Errorf("app's open descriptors (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		what      string
		pid, n    int
		want      int
		wantsName string
	}{
		{"app's process group", r.PID, 5, r.PID, "the app"},
		{"app's session", r.PID, 6, r.ShimPID, "the shim's"},
		{"shim's process group", r.ShimPID, 5, r.ShimPID, "the shim"},
		{"shim's session", r.ShimPID, 6, r.ShimPID, "the shim"},
	} {
		if got := statField(t, tc.pid, tc.n); got != tc.want {
			t.Errorf("%s = %d, want %s (%d)", tc.what, got, tc.wantsName, tc.want)
		}
	}
	if sid := statField(t, os.Getpid(), 6); sid == r.ShimPID {
		t.Errorf("the shim is in the test's session %d", sid)
	}
}

// The shim is the test binary here (gatehouse in production): its memory
// is the Go runtime and what the packages initialised before package shim
// hold. Logged for the record; the bound only catches a gross regression.
func TestShimMemory(t *testing.T) {
	r := start(t, spec(t, []string{"sleep", "30"}))
	rss := testutil.VmRSS(t, r.ShimPID)
	t.Logf("shim VmRSS while its app runs: %d KiB", rss>>10)
	if rss > 64<<20 {
		t.Errorf("shim VmRSS = %d MiB, want < 64 MiB", rss>>20)
	}
}

// A shim's descriptor 3 stays non-blocking only if Start passes a
// duplicate: the read end Start returns must still serve deadlines.
func TestOutputServesDeadlines(t *testing.T) {
	r := start(t, spec(t, []string{"sleep", "30"}))
	// Through Control: Fd would itself put the pipe into blocking mode.
	rc, err := r.Output.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	if err := rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Error("the output pipe's read end is blocking: read deadlines would not end a read")
	}
	r.Output.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := r.Output.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read with nothing written: %v, want a deadline error", err)
	}
}
