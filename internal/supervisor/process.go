package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// process is one running incarnation of an instance.
type process struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	// startTicks is the process's start time in clock ticks since boot
	// (/proc/PID/stat field 22): with pid, it names the process even
	// after the pid is reused. 0 if it could not be read.
	startTicks uint64
	// exited is closed once the process has been reaped; state is valid
	// after that.
	exited chan struct{}
	state  *os.ProcessState
	err    error
	// exitedAt is when the process was reaped: its exit's time, which a
	// request sent before it may have caused and one sent after cannot.
	exitedAt time.Time
}

// spawnSpec is what a process is started with.
type spawnSpec struct {
	argv []string
	dir  string
	env  []string
	out  io.Writer
}

// spawn starts argv in its own process group, so that stopping it reaches
// every process it started (npm start → node).
func spawn(s spawnSpec) (*process, error) {
	if len(s.argv) == 0 {
		return nil, errors.New("empty command")
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	if p, ok := lookPathIn(s.argv[0], s.env, s.dir); ok {
		// As sh would: the program is found on the PATH the app gets.
		cmd.Path, cmd.Err = p, nil
	}
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If gatehouse itself is killed hard, take the direct child along.
		Pdeathsig: syscall.SIGKILL,
	}
	// A grandchild that inherited the output pipe must not keep Wait from
	// returning once the process itself has exited.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.argv[0], err)
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), exited: make(chan struct{})}
	if st, err := readProcStat(p.pid); err == nil {
		p.startTicks = st.startTicks
	}
	go p.wait()
	return p, nil
}

// wait reaps the process; it ends when the process exits, which every stop
// path guarantees by SIGKILL.
func (p *process) wait() {
	p.err = p.cmd.Wait()
	p.exitedAt = time.Now()
	p.state = p.cmd.ProcessState
	close(p.exited)
}

// signalGroup sends sig to the process group. ESRCH (already gone) is fine.
func (p *process) signalGroup(sig syscall.Signal) {
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		// The group may be gone while the leader lingers as a zombie.
		syscall.Kill(p.pid, sig)
	}
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

// exitInfo describes how a reaped process ended.
type exitInfo struct {
	code   *int
	signal string
}

func (p *process) exitInfo() exitInfo {
	if p.state == nil {
		return exitInfo{}
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitInfo{signal: unix.SignalName(ws.Signal())}
	}
	code := p.state.ExitCode()
	return exitInfo{code: &code}
}

func (e exitInfo) String() string {
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
