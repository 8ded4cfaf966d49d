// Package shim owns the small process that stands between gatehouse and
// each app process it runs, and the protocol gatehouse speaks with it.
//
// An app process is not gatehouse's child but the shim's: gatehouse starts
// the shim (its own executable again, told so by the GATEHOUSE_SHIM
// variable), and the shim starts the app, waits for it and writes how it
// ended to a status file. So the app outlives gatehouse: when gatehouse is
// upgraded, restarted or killed, the shim and its app run on, and the next
// gatehouse adopts them and still learns the exit code, which only a
// parent can read (waitid works on children only). containerd's shims and
// Podman's conmon exist for the same reason.
//
//	gatehouse ──starts──▶ shim (own session) ──starts──▶ app (own process group)
//	    ▲                   │ holds the output pipe's read end (fd 3)
//	    └── reads output ───┤ writes DIR/ID.exit when the app ends, then exits
//	                          once its last output was read (or a minute on)
//
// The shim's descriptors: 0 is /dev/null; 1 and 2 are the write end of the
// app's output pipe, which the app gets as its stdout and stderr and the
// shim closes once the app runs, so the pipe ends when the app's writers
// do; 3 is that pipe's read end, which the shim only holds, so that the
// pipe outlives a gatehouse that died and an adopter can open it again
// through /proc/SHIM/fd/3; 4 is the report pipe, on which the shim writes
// "PID STARTTICKS\n" once the app started (or "error: MESSAGE\n") and
// which it then closes.
//
// The shim forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to the app's
// process group and ignores nothing: a handled signal goes back to its
// default in the app. The app dies with the shim (PR_SET_PDEATHSIG), so a
// killed shim never leaves an app that nobody can supervise.
package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/fds"
	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/reaper"
)

// Env is the variable that turns an executable that imports this package
// into a shim; its value is the status file's path.
const Env = "GATEHOUSE_SHIM"

// Fixed descriptor numbers in the shim (see the package doc).
const (
	fdOutputRead = 3
	fdReport     = 4
)

// A binary that imports this package (gatehouse, and every test binary of
// a package that runs apps) becomes the shim when started with Env set,
// before its main or its tests run. The check runs this early so that the
// shim costs no more than the runtime and the packages initialised before
// this one.
func init() {
	if path := os.Getenv(Env); path != "" {
		// Straight to exit_group, past os.Exit's hooks: the shim has
		// nothing to flush, and the exit is how gatehouse learns that the
		// app's status is written, so it must not wait (a race-detector
		// build sleeps a second in os.Exit).
		syscall.Exit(run(path, os.Args[1:]))
	}
}

// Status is how an app process ended, as the shim writes it.
type Status struct {
	PID int `json:"pid"`
	// Code is the exit code; nil when a signal killed the process.
	Code *int `json:"code,omitempty"`
	// Signal is the signal's name (SIGSEGV) when one killed it.
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

// run is the shim's main: args are the program's path, then its argv.
func run(statusPath string, args []string) int {
	report := os.NewFile(fdReport, "report")
	// Inherited without close-on-exec (exec passes them so): set it, or
	// the app and everything it starts would hold the output pipe's read
	// end and the report pipe.
	syscall.CloseOnExec(fdOutputRead)
	syscall.CloseOnExec(fdReport)
	if len(args) < 2 {
		fmt.Fprintln(report, "error: shim: no command")
		return 127
	}
	// PR_SET_PDEATHSIG fires when the thread that started the app ends:
	// keep the goroutine that starts it on one thread for good.
	runtime.LockOSThread()
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, Env+"=") {
			env = append(env, kv)
		}
	}
	cmd := &exec.Cmd{Path: args[0], Args: args[1:], Env: env, Stdout: os.Stdout, Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
	// Handled, not ignored: an ignored signal would stay ignored in the app.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(report, "error: %v\n", err)
		return 127
	}
	pid := cmd.Process.Pid
	ticks := procid.Of(pid).StartTicks
	fmt.Fprintf(report, "%d %d\n", pid, ticks)
	report.Close()
	// From now on only the app writes to the output pipe.
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		unix.Dup2(int(null.Fd()), 1)
		unix.Dup2(int(null.Fd()), 2)
		null.Close()
	}
	go func() {
		for s := range sigs {
			syscall.Kill(-pid, s.(syscall.Signal))
		}
	}()
	cmd.Wait()
	// The app is reaped: its pid (and group id) may be reused from now
	// on, so nothing more is forwarded; a signal now ends the shim.
	signal.Reset(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	st := Status{PID: pid, At: time.Now().UTC()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Signal = unix.SignalName(ws.Signal())
	} else {
		code := cmd.ProcessState.ExitCode()
		st.Code = &code
	}
	err := writeStatus(statusPath, st)
	awaitRead(fdOutputRead, outputKeep)
	if err != nil {
		return 1
	}
	return 0
}

// outputKeep bounds how long a shim whose app ended keeps the output
// pipe for a gatehouse to read: long enough for one to be restarted or
// for an upgrade's successor to adopt the instance.
const outputKeep = time.Minute

// awaitRead returns once what the app wrote last has been read from the
// pipe whose read end is fd, or after d. This process holds the pipe's
// last read end when no gatehouse reads it (it left the app to a
// successor, or was killed): the pipe, and the app's last output in it
// (a crash's panic), end with this process. A gatehouse that reads
// drains it at once; so the wait ends as soon as the pipe is empty or
// shrinks.
func awaitRead(fd int, d time.Duration) {
	deadline := time.Now().Add(d)
	prev := -1
	for time.Now().Before(deadline) {
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
		if err != nil || n == 0 || (prev >= 0 && n < prev) {
			return
		}
		prev = n
		time.Sleep(10 * time.Millisecond)
	}
}

// writeStatus writes st to path through a temporary file renamed over it:
// a reader sees the whole status or none.
func writeStatus(path string, st Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadStatus reads the status file at path; an error wrapping
// os.ErrNotExist when the shim wrote none (it was killed, or the app
// still runs).
func ReadStatus(path string) (Status, error) {
	var st Status
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("exit status %s: %w", path, err)
	}
	return st, nil
}

// Spec is what Start runs.
type Spec struct {
	// Exe is the shim's executable: gatehouse's own.
	Exe string
	// Path is the program, found; Argv its arguments, Argv[0] included.
	Path string
	Argv []string
	Dir  string
	Env  []string
	// StatusPath is where the shim writes the app's exit status. Its
	// directory must exist.
	StatusPath string
}

// Started is a shim and its app, just started.
type Started struct {
	Cmd *exec.Cmd
	// PID and StartTicks name the app process; ShimPID and
	// ShimStartTicks the shim.
	PID, ShimPID               int
	StartTicks, ShimStartTicks uint64
	// Output is the read end of the app's output pipe.
	Output *os.File
}

// pipeSize is the size asked for the app's output pipe.
const pipeSize = 1 << 20

// reportWait bounds how long Start waits for the shim to start the app.
const reportWait = 10 * time.Second

// Start starts a shim that starts the app of spec, and returns once the
// app process exists. The caller reaps the shim (Cmd.Wait).
func Start(spec Spec) (*Started, error) {
	// The shim starts in Dir: were it missing, exec would report the
	// shim's executable as not found.
	if spec.Dir != "" {
		if _, err := os.Stat(spec.Dir); err != nil {
			return nil, fmt.Errorf("app directory: %w", err)
		}
	}
	os.Remove(spec.StatusPath)
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	// While no gatehouse reads (a handover, a gatehouse that died), the
	// app's writes wait in the pipe, and block once it is full: make it as
	// large as the system allows a process without privileges (1 MiB by
	// default, /proc/sys/fs/pipe-max-size) rather than 64 KiB.
	if rc, err := outR.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("report pipe: %w", err)
	}
	defer repR.Close()
	cmd := exec.Command(spec.Exe, append([]string{spec.Path}, spec.Argv...)...)
	cmd.Dir = spec.Dir
	cmd.Env = append(append([]string(nil), spec.Env...), Env+"="+spec.StatusPath)
	cmd.Stdout, cmd.Stderr = outW, outW
	// The read end goes in as fd 3, to be held; the report pipe as fd 4.
	// A duplicate: exec puts the files it passes into blocking mode, and
	// the mode belongs to the pipe, which this process reads with a
	// deadline.
	held, err := fds.Dup(outR, outR.Name())
	if err != nil {
		outR.Close()
		outW.Close()
		repW.Close()
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	defer held.Close()
	cmd.ExtraFiles = []*os.File{held, repW}
	// Its own session: no terminal signal (Ctrl-C) reaches it, and it is
	// never in the process group gatehouse signals to stop the app.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = reaper.Start(cmd)
	outW.Close()
	repW.Close()
	if err != nil {
		outR.Close()
		return nil, fmt.Errorf("start shim: %w", err)
	}
	s := &Started{Cmd: cmd, ShimPID: cmd.Process.Pid, Output: outR}
	s.ShimStartTicks = procid.Of(s.ShimPID).StartTicks
	repR.SetReadDeadline(time.Now().Add(reportWait))
	line, rerr := bufio.NewReader(repR).ReadString('\n')
	if pid, ticks, ok := parseReport(line); ok {
		s.PID, s.StartTicks = pid, ticks
		return s, nil
	}
	// The shim could not start the app (or said nothing in time): it has
	// exited, or is made to.
	cmd.Process.Kill()
	reaper.Wait(cmd)
	outR.Close()
	if msg, ok := strings.CutPrefix(strings.TrimSpace(line), "error: "); ok {
		return nil, errors.New(msg)
	}
	return nil, fmt.Errorf("shim did not report the app's start: %v", rerr)
}

func parseReport(line string) (pid int, ticks uint64, ok bool) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(f[0])
	ticks, err2 := strconv.ParseUint(f[1], 10, 64)
	return pid, ticks, err1 == nil && err2 == nil && pid > 0
}

// OpenOutput opens the read end of the output pipe that shim pid holds,
// for a gatehouse adopting its app.
func OpenOutput(shimPID int) (*os.File, error) {
	p := filepath.Join("/proc", strconv.Itoa(shimPID), "fd", strconv.Itoa(fdOutputRead))
	// Non-blocking, so that the runtime's poller serves its reads and a
	// read deadline can end them.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open the output pipe of shim %d: %w", shimPID, err)
	}
	return f, nil
}
