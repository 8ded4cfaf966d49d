// Package reaper owns gatehouse's children as the kernel sees them: it
// starts every process gatehouse waits for itself, and, when gatehouse is
// PID 1 (of a container or PID namespace) or a child subreaper, reaps the
// orphans the kernel hands it, which nothing else would ever wait for.
//
// An orphan is any process whose parent ended: an app's daemonised
// grandchild, the children of a killed shim. Left unreaped each stays a
// zombie, holding its pid, until the pid space of the container runs out.
// Reaping them with a blanket wait4(-1) would also take the exit status
// of a child that exec.Cmd.Wait is about to collect, so the reaper only
// waits for zombies that are not registered: Start registers a child as
// it starts it (under the same lock the reaper scans with, so that not
// even a child that dies at once is mistaken for an orphan), Wait
// collects it and forgets it.
//
// The registry is process-wide because the process table is.
package reaper

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/procid"
)

var (
	mu sync.Mutex
	// waited are the children someone waits for with exec.Cmd.Wait (or
	// wait4 on that pid): the reaper leaves their zombies alone.
	waited = map[int]bool{}
)

// Start starts cmd as a child whose end the caller collects with Wait.
func Start(cmd *exec.Cmd) error {
	mu.Lock()
	defer mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	waited[cmd.Process.Pid] = true
	return nil
}

// Wait is cmd.Wait for a cmd Start started; then its pid is no longer
// the caller's to collect.
func Wait(cmd *exec.Cmd) error {
	err := cmd.Wait()
	Release(cmd.Process.Pid)
	return err
}

// Release says that nobody waits for pid any more: it was collected
// another way (wait4), or is left to another process.
func Release(pid int) {
	mu.Lock()
	delete(waited, pid)
	mu.Unlock()
}

// Orphans reports whether orphans are reparented to this process: it is
// PID 1 of its PID namespace, or a child subreaper.
func Orphans() bool {
	if os.Getpid() == 1 {
		return true
	}
	// The flag is written to the int arg2 points to.
	var v int32
	err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0)
	return err == nil && v != 0
}

// ProcIsOurs reports whether /proc shows this process's own PID
// namespace, where the reaper looks for zombies: false for a PID 1 whose
// /proc was mounted for another namespace (unshare without
// --mount-proc), which then finds none of its orphans. Always true for
// a process that is not PID 1.
func ProcIsOurs() bool {
	if os.Getpid() != 1 {
		return true
	}
	self, err := os.Readlink("/proc/self")
	return err == nil && self == "1"
}

// rescan is how often the reaper looks for zombies even without SIGCHLD:
// signals coalesce, and one that came while a registered pid was being
// released would otherwise leave a zombie until the next.
const rescan = 10 * time.Second

// Run reaps orphans until ctx ends, when Orphans says they come to this
// process; otherwise it only waits for ctx. log reports each one reaped
// at debug level.
func Run(ctx context.Context, log *slog.Logger) {
	if !Orphans() {
		<-ctx.Done()
		return
	}
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	t := time.NewTicker(rescan)
	defer t.Stop()
	for {
		for _, o := range Reap() {
			log.Debug("reaped an orphaned process", "pid", o.PID, "status", o.Status)
		}
		select {
		case <-ctx.Done():
			return
		case <-chld:
		case <-t.C:
		}
	}
}

// Reaped is one orphan collected: its pid and how it ended.
type Reaped struct {
	PID    int
	Status string
}

// Reap collects every zombie child of this process that nobody waits
// for, and says which.
func Reap() []Reaped {
	mu.Lock()
	defer mu.Unlock()
	var out []Reaped
	for _, pid := range zombieChildren(os.Getpid()) {
		if waited[pid] {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			out = append(out, Reaped{PID: pid, Status: describe(ws)})
		}
	}
	return out
}

// zombieChildren lists the processes in state Z whose parent is ppid,
// from /proc (the one place that lists another process's children
// without waiting for them).
func zombieChildren(ppid int) []int {
	var out []int
	for _, pid := range procid.List() {
		if st, err := procid.ReadStat(pid); err == nil && st.State == 'Z' && st.PPID == ppid {
			out = append(out, pid)
		}
	}
	return out
}

func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + unix.SignalName(ws.Signal())
	default:
		return "ended"
	}
}

// Finish is PID 1's last act before it exits, when the kernel would
// SIGKILL whatever is left in the namespace: it sends SIGTERM to every
// other process (the orphans that outlived their app, say), and reaps
// them as they end, for at most timeout. It is a no-op unless this
// process is PID 1. It returns how many processes were still running
// when timeout passed.
func Finish(timeout time.Duration) int {
	if os.Getpid() != 1 {
		return 0
	}
	// Nobody waits for anything any more: every zombie is the reaper's.
	mu.Lock()
	clear(waited)
	mu.Unlock()
	// kill(-1) as PID 1 reaches every process in the namespace but
	// itself.
	if err := unix.Kill(-1, unix.SIGTERM); errors.Is(err, unix.ESRCH) {
		return 0
	}
	deadline := time.Now().Add(timeout)
	for {
		Reap()
		left := children()
		if left == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// children counts the processes left in this PID namespace besides
// this one (for PID 1, every one of them is a descendant).
func children() int {
	n := 0
	for _, pid := range procid.List() {
		if st, err := procid.ReadStat(pid); err == nil && pid != os.Getpid() && st.State != 'Z' {
			n++
		}
	}
	return n
}
