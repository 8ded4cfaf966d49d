package testutil

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// PeerUnread is how many of the bytes c sent its peer, a socket of this
// host (a server under test on loopback), the peer has not read yet: those
// c has not delivered and those waiting in the peer's socket. A peer that
// closed its socket has none. It is the event a test of a half-sent
// request waits on before it vanishes or sends the rest: the server has
// read what came so far, rather than finding it together with what
// follows. Over TLS it counts the records' bytes. It asks Linux's
// sock_diag; elsewhere it knows nothing and says none, and the waits on
// it end at once.
func PeerUnread(c net.Conn) (int, error) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	local, lok := c.LocalAddr().(*net.TCPAddr)
	remote, rok := c.RemoteAddr().(*net.TCPAddr)
	if !lok || !rok {
		return 0, fmt.Errorf("peer of %T: not a TCP connection", c)
	}
	// A socket that is gone (closed, or reset by its peer) holds nothing.
	_, unsent, _, err := tcpQueues(local, remote)
	if errors.Is(err, errors.ErrUnsupported) {
		return 0, nil
	}
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return 0, err
	}
	unread, _, _, err := tcpQueues(remote, local)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return 0, err
	}
	return unsent + unread, nil
}

// AwaitPeerRead waits up to within for c's peer to leave at most n of the
// bytes sent unread (PeerUnread), and reports whether it came to that.
func AwaitPeerRead(c net.Conn, n int, within time.Duration) bool {
	return pollUntil(within, func() bool {
		u, err := PeerUnread(c)
		return err == nil && u <= n
	})
}

// AwaitAccepted waits up to within for addr's listening socket, of this
// host, to hold no connection its server has not accepted, and reports
// whether it came to that.
func AwaitAccepted(addr string, within time.Duration) bool {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return false
	}
	return pollUntil(within, func() bool {
		// A listening socket's receive queue is its accept queue.
		backlog, _, _, err := tcpQueues(a, &net.TCPAddr{IP: a.IP, Port: 0})
		return err == nil && backlog == 0 || errors.Is(err, errors.ErrUnsupported)
	})
}

// AwaitPeerSawEnd waits up to within for c's peer, a socket of this
// host, to have received the end of c (c was closed or shut for
// writing): the server can know its client has gone. It reports whether
// it came to that.
func AwaitPeerSawEnd(c net.Conn, within time.Duration) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	local, lok := c.LocalAddr().(*net.TCPAddr)
	remote, rok := c.RemoteAddr().(*net.TCPAddr)
	if !lok || !rok {
		return false
	}
	return pollUntil(within, func() bool {
		_, _, state, err := tcpQueues(remote, local)
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, errors.ErrUnsupported):
			return true // the peer's socket is gone, or there is no telling
		case err != nil:
			return false
		}
		// Every state after ESTABLISHED but FIN_WAIT1 and FIN_WAIT2 (the
		// peer closed first, and waits for c's end) follows a FIN from c.
		return state == tcpCloseWait || state == tcpLastAck || state == tcpClosing || state == tcpTimeWait || state == tcpClose
	})
}

// TCP states, as sock_diag names them (include/net/tcp_states.h).
const (
	tcpTimeWait  = 6
	tcpClose     = 7
	tcpCloseWait = 8
	tcpLastAck   = 9
	tcpClosing   = 11
)
