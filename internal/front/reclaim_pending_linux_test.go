//go:build linux

package front

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A parked connection whose client has just sent a request, which the
// poller has not woken it for yet (its goroutine is behind: here, the
// socket is taken out of epoll to hold it there), is not idle: reclaim
// spares it, as it spares one waiting on its goroutine with bytes
// unread, and as Shutdown's closeAll does; the request is answered.
func TestReclaimSparesAParkedConnectionWithARequest(t *testing.T) {
	t.Parallel()
	for _, tr := range swTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			s, lc := swServe(t, tr.overTLS, swStub(nil, nil), Options{KeepaliveTimeout: time.Minute})
			lc.served("/first")
			waitParked(t, s, 1)
			s.mu.Lock()
			p := s.poll
			s.mu.Unlock()
			// The poller's goroutine does not get to the socket's event.
			sockets(s, func(fd int) { unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil) })
			wire := lc.sendCounted(swReq("/second", ""))
			awaitUnread(t, s, wire)
			s.reclaim(netip.Addr{})
			resp, body, err := lc.response(5 * time.Second)
			if err != nil || resp.StatusCode != 200 || body != swWant("/second", "") {
				t.Fatalf("the request sent as its parked connection was reclaimed: %v %q %v; want it answered", resp, body, err)
			}
		})
	}
}
