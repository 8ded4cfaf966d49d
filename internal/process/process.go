package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/reaper"
	"github.com/gatehouse/gatehouse/internal/shim"
)

// Process is one running app process and the shim that is its parent
// (see package shim). This gatehouse either started the shim (cmd is set)
// or adopted it from a previous gatehouse.
type Process struct {
	cmd *exec.Cmd
	pid int
	// startTicks is the process's start time in clock ticks since boot
	// (/proc/PID/stat field 22): with pid, it names the process even
	// after the pid is reused. 0 if it could not be read.
	startTicks uint64
	shim       procid.ID
	// statusPath is the file the shim writes the app's exit status to.
	statusPath string
	// output is the read end of the app's output pipe.
	output  *os.File
	started time.Time
	// ownsGroup tells whether its group is still the app's once its
	// leader is gone (see SignalGroup); nil: only while the leader runs.
	ownsGroup func() bool
	// adopted: a previous gatehouse started the process.
	adopted bool
	// leftBehind are the members its group had (the leader aside) as
	// its end was taken in, when ownsGroup is set: while one of them
	// is still in it, the group cannot have been emptied, so its id is
	// still the app's, whatever the member's environment now says (a
	// child that set its process title, as unicorn, Sidekiq, nginx or
	// Python's setproctitle do, overwrites the environment /proc shows).
	leftBehind []procid.ID

	// stop ends the watch without the process ending (a handover).
	stop context.CancelFunc
	// endMu orders Leave against wait: either the process is left (a
	// successor reaps its shim and reads its status) or this gatehouse
	// takes in its end, never both halves.
	endMu         sync.Mutex
	ended, isLeft bool
	watchCtx      context.Context
	read          chan struct{} // closed when the output is read to its end
	// exited is closed once the process has ended and its output was
	// read; exit and exitedAt are valid after that. It is never closed
	// for a process left to a successor (Leave).
	exited chan struct{}
	exit   Exit
	// exitedAt is when the process ended: its exit's time, which a
	// request sent before it may have caused and one sent after cannot.
	exitedAt time.Time
}

// Spec is what a process is started with.
type Spec struct {
	Argv []string
	Dir  string
	Env  []string
	Out  io.Writer
	// StatusPath is where its shim writes its exit status.
	StatusPath string
	// OwnsGroup, as Adoptee's, reports whether the process group is
	// still the app's once its leader has ended: a member carries the
	// instance's identity. nil: the group is signalled only while its
	// leader runs.
	OwnsGroup func() bool
}

// Spawn starts s.Argv under a shim, in its own process group, so that
// stopping it reaches every process it started (npm start → node), and so
// that it outlives this gatehouse if need be.
func Spawn(s Spec) (*Process, error) {
	if len(s.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	if err := checkDir(s.Dir); err != nil {
		return nil, err
	}
	if err := checkProgram(s.Argv, s.Env, s.Dir); err != nil {
		return nil, err
	}
	// The shim is this executable (see package shim).
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find gatehouse's executable for the shim: %w", err)
	}
	path := s.Argv[0]
	if p, ok := lookPathIn(s.Argv[0], s.Env, s.Dir); ok {
		// As sh would: the program is found on the PATH the app gets.
		path = p
	} else if p, err := exec.LookPath(path); err == nil {
		path = p
	} else if !strings.Contains(path, "/") {
		return nil, fmt.Errorf("start %s: %w", s.Argv[0], err)
	}
	st, err := shim.Start(shim.Spec{Exe: exe, Path: path, Argv: s.Argv, Dir: s.Dir, Env: s.Env, StatusPath: s.StatusPath})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Argv[0], err)
	}
	p := &Process{cmd: st.Cmd, pid: st.PID, startTicks: st.StartTicks, statusPath: s.StatusPath,
		shim: procid.ID{PID: st.ShimPID, StartTicks: st.ShimStartTicks}, output: st.Output, started: time.Now(),
		ownsGroup: s.OwnsGroup}
	p.watch(s.Out)
	return p, nil
}

// Adoptee is a process a previous gatehouse started, as it recorded it.
type Adoptee struct {
	PID        int
	StartTicks uint64
	Shim       procid.ID
	StatusPath string
	StartedAt  time.Time
	// OwnsGroup reports whether the process group PID still is the
	// app's: its leader runs with StartTicks, or a member carries the
	// instance's identity. This gatehouse may not have seen the app end
	// (it ended before the adoption, its status lost), so its group id
	// may since have been reused by another program's group.
	OwnsGroup func() bool
}

// Adopt takes over the process a describes; out receives its output from
// now on.
func Adopt(a Adoptee, out io.Writer) *Process {
	p := &Process{pid: a.PID, startTicks: a.StartTicks, statusPath: a.StatusPath, ownsGroup: a.OwnsGroup,
		shim: a.Shim, started: a.StartedAt, adopted: true}
	// Only the recorded shim's pipe: a reused pid's fd 3 is another
	// program's. Checked again once open, in case the pid was reused in
	// between.
	if p.shim.Alive() {
		if f, err := shim.OpenOutput(a.Shim.PID); err == nil {
			if p.shim.Alive() {
				p.output = f
			} else {
				f.Close()
			}
		}
	}
	p.watch(out)
	return p
}

// PID is the app process's pid, which leads its process group.
func (p *Process) PID() int { return p.pid }

// StartTicks is the app process's start time in clock ticks since boot;
// 0 if it could not be read.
func (p *Process) StartTicks() uint64 { return p.startTicks }

// Shim names the app's shim.
func (p *Process) Shim() procid.ID { return p.shim }

// StatusPath is where the shim writes the app's exit status.
func (p *Process) StatusPath() string { return p.statusPath }

// Started is when the process started.
func (p *Process) Started() time.Time { return p.started }

// Adopted reports whether a previous gatehouse started the process.
func (p *Process) Adopted() bool { return p.adopted }

// Exited is closed once the process has ended and its output was read;
// never for a process left to a successor.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Exit is how the process ended; valid once Exited is closed.
func (p *Process) Exit() Exit { return p.exit }

// ExitedAt is when the process ended; valid once Exited is closed.
func (p *Process) ExitedAt() time.Time { return p.exitedAt }

// watch starts the goroutines that copy the output to out and wait for
// the process to end; they end with the process, or with Leave.
func (p *Process) watch(out io.Writer) {
	p.watchCtx, p.stop = context.WithCancel(context.Background())
	p.read, p.exited = make(chan struct{}), make(chan struct{})
	go p.copyOutput(out)
	go p.wait()
}

func (p *Process) copyOutput(out io.Writer) {
	defer close(p.read)
	if p.output == nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := p.output.Read(buf)
		if n > 0 {
			out.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// outputWait bounds how long the output is read after the process ended:
// a grandchild that inherited the pipe may keep it open for good.
const outputWait = time.Second

// wait waits for the shim to end, reaps it if it is this gatehouse's
// child, and reads how the app ended. It ends early, doing nothing, when
// the process is left to a successor (Leave).
func (p *Process) wait() {
	if err := procid.Wait(p.watchCtx, p.shim); err != nil {
		return // left: the successor watches it from now on
	}
	p.endMu.Lock()
	if p.isLeft {
		p.endMu.Unlock()
		return // left as it ended: its status is the successor's to read
	}
	p.ended = true
	p.endMu.Unlock()
	if p.ownsGroup != nil && !pidReused(p.pid, p.startTicks) {
		// Looked at as soon as the end is known: before the group could
		// empty and its id be handed out again, which takes the kernel
		// going through every other pid first. Not when the pid is
		// another process's already (an adopted record found ended
		// long after): the group of that id is then another program's.
		p.leftBehind = groupMembers(p.pid, p.startTicks)
	}
	if p.cmd != nil {
		reaper.Wait(p.cmd)
	} else if st, err := procid.ReadStat(p.shim.PID); err == nil && st.PPID == os.Getpid() {
		// Started by this process, then left and taken back (an upgrade
		// that failed): still its child to reap.
		unix.Wait4(p.shim.PID, nil, unix.WNOHANG, nil)
		reaper.Release(p.shim.PID)
	}
	p.exitedAt = time.Now()
	st, err := shim.ReadStatus(p.statusPath)
	switch {
	case err == nil:
		p.exit = Exit{Code: st.Code, Signal: st.Signal}
		p.exitedAt = st.At
		os.Remove(p.statusPath)
	case procid.ID{PID: p.pid, StartTicks: p.startTicks}.Alive():
		// The shim was killed and wrote nothing; the app it was parent
		// of dies with it (PR_SET_PDEATHSIG), or is killed by whoever
		// sees this exit (SignalGroup).
		p.exit = Exit{Lost: "its shim (pid " + strconv.Itoa(p.shim.PID) + ") was killed"}
	default:
		p.exit = Exit{Lost: "its shim (pid " + strconv.Itoa(p.shim.PID) + ") ended without recording its exit status"}
	}
	t := time.NewTimer(outputWait)
	select {
	case <-p.read:
	case <-t.C:
		if p.output != nil {
			p.output.SetReadDeadline(time.Now())
		}
		<-p.read
	}
	t.Stop()
	if p.output != nil {
		p.output.Close()
	}
	close(p.exited)
}

// Leave stops watching the process without touching it, for a successor
// gatehouse to adopt: the output is no longer read (what the app writes
// meanwhile waits in the pipe) and its end no longer awaited. It returns
// false, doing nothing, when this gatehouse is already taking in the
// process's end (it reaped the shim and read its status): that end is
// then reported here, Exited is closed soon.
func (p *Process) Leave() bool {
	p.endMu.Lock()
	if p.ended {
		p.endMu.Unlock()
		return false
	}
	p.isLeft = true
	p.endMu.Unlock()
	p.stop()
	if p.output != nil {
		p.output.SetReadDeadline(time.Now())
		<-p.read
		p.output.Close()
	}
	return true
}

// SignalGroup sends sig to the process group. ESRCH (already gone) is
// fine. The group is signalled only while it is provably still the
// app's: its leader runs, or OwnsGroup says so. Once the app has ended
// and its group is empty, its id may be another program's group, whether
// this gatehouse started the app or adopted it.
func (p *Process) SignalGroup(sig syscall.Signal) {
	if !p.ownGroup() {
		return
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		// The group may be gone while the leader lingers as a zombie.
		syscall.Kill(p.pid, sig)
	}
}

func (p *Process) ownGroup() bool {
	if (procid.ID{PID: p.pid, StartTicks: p.startTicks}).Alive() {
		return true
	}
	if p.ownsGroup == nil {
		return false
	}
	select {
	case <-p.exited:
		// leftBehind is set before exited is closed.
		for _, m := range p.leftBehind {
			if st, err := procid.ReadStat(m.PID); err == nil && st.State != 'Z' && st.StartTicks == m.StartTicks && st.PGRP == p.pid {
				return true
			}
		}
	default:
	}
	return p.ownsGroup()
}

// pidReused reports whether pid is now another process than the one
// that started at startTicks.
func pidReused(pid int, startTicks uint64) bool {
	st, err := procid.ReadStat(pid)
	return err == nil && st.StartTicks != startTicks
}

// groupMembers lists the live processes of group pgid other than its
// leader, started no earlier than it (startTicks).
func groupMembers(pgid int, startTicks uint64) []procid.ID {
	var out []procid.ID
	for _, pid := range procid.List() {
		if pid == pgid {
			continue
		}
		st, err := procid.ReadStat(pid)
		if err != nil || st.PGRP != pgid || st.State == 'Z' || st.StartTicks < startTicks {
			continue
		}
		out = append(out, procid.ID{PID: pid, StartTicks: st.StartTicks})
	}
	return out
}

// WaitExit waits up to d for the process to exit.
func (p *Process) WaitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// Exit describes how a process ended.
type Exit struct {
	// Code is the exit code; nil when a signal killed it or it is not
	// known.
	Code *int
	// Signal is the name of the signal that killed it (SIGSEGV).
	Signal string
	// Lost says why how it ended is not known.
	Lost string
}

func (e Exit) String() string {
	if e.Lost != "" {
		return "ended; how is not known: " + e.Lost
	}
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	if e.Code != nil {
		return "exited with code " + strconv.Itoa(*e.Code)
	}
	return "exited"
}

// lookPathIn finds name on the PATH of env, the way the shell that used to
// start every command string did (a relative entry, node_modules/.bin,
// is relative to the app's dir); false when name has a slash, env sets
// no PATH, or nothing is found there (exec.Command's own look-up stands).
func lookPathIn(name string, env []string, dir string) (string, bool) {
	if strings.Contains(name, "/") {
		return "", false
	}
	path, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path, found = v, true
		}
	}
	if !found {
		return "", false
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "." // an empty entry is the current directory, to sh
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}
