// Package handover owns the exchange between a running gatehouse and the
// new gatehouse process it starts to replace itself (an upgrade): which
// listening sockets go across and how the new process says it is ready,
// or why it is not. It knows nothing of gatehouse's config or apps; the
// caller decides what to pass and when to call it ready.
//
// The old process starts the new one as its child with the listening
// sockets as inherited descriptors and one end of a socket pair, named in
// the environment variable GATEHOUSE_HANDOVER (JSON). The new process
// serves on the sockets it is given for the same addresses, so the
// kernel's accept queue, shared by both, never refuses a connection. It
// writes one line on the socket pair: "ready PID" once it can serve, or
// "error: MESSAGE" when it gives up. The old process answers a ready line
// with "ok", and the new one serves only then; an old process that gives
// up (its timeout, a stop) says "abort: REASON" first, so that a new
// process it could not kill (a wrapper script's child) does not serve
// beside it or, once it has exited, after it.
//
//	old ──Start──▶ new (child, fds 3..)      new: Listener(key, addr)
//	old ◀──────── "ready PID" / "error: …" ── new: Ready() / Fail(err)
//	old ──"ok" / "abort: …"─────────────────▶ new: Ready returns
//	old: stops accepting, drains, exits      new: serves on
//
// An old process that dies before it answers the ready line (killed in
// the middle of the handover) leaves nobody to serve but the new one,
// which holds the sockets: Ready then says so (ErrOldProcessGone), and
// the new process serves on. Nothing is written after the answer, so an
// old process that dies after it changes nothing for the new one.
package handover

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/fds"
	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/reaper"
)

// Env is the variable that tells a new process what it inherited.
const Env = "GATEHOUSE_HANDOVER"

// Listener is one listening socket to pass on: Key says what it is for
// (listen, tls listen, admin) and Addr is the configured address it was
// bound for, so that a successor whose config moved it binds anew. Ln
// must be the socket itself (a *net.TCPListener), not a wrapper. Another
// descriptor (a lock file, Addr its path) goes across the same way, and
// the successor takes it with File.
type Listener struct {
	Key  string
	Addr string
	Ln   syscall.Conn
}

// spec is the content of Env.
type spec struct {
	Parent    int           `json:"parent"`
	Control   int           `json:"control"`
	Listeners []listenerRef `json:"listeners"`
	// Answers: the old process answers the ready line (see the package
	// comment). An old process of a version before it does not, and its
	// successor takes a written ready line as taken.
	Answers bool `json:"answers"`
}

type listenerRef struct {
	Key  string `json:"key"`
	Addr string `json:"addr"`
	FD   int    `json:"fd"`
}

// Error is a handover that did not happen: the new process failed.
type Error struct {
	// PID is the new process; Reason says why, in its own words when it
	// said any.
	PID    int
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("the new gatehouse (pid %d) did not take over: %s", e.PID, e.Reason)
}

// Successor is a new process started by Start, not yet ready.
type Successor struct {
	cmd     *exec.Cmd
	control *os.File
	exited  chan struct{}
	// ready is the pid that said it is ready: the started process, or
	// its child when the executable is a wrapper that does not exec.
	ready int
}

// Start starts exe with args and env, giving it lns. The new process's
// output goes to stdout and stderr: the same terminal or journal as this
// one's.
func Start(exe string, args, env []string, lns []Listener, stdout, stderr *os.File) (*Successor, error) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("handover socket pair: %w", err)
	}
	// Ours non-blocking, so that the poller serves it and a deadline can
	// end a read.
	syscall.SetNonblock(pair[0], true)
	ours := os.NewFile(uintptr(pair[0]), "handover")
	theirs := os.NewFile(uintptr(pair[1]), "handover-successor")
	files := []*os.File{theirs}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	sp := spec{Parent: os.Getpid(), Control: 3, Answers: true}
	for _, l := range lns {
		f, err := fds.Dup(l.Ln, l.Key)
		if err != nil {
			ours.Close()
			return nil, fmt.Errorf("pass the %s socket: %w", l.Key, err)
		}
		sp.Listeners = append(sp.Listeners, listenerRef{Key: l.Key, Addr: l.Addr, FD: 3 + len(files)})
		files = append(files, f)
	}
	b, _ := json.Marshal(sp)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(withoutEnv(env), Env+"="+string(b))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = files
	s, err := startSuccessor(cmd, ours)
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	return s, nil
}

// startSuccessor starts cmd, which holds the other end of control, and
// reaps it once it exits.
func startSuccessor(cmd *exec.Cmd, control *os.File) (*Successor, error) {
	if err := reaper.Start(cmd); err != nil {
		return nil, err
	}
	s := &Successor{cmd: cmd, control: control, exited: make(chan struct{})}
	go func() {
		reaper.Wait(cmd)
		close(s.exited)
	}()
	return s, nil
}

// PID is the new process's pid: once it is ready, the one that said so.
func (s *Successor) PID() int {
	if s.ready > 0 {
		return s.ready
	}
	return s.cmd.Process.Pid
}

// AwaitReady waits up to timeout for the new process to say it is ready,
// and tells it to serve. On any other outcome (it says why not, exits,
// stays silent, or ctx ends first) it is told that this process gives up,
// then killed with SIGKILL, which leaves the processes it may have
// adopted running, and reaped, and the error (an *Error) says what
// happened.
func (s *Successor) AwaitReady(ctx context.Context, timeout time.Duration) error {
	defer s.control.Close()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(s.control).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var reason string
	select {
	case l := <-line:
		line = nil // its reader is done
		// Only the new process, and what it starts before it closes
		// the channel on exec, hold the channel: a pid other than its own
		// is its child's, the real gatehouse under a wrapper script.
		if rest, ok := strings.CutPrefix(l, "ready "); ok {
			if pid, err := strconv.Atoi(rest); err == nil && pid > 0 {
				s.ready = pid
				// Not checked: a successor of a version that does not
				// wait for it has closed the channel already.
				s.control.WriteString("ok\n")
				return nil
			}
		}
		reason, _ = strings.CutPrefix(l, "error: ")
		if reason == "" {
			reason = s.exitReason()
		}
	case <-t.C:
		reason = fmt.Sprintf("not ready within %s", timeout)
	case <-ctx.Done():
		reason = "called off: " + context.Cause(ctx).Error()
	}
	// Before the kill, which misses a wrapper script's child: a ready
	// line it sends from now on (or sent, not yet read) finds this, and
	// it does not serve.
	s.control.WriteString("abort: " + reason + "\n")
	s.cmd.Process.Kill()
	<-s.exited
	if line != nil {
		// Unblock the reader: the new process is gone.
		s.control.SetReadDeadline(time.Now())
		<-line
	}
	return &Error{PID: s.PID(), Reason: reason}
}

// exitReason waits briefly for the process to be reaped and says how it
// ended.
func (s *Successor) exitReason() string {
	select {
	case <-s.exited:
	case <-time.After(2 * time.Second):
		return "it closed the handover channel without saying why"
	}
	st := s.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		// By name: a signal's String is its description ("killed").
		return "it was killed by " + unix.SignalName(ws.Signal()) + " before it was ready"
	}
	return fmt.Sprintf("it exited with code %d before it was ready", st.ExitCode())
}

// withoutEnv drops a stale Env from env (a process that was itself a
// successor passes its own environment on).
func withoutEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, Env+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// ErrOldProcessGone is Ready's error when the old process has exited
// without reading the ready line.
var ErrOldProcessGone = errors.New("the old gatehouse process has exited")

// goneWithin bounds how long Ready, its line refused, waits to see the
// old process ended: a dying process's descriptors close a moment before
// /proc and a pidfd show it exited. An old process still there after it
// closed the channel has given up on this one.
const goneWithin = 2 * time.Second

// Inherited is what a new process got from the process that started it.
type Inherited struct {
	parent int
	// old names the parent by pid and start time, read as this process
	// starts: a later process given the same pid is not taken for it.
	old     procid.ID
	control *os.File
	// answers: the old process answers the ready line (spec.Answers).
	answers bool
	lns     map[string]listenerRef
	used    map[string]bool
}

// FromEnv returns what this process inherited, or nil when it was not
// started by a handover. It takes Env out of the environment, so that
// nothing started later sees it.
func FromEnv() (*Inherited, error) {
	v, ok := os.LookupEnv(Env)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(Env)
	var sp spec
	if err := json.Unmarshal([]byte(v), &sp); err != nil {
		return nil, fmt.Errorf("%s: %w", Env, err)
	}
	// Inherited descriptors come without close-on-exec: set it, or every
	// process this one starts would hold them.
	syscall.CloseOnExec(sp.Control)
	in := &Inherited{parent: sp.Parent, old: procid.Of(sp.Parent), control: os.NewFile(uintptr(sp.Control), "handover"),
		answers: sp.Answers, lns: map[string]listenerRef{}, used: map[string]bool{}}
	for _, l := range sp.Listeners {
		syscall.CloseOnExec(l.FD)
		in.lns[l.Key] = l
	}
	return in, nil
}

// Parent is the pid of the process that started this one.
func (in *Inherited) Parent() int { return in.parent }

// OldRunning reports whether the old process still runs.
func (in *Inherited) OldRunning() bool { return in.old.Alive() }

// AwaitOldGone waits until the old process has exited, or ctx ends (then
// it returns ctx's error).
func (in *Inherited) AwaitOldGone(ctx context.Context) error { return procid.Wait(ctx, in.old) }

// Listener returns the inherited socket for key if it was bound for addr;
// false when there is none (the config moved it: bind anew).
func (in *Inherited) Listener(key, addr string) (net.Listener, bool, error) {
	l, ok := in.lns[key]
	if !ok || l.Addr != addr || in.used[key] {
		return nil, false, nil
	}
	in.used[key] = true
	f := os.NewFile(uintptr(l.FD), key)
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, false, fmt.Errorf("inherited %s socket: %w", key, err)
	}
	return ln, true, nil
}

// File returns the inherited descriptor for key, as it is, if it was
// passed for addr; false when there is none.
func (in *Inherited) File(key, addr string) (*os.File, bool) {
	l, ok := in.lns[key]
	if !ok || l.Addr != addr || in.used[key] {
		return nil, false
	}
	in.used[key] = true
	return os.NewFile(uintptr(l.FD), key), true
}

// Close closes the inherited sockets Listener was not asked for.
func (in *Inherited) Close() {
	for key, l := range in.lns {
		if !in.used[key] {
			in.used[key] = true
			syscall.Close(l.FD)
		}
	}
}

// ErrGaveUp is Ready's error when the old process gave up on this one
// (its timeout, or its stop): this process must not serve.
var ErrGaveUp = errors.New("the old gatehouse gave up on this one")

// Ready tells the old process that this one can serve, and waits for its
// answer: nil means serve. When the old process has exited without an
// answer, the error wraps ErrOldProcessGone: this process is then the
// only one left to serve. Any other error means the old process gave up
// on this one (ErrGaveUp when it said so).
func (in *Inherited) Ready() error {
	if in.control == nil {
		return errAnswered
	}
	defer in.close()
	_, err := in.control.WriteString("ready " + strconv.Itoa(os.Getpid()) + "\n")
	if in.answers {
		// Read even when the write failed: an old process that gave up
		// said so before it closed its end.
		l, rerr := bufio.NewReader(in.control).ReadString('\n')
		if l == "ok\n" {
			return nil
		}
		if reason, ok := strings.CutPrefix(l, "abort: "); ok {
			return fmt.Errorf("%w: %s", ErrGaveUp, strings.TrimSpace(reason))
		}
		if err == nil {
			err = fmt.Errorf("no answer to the ready line: %w", cmp.Or(rerr, io.ErrUnexpectedEOF))
		}
	} else if err == nil {
		return nil
	}
	if in.oldGone() {
		return fmt.Errorf("%w: %w", ErrOldProcessGone, err)
	}
	return err
}

// oldGone reports whether the old process has exited, or does within
// goneWithin.
func (in *Inherited) oldGone() bool {
	ctx, cancel := context.WithTimeout(context.Background(), goneWithin)
	defer cancel()
	return procid.Wait(ctx, in.old) == nil
}

// Fail tells the old process why this one gives up.
func (in *Inherited) Fail(err error) error {
	return in.say("error: " + strings.ReplaceAll(err.Error(), "\n", " "))
}

var errAnswered = errors.New("handover: already answered")

func (in *Inherited) say(line string) error {
	if in.control == nil {
		return errAnswered
	}
	defer in.close()
	_, err := in.control.WriteString(line + "\n")
	return err
}

// close closes the channel to the old process: this one has answered.
func (in *Inherited) close() {
	in.control.Close()
	in.control = nil
}
