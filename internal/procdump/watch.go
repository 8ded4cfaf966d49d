package procdump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/procid"
)

// target is the process being dumped, watched for its exit from the start
// of Take: its live context ends the moment it exits, which stops
// whatever waits on it (a tool, the inspector) at once.
type target struct {
	pid    int
	id     procid.ID
	pidfd  *os.File // nil where pidfd_open is refused; signals go by pid then
	live   context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// watch starts watching pid. The pidfd pins the process, so that a pid
// reused after it exits is never signalled.
func watch(ctx context.Context, pid int) (*target, error) {
	t := &target{pid: pid, id: procid.Of(pid), done: make(chan struct{})}
	t.live, t.cancel = context.WithCancelCause(ctx)
	if !t.id.Alive() {
		t.cancel(ErrExited)
		return nil, fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		t.pidfd = os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	}
	go func() {
		defer close(t.done)
		if procid.Wait(t.live, t.id) == nil {
			t.cancel(ErrExited)
		}
	}()
	return t, nil
}

// exited reports whether the process has exited since watch began.
func (t *target) exited() bool {
	return errors.Is(context.Cause(t.live), ErrExited)
}

// stop ends the watch and waits for its goroutine.
func (t *target) stop() {
	t.cancel(context.Canceled)
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
	return unix.PidfdSendSignal(int(t.pidfd.Fd()), sig, nil, 0)
}
