package procdump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// target is the process being dumped, watched for its exit from the start
// of Take: its live context ends the moment it exits, which stops
// whatever waits on it (a tool, the inspector) at once.
type target struct {
	pid    int
	pidfd  *os.File // nil where pidfd_open is refused; /proc is polled then
	live   context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// procPoll is how often /proc is looked at for the process's exit where
// there is no pidfd to wait on.
const procPoll = 50 * time.Millisecond

// watch starts watching pid. The pidfd pins the process, so that a pid
// reused after it exits is never signalled.
func watch(ctx context.Context, pid int) (*target, error) {
	t := &target{pid: pid, done: make(chan struct{})}
	t.live, t.cancel = context.WithCancelCause(ctx)
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	switch {
	case errors.Is(err, syscall.ESRCH):
		t.cancel(ErrExited)
		return nil, fmt.Errorf("pid %d: %w", pid, ErrExited)
	case err == nil:
		t.pidfd = os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
		go t.awaitPidfd()
	default:
		if !alive(pid) {
			t.cancel(ErrExited)
			return nil, fmt.Errorf("pid %d: %w", pid, ErrExited)
		}
		go func() {
			defer close(t.done)
			t.pollProc()
		}()
	}
	return t, nil
}

// awaitPidfd waits, in the runtime's poller, for the pidfd to become
// readable, which it does when the process exits. Where the poller cannot
// wait on it, /proc is polled instead.
func (t *target) awaitPidfd() {
	defer close(t.done)
	rc, err := t.pidfd.SyscallConn()
	if err == nil {
		err = rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 0)
			return err == nil && n > 0
		})
		if err == nil {
			t.cancel(ErrExited)
			return
		}
		if t.live.Err() != nil {
			return
		}
	}
	t.pollProc()
}

// pollProc looks at /proc until the process is gone or a zombie, or the
// watch ends.
func (t *target) pollProc() {
	tick := time.NewTicker(procPoll)
	defer tick.Stop()
	for {
		if !alive(t.pid) {
			t.cancel(ErrExited)
			return
		}
		select {
		case <-t.live.Done():
			return
		case <-tick.C:
		}
	}
}

// exited reports whether the process has exited since watch began.
func (t *target) exited() bool {
	return errors.Is(context.Cause(t.live), ErrExited)
}

// stop ends the watch and waits for its goroutine.
func (t *target) stop() {
	t.cancel(context.Canceled)
	if t.pidfd != nil {
		// A deadline in the past wakes the poller's wait.
		_ = t.pidfd.SetReadDeadline(time.Unix(1, 0))
	}
	<-t.done
	if t.pidfd != nil {
		t.pidfd.Close()
	}
}

// signal sends sig to the process through its pidfd where there is one.
func (t *target) signal(sig syscall.Signal) error {
	if t.pidfd == nil {
		return syscall.Kill(t.pid, sig)
	}
	// Not pidfd.Fd(), which would take the file out of the poller.
	rc, err := t.pidfd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), sig, nil, 0) }); err != nil {
		return err
	}
	return serr
}

// alive reports whether pid names a process that has not exited: a zombie
// (exited, not yet waited for by its parent) counts as exited.
func alive(pid int) bool {
	state, ok := procState(pid)
	return ok && state != 'Z' && state != 'X'
}

// procState is the state letter of /proc/PID/stat (R, S, D, T, t, Z...).
func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces and parentheses:
	// the state follows the last ')'.
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			if i+2 < len(b) {
				return b[i+2], true
			}
			break
		}
	}
	return 0, false
}
