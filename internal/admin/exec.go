package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/execwire"
	"github.com/gatehouse/gatehouse/internal/process"
	"github.com/gatehouse/gatehouse/internal/reaper"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// maxExecs bounds the commands gatehouse exec runs at once: each holds a
// process, a connection and two pipes. One more is refused 429.
const maxExecs = 8

// maxExecRequest bounds the JSON of an exec request (the argv).
const maxExecRequest = 64 << 10

// execDrain bounds how long the end of a command's output still has to
// reach the client once the command has exited: a process that left the
// command's group may hold its pipes open, and a client that stopped
// reading holds the last frames.
const execDrain = 5 * time.Second

// ExecRequest is the body of POST /api/instances/{id}/exec and
// /api/apps/{app}/exec: the command, run as it is, without a shell.
type ExecRequest struct {
	Argv []string `json:"argv"`
}

// ExecRefusal is the JSON answer of an exec whose command cannot be run
// (422): ExitCode is what a shell would exit with, 127 for a program not
// found, 126 for one that may not be run.
type ExecRefusal struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

// execs runs gatehouse exec's commands: each in the world of an instance
// (its environment, working directory and user, which is gatehouse's:
// gatehouse runs its instances as itself), its stdio streamed over the
// admin connection (package execwire).
type execs struct {
	sup    Instances
	events *telemetry.Events
	// who names the client in the events: "the admin token holder" when
	// a token is required, else a loopback client.
	who   string
	slots chan struct{}
}

func registerExec(mux *http.ServeMux, d Deps) {
	x := &execs{sup: d.Supervisor, events: d.Events, who: who(d), slots: make(chan struct{}, maxExecs)}
	mux.HandleFunc("POST /api/instances/{id}/exec", func(w http.ResponseWriter, r *http.Request) {
		x.serve(w, r, func() (string, *supervisor.Instance, error) { return x.byID(r.PathValue("id")) })
	})
	mux.HandleFunc("POST /api/apps/{app}/exec", func(w http.ResponseWriter, r *http.Request) {
		x.serve(w, r, func() (string, *supervisor.Instance, error) { return x.firstReady(r.PathValue("app")) })
	})
}

// execRefused is an exec answered with an HTTP error before anything ran.
type execRefused struct {
	status int
	msg    string
}

func (e *execRefused) Error() string { return e.msg }

// byID finds an instance by its id (web-1).
func (x *execs) byID(id string) (string, *supervisor.Instance, error) {
	for _, a := range x.sup.Apps() {
		for _, in := range a.Instances() {
			if in.ID == id {
				return a.Name(), in, runnable(in)
			}
		}
	}
	return "", nil, &execRefused{http.StatusNotFound, fmt.Sprintf("no instance %q", id)}
}

// firstReady finds the app's first ready instance.
func (x *execs) firstReady(name string) (string, *supervisor.Instance, error) {
	a := x.sup.App(name)
	if a == nil {
		return "", nil, &execRefused{http.StatusNotFound, fmt.Sprintf("no app %q", name)}
	}
	for _, in := range a.Instances() {
		if in.Status().State == "ready" {
			return name, in, runnable(in)
		}
	}
	return "", nil, &execRefused{http.StatusServiceUnavailable, fmt.Sprintf("%s has no ready instance; name one (gatehouse exec %s/INSTANCE) to run beside it anyway", name, name)}
}

// runnable: the instance has a process whose world a command can share.
func runnable(in *supervisor.Instance) error {
	if len(in.Spec().Command) == 0 {
		return &execRefused{http.StatusConflict, fmt.Sprintf("%s is an external upstream: gatehouse runs no process of it", in.ID)}
	}
	if st := in.Status(); st.PID == 0 {
		return &execRefused{http.StatusConflict, fmt.Sprintf("%s has no running process (%s)", in.ID, st.State)}
	}
	return nil
}

// isUpgrade: the request asks to switch to proto.
func isUpgrade(r *http.Request, proto string) bool {
	hasToken := func(field, tok string) bool {
		for _, v := range r.Header.Values(field) {
			for t := range strings.SplitSeq(v, ",") {
				if strings.EqualFold(strings.TrimSpace(t), tok) {
					return true
				}
			}
		}
		return false
	}
	return hasToken("Connection", "upgrade") && hasToken("Upgrade", proto)
}

func (x *execs) serve(w http.ResponseWriter, r *http.Request, find func() (string, *supervisor.Instance, error)) {
	if !isUpgrade(r, execwire.Protocol) {
		w.Header().Set("Upgrade", execwire.Protocol)
		w.Header().Set("Connection", "Upgrade")
		writeJSON(w, http.StatusUpgradeRequired, OpLine{Error: "exec streams stdin, stdout and stderr over its own protocol: send Connection: Upgrade and Upgrade: " + execwire.Protocol + " (gatehouse exec does)"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxExecRequest)
	var req ExecRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Argv) == 0 || req.Argv[0] == "" {
		writeJSON(w, http.StatusBadRequest, OpLine{Error: `exec needs a JSON body {"argv": ["CMD", "ARG", …]}`})
		return
	}
	app, in, err := find()
	if err != nil {
		var ref *execRefused
		if errors.As(err, &ref) {
			writeJSON(w, ref.status, OpLine{Error: ref.msg})
			return
		}
		writeJSON(w, http.StatusInternalServerError, OpLine{Error: err.Error()})
		return
	}
	select {
	case x.slots <- struct{}{}:
		defer func() { <-x.slots }()
	default:
		writeJSON(w, http.StatusTooManyRequests, OpLine{Error: fmt.Sprintf("%d commands run through gatehouse exec already; try again when one ends", maxExecs)})
		return
	}
	// The instance's own environment and directory, computed as its
	// process's were.
	env, dir := in.Environ(), in.Spec().Dir
	path, err := process.Find(req.Argv[0], env, dir)
	if err != nil {
		code := 126
		if errors.Is(err, syscall.ENOENT) {
			code = 127
		}
		writeJSON(w, http.StatusUnprocessableEntity, ExecRefusal{Error: err.Error(), ExitCode: code})
		return
	}
	p, err := startExec(path, req.Argv, env, dir)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, ExecRefusal{Error: err.Error(), ExitCode: 126})
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.end()
		writeJSON(w, http.StatusInternalServerError, OpLine{Error: "exec: take the connection: " + err.Error()})
		return
	}
	// The server's read and write deadlines were for a request; the
	// command runs as long as it runs.
	conn.SetDeadline(time.Time{})
	s := &execSession{conn: conn, p: p, gone: make(chan struct{})}
	argv := quoteArgv(req.Argv)
	x.events.Emit(telemetry.Event{App: app, Instance: in.ID, Type: telemetry.EventExec, PID: p.pid(), Value: argv, Trigger: r.RemoteAddr,
		Detail: fmt.Sprintf("%s run by %s (%s)", argv, x.who, r.RemoteAddr)})
	start := time.Now()
	// The bytes the server read ahead, then the connection itself: the
	// server's reader would end the request's context at the client's
	// EOF, which here is the client leaving, not gatehouse stopping.
	ahead, _ := brw.Reader.Peek(brw.Reader.Buffered())
	src := io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn)
	// Recorded before the client hears the exit code: whoever saw the
	// command end finds its event.
	s.run(r, src, func(code int, signal, how string) {
		ev := telemetry.Event{App: app, Instance: in.ID, Type: telemetry.EventExecExited, PID: p.pid(), Value: argv, Trigger: r.RemoteAddr,
			Detail: fmt.Sprintf("%s %s after %s", argv, how, time.Since(start).Round(time.Millisecond)), Signal: signal}
		if signal == "" {
			ev.ExitCode = &code
		}
		x.events.Emit(ev)
	})
}

// execProc is a command started with pipes for its stdio, in its own
// process group.
type execProc struct {
	cmd                   *exec.Cmd
	stdin, stdout, stderr *os.File // gatehouse's ends
}

func startExec(path string, argv, env []string, dir string) (*execProc, error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err1 := pipe()
	outR, outW, err2 := pipe()
	errR, errW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		closeAll()
		return nil, fmt.Errorf("exec: pipes: %w", err)
	}
	// Its own group, so that ending it reaches what it started; and it
	// dies with gatehouse, whose client could no longer end it.
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Dir: dir, Stdin: inR, Stdout: outW, Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
	// The reaper, not a PID 1 gatehouse's orphan reaping, waits for it.
	err := reaper.Start(cmd)
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return &execProc{cmd: cmd, stdin: inW, stdout: outR, stderr: errR}, nil
}

func (p *execProc) pid() int { return p.cmd.Process.Pid }

// awaitExit waits until the command has exited, leaving it unreaped: its
// pid, and so its group's id, stays its own until reap.
func (p *execProc) awaitExit() {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.pid(), &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// killGroup kills the command's process group. Called only before reap,
// while the group id cannot name another group.
func (p *execProc) killGroup() { syscall.Kill(-p.pid(), syscall.SIGKILL) }

// reap collects the exit status: the code, a signal as 128+N (as a shell
// reports it) with its name, and how it ended in words.
func (p *execProc) reap() (code int, signal, how string) {
	reaper.Wait(p.cmd)
	st := p.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		signal = unix.SignalName(ws.Signal())
		return 128 + int(ws.Signal()), signal, "killed by " + signal
	}
	return st.ExitCode(), "", "exited " + strconv.Itoa(st.ExitCode())
}

// end kills and reaps a command nobody will talk to.
func (p *execProc) end() {
	p.killGroup()
	p.reap()
	p.stdin.Close()
	p.stdout.Close()
	p.stderr.Close()
}

// execSession is one command's conversation over its hijacked
// connection.
type execSession struct {
	conn net.Conn
	p    *execProc
	wmu  sync.Mutex // one frame at a time on conn
	// gone is closed when the client has left (its connection closed or
	// failed, or it sent what no client sends).
	gone     chan struct{}
	goneOnce sync.Once
}

func (s *execSession) leave() { s.goneOnce.Do(func() { close(s.gone) }) }

// run switches the connection to the exec protocol and relays until the
// command has ended and its output is out; ended hears how it ended
// before the client does. The client leaving, or gatehouse stopping
// (r's context), kills the command's process group.
func (s *execSession) run(r *http.Request, src io.Reader, ended func(code int, signal, how string)) {
	defer s.conn.Close()
	_, err := s.conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + execwire.Protocol + "\r\n\r\n"))
	if err != nil {
		s.leave()
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		s.p.awaitExit()
	}()
	var readers, pumps sync.WaitGroup
	readers.Go(func() { s.readStdin(src) })
	pumps.Go(func() { s.pump(execwire.Stdout, s.p.stdout) })
	pumps.Go(func() { s.pump(execwire.Stderr, s.p.stderr) })
	why := ""
	select {
	case <-exited:
	case <-s.gone:
		why = "; the client left"
		s.p.killGroup()
		<-exited
	case <-r.Context().Done():
		why = "; gatehouse stopped"
		s.p.killGroup()
		<-exited
	}
	// What the command left running in its group goes with it, as with
	// an instance's process.
	s.p.killGroup()
	code, signal, how := s.p.reap()
	stuck := time.AfterFunc(execDrain, func() {
		s.conn.SetWriteDeadline(time.Now())
		s.p.stdout.Close()
		s.p.stderr.Close()
	})
	pumps.Wait()
	stuck.Stop()
	ended(code, signal, how+why)
	select {
	case <-s.gone:
	default:
		s.conn.SetWriteDeadline(time.Now().Add(execDrain))
		s.write(execwire.Append(nil, execwire.Exit, execwire.ExitPayload(code)))
	}
	s.conn.Close()
	s.p.stdin.Close()
	readers.Wait()
	s.p.stdout.Close()
	s.p.stderr.Close()
}

// write sends one or more whole frames; false when the client is gone.
func (s *execSession) write(b []byte) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.conn.Write(b); err != nil {
		s.leave()
		return false
	}
	return true
}

// pump relays one output pipe as frames of stream. A client that does
// not read blocks the write, then this read, then the command's writes:
// nothing is buffered beyond one frame and the pipe.
func (s *execSession) pump(stream byte, f *os.File) {
	buf := make([]byte, execwire.HeaderLen+execwire.MaxPayload)
	for {
		n, err := f.Read(buf[execwire.HeaderLen:])
		if n > 0 {
			execwire.PutHeader(buf, stream, n)
			if !s.write(buf[:execwire.HeaderLen+n]) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readStdin relays the client's stdin frames to the command until the
// connection ends; an empty frame closes the command's stdin.
func (s *execSession) readStdin(src io.Reader) {
	defer s.leave()
	fr := execwire.NewReader(src)
	for {
		stream, p, err := fr.Next()
		if err != nil || stream != execwire.Stdin {
			return
		}
		if len(p) == 0 {
			s.p.stdin.Close()
			continue
		}
		// A command that closed its stdin, or ended, takes no more; the
		// frames are read on, to see the client leave.
		if !s.feed(p) {
			return
		}
	}
}

// stdinCheck is how often a write to a command that does not read its
// stdin looks whether the client has left meanwhile: blocked in the
// write, this side reads nothing, and would not see it otherwise.
const stdinCheck = 250 * time.Millisecond

// feed writes p to the command's stdin; false when the client left while
// the command did not read.
func (s *execSession) feed(p []byte) bool {
	for len(p) > 0 {
		s.p.stdin.SetWriteDeadline(time.Now().Add(stdinCheck))
		n, err := s.p.stdin.Write(p)
		p = p[n:]
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if peerClosed(s.conn) {
				return false
			}
		case err != nil:
			return true // its stdin is closed: the rest is dropped
		}
	}
	return true
}

// peerClosed reports whether the client has closed its side of conn
// (POLLRDHUP), whatever it sent before that is still unread.
func peerClosed(conn net.Conn) bool {
	rc, ok := socketOf(conn)
	if !ok {
		return false
	}
	closed := false
	rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, err := unix.Poll(pfd, 0); err == nil && n > 0 {
			closed = pfd[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
		}
	})
	return closed
}

// socketOf finds the socket under conn, through TLS and the wrappers
// that say what they wrap with NetConn (the admin listener's connection
// limit).
func socketOf(conn net.Conn) (syscall.RawConn, bool) {
	for range 4 {
		if sc, ok := conn.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			return rc, err == nil
		}
		nc, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, false
		}
		conn = nc.NetConn()
	}
	return nil, false
}

// quoteArgv writes argv as a shell would read it back, for the events.
func quoteArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
