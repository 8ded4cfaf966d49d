//go:build linux

package upstream

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// sockets are the sockets a pool dialed, looked at from the kernel's side:
// what the app sent has reached them, has been read, or the app's end
// has come. They are the events the tests wait on instead of a pause.
type sockets struct {
	mu   sync.Mutex
	raws []syscall.RawConn
}

// watch records every socket p dials from now on.
func (s *sockets) watch(p *Pool) {
	p.dialer.ControlContext = func(_ context.Context, _, _ string, c syscall.RawConn) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.raws = append(s.raws, c)
		return nil
	}
}

// sum adds f over the sockets still open.
func (s *sockets) sum(f func(fd int) int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.raws {
		c.Control(func(fd uintptr) { n += f(int(fd)) })
	}
	return n
}

// unread is how many bytes wait in the sockets, unread.
func (s *sockets) unread() int {
	return s.sum(func(fd int) int {
		q, _ := unix.IoctlGetInt(fd, unix.SIOCINQ)
		return q
	})
}

// received is how many bytes have reached the sockets, read or not.
func (s *sockets) received() int {
	return s.sum(func(fd int) int {
		if info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			return int(info.Bytes_received)
		}
		return 0
	})
}

// tcpCloseWait is Linux's TCP state after the peer's FIN (tcp_states.h).
const tcpCloseWait = 8

// ended is how many of the sockets have had the app's end (its FIN).
func (s *sockets) ended() int {
	return s.sum(func(fd int) int {
		if info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil && info.State == tcpCloseWait {
			return 1
		}
		return 0
	})
}

// await waits for cond, failing the test after 5 s.
func (s *sockets) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, what, cond)
}
