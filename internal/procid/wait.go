package procid

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollEvery is how often Wait looks at /proc when the kernel has no
// pidfd_open (Linux < 5.3).
const pollEvery = 250 * time.Millisecond

// Wait returns nil once the process id names has ended (or if it had
// already), or ctx's error if ctx ends first. It works for any process,
// child or not: it watches a pidfd, which turns readable when the process
// exits, and never reaps. On kernels without pidfd_open it polls
// /proc/PID/stat every 250ms instead.
//
// A process that has exited but was not yet reaped by its parent counts as
// ended: a pidfd is readable then, and /proc shows it as a zombie.
func Wait(ctx context.Context, id ID) error {
	fd, err := unix.PidfdOpen(id.PID, 0)
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return pollWait(ctx, id)
	}
	// The pid may have been reused between the caller's check and the
	// open: the pidfd names whatever has the pid now, so check it is
	// still the same process.
	if !id.Alive() {
		unix.Close(fd)
		return nil
	}
	unix.SetNonblock(fd, true)
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return pollWait(ctx, id)
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	err = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(pfd, 0)
		return n > 0
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		// The poller could not take the pidfd: fall back to /proc.
		return pollWait(ctx, id)
	}
	return nil
}

func pollWait(ctx context.Context, id ID) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for id.Alive() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
