package supervisor

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

// process is one running incarnation of an instance: the app process and
// the shim that is its parent (see package shim). This gatehouse either
// started the shim (cmd is set) or adopted it from a previous gatehouse.
type process struct {
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
	// adopted: started by a previous gatehouse; rec is its record and run
	// the token its processes carry (see signalGroup).
	adopted bool
	rec     ProcessRecord
	run     string

	// stop ends the watch without the process ending (a handover).
	stop context.CancelFunc
	// endMu orders leave against wait: either the process is left (a
	// successor reaps its shim and reads its status) or this gatehouse
	// takes in its end, never both halves.
	endMu         sync.Mutex
	ended, isLeft bool
	watchCtx      context.Context
	read          chan struct{} // closed when the output is read to its end
	// exited is closed once the process has ended and its output was
	// read; exit and exitedAt are valid after that. It is never closed
	// for a process left to a successor (leave).
	exited chan struct{}
	exit   exitInfo
	// exitedAt is when the process ended: its exit's time, which a
	// request sent before it may have caused and one sent after cannot.
	exitedAt time.Time
}

// spawnSpec is what a process is started with.
type spawnSpec struct {
	argv []string
	dir  string
	env  []string
	out  io.Writer
	// statusPath is where its shim writes its exit status.
	statusPath string
}

// shimExe is the shim's executable: this one (see package shim).
var shimExe = sync.OnceValues(os.Executable)

// spawn starts argv under a shim, in its own process group, so that
// stopping it reaches every process it started (npm start → node), and so
// that it outlives this gatehouse if need be.
func spawn(s spawnSpec) (*process, error) {
	if len(s.argv) == 0 {
		return nil, errors.New("empty command")
	}
	exe, err := shimExe()
	if err != nil {
		return nil, fmt.Errorf("find gatehouse's executable for the shim: %w", err)
	}
	path := s.argv[0]
	if p, ok := lookPathIn(s.argv[0], s.env, s.dir); ok {
		// As sh would: the program is found on the PATH the app gets.
		path = p
	} else if p, err := exec.LookPath(path); err == nil {
		path = p
	} else if !strings.Contains(path, "/") {
		return nil, fmt.Errorf("start %s: %w", s.argv[0], err)
	}
	st, err := shim.Start(shim.Spec{Exe: exe, Path: path, Argv: s.argv, Dir: s.dir, Env: s.env, StatusPath: s.statusPath})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.argv[0], err)
	}
	p := &process{cmd: st.Cmd, pid: st.PID, startTicks: st.StartTicks, statusPath: s.statusPath,
		shim: procid.ID{PID: st.ShimPID, StartTicks: st.ShimStartTicks}, output: st.Output, started: time.Now()}
	p.watch(s.out)
	return p, nil
}

// adopt takes over the process rec describes, which a previous gatehouse
// started with the run token run; out receives its output from now on.
func adopt(rec ProcessRecord, run string, out io.Writer) *process {
	p := &process{pid: rec.PID, startTicks: rec.StartTicks, statusPath: rec.StatusFile, adopted: true, rec: rec, run: run,
		shim: procid.ID{PID: rec.ShimPID, StartTicks: rec.ShimStartTicks}, started: rec.StartedAt}
	// Only the recorded shim's pipe: a reused pid's fd 3 is another
	// program's. Checked again once open, in case the pid was reused in
	// between.
	if p.shim.Alive() {
		if f, err := shim.OpenOutput(rec.ShimPID); err == nil {
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

// watch starts the goroutines that copy the output to out and wait for
// the process to end.
func (p *process) watch(out io.Writer) {
	p.watchCtx, p.stop = context.WithCancel(context.Background())
	p.read, p.exited = make(chan struct{}), make(chan struct{})
	go p.copyOutput(out)
	go p.wait()
}

func (p *process) copyOutput(out io.Writer) {
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
// the process is left to a successor (leave).
func (p *process) wait() {
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
		p.exit = exitInfo{code: st.Code, signal: st.Signal}
		p.exitedAt = st.At
		os.Remove(p.statusPath)
	case procid.ID{PID: p.pid, StartTicks: p.startTicks}.Alive():
		// The shim was killed and wrote nothing; the app it was parent
		// of dies with it (PR_SET_PDEATHSIG), or is killed by onExit.
		p.exit = exitInfo{lost: "its shim (pid " + strconv.Itoa(p.shim.PID) + ") was killed"}
	default:
		p.exit = exitInfo{lost: "its shim (pid " + strconv.Itoa(p.shim.PID) + ") ended without recording its exit status"}
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

// leave stops watching the process without touching it, for a successor
// gatehouse to adopt: the output is no longer read (what the app writes
// meanwhile waits in the pipe) and its end no longer awaited. It returns
// false, doing nothing, when this gatehouse is already taking in the
// process's end (it reaped the shim and read its status): that end is
// then reported here, exited is closed soon.
func (p *process) leave() bool {
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

// signalGroup sends sig to the process group. ESRCH (already gone) is fine.
// An adopted process's group is signalled only while it is provably still
// the app's (see ownGroup).
func (p *process) signalGroup(sig syscall.Signal) {
	if p.adopted && !p.ownGroup() {
		return
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		// The group may be gone while the leader lingers as a zombie.
		syscall.Kill(p.pid, sig)
	}
}

// ownGroup reports whether the process group of an adopted process is
// still its own: its leader runs with the recorded start time, or a
// member carries the instance's identity and run token (findLeftover).
// This gatehouse may not have seen the app end (it ended before the
// adoption, its status lost), so its group id may since have been reused
// by another program's group.
func (p *process) ownGroup() bool {
	if (procid.ID{PID: p.pid, StartTicks: p.startTicks}).Alive() {
		return true
	}
	return findLeftover(p.rec, p.run) != nil
}

// waitExit waits up to d for the process to exit.
func (p *process) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// exitInfo describes how a process ended.
type exitInfo struct {
	code   *int
	signal string
	// lost says why how it ended is not known.
	lost string
}

func (p *process) exitInfo() exitInfo { return p.exit }

func (e exitInfo) String() string {
	if e.lost != "" {
		return "ended; how is not known: " + e.lost
	}
	if e.signal != "" {
		return "killed by " + e.signal
	}
	if e.code != nil {
		return "exited with code " + strconv.Itoa(*e.code)
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
