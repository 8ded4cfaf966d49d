// Package peek owns looking at a TCP socket without reading it: whether
// the peer has sent something, closed, or is quiet. The gateway asks it of
// a client that may have left, and of an idle upstream connection before
// reuse, once per request; a look costs one non-blocking recvfrom(2) with
// MSG_PEEK and allocates nothing.
package peek

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// State is what a look at a socket found.
type State uint8

const (
	// Quiet: nothing to read, and the peer has not closed.
	Quiet State = iota
	// Data: the peer sent bytes not read yet.
	Data
	// Closed: the peer closed or reset the connection.
	Closed
	// Unknown: the connection is not a socket, or the look failed.
	Unknown
)

// Peeker looks at one connection's socket. Its zero value is unusable;
// make one with New, once per connection.
type Peeker struct {
	raw   syscall.RawConn
	fn    func(fd uintptr) bool
	n     uintptr
	errno syscall.Errno
	buf   [1]byte
}

// New returns a Peeker for c; its Look says Unknown when c is not a
// socket.
func New(c net.Conn) *Peeker {
	p := &Peeker{}
	if sc, ok := c.(syscall.Conn); ok {
		p.raw, _ = sc.SyscallConn()
	}
	// Made once: a closure per look would allocate on every request. No
	// source address is asked for (unix.Recvfrom allocates one).
	p.fn = func(fd uintptr) bool {
		p.n, _, p.errno = unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p.buf[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		return true
	}
	return p
}

// Look peeks at the socket without blocking.
func (p *Peeker) Look() State {
	if p.raw == nil {
		return Unknown
	}
	p.n, p.errno = 0, 0
	if p.raw.Read(p.fn) != nil {
		return Unknown
	}
	switch {
	case p.errno == unix.EAGAIN || p.errno == unix.EINTR:
		return Quiet
	case p.errno != 0, p.n == 0:
		return Closed
	}
	return Data
}
