// Package peek owns looking at a TCP socket without reading it: whether
// the peer has sent something, closed, or is quiet, and waiting until it
// sends. The gateway asks it of a client that may have left, and of an
// idle upstream connection before reuse, once per request; a look costs
// one non-blocking recvfrom(2) with MSG_PEEK and allocates nothing.
//
// SendWait is for a request whose answer cannot come before it is sent:
// Go's Read, called after the write, first tries the socket, finds
// nothing (EAGAIN) and only then waits for the poller. On a machine whose
// syscalls trap to a hypervisor that try costs as much as the read itself.
// Wait is for a wait that may be long (a slow app's answer): it holds no
// buffer to read into while it waits. Acked says how much of what was
// sent the peer's TCP acknowledged: bytes that met a socket the peer had
// closed never are.
//
// Read and Write are a socket's reads and writes, with net.Conn's
// deadlines and errors, made as raw syscalls: the socket is non-blocking
// and a wait is the poller's, so none of them can block, and the
// runtime's bookkeeping around a syscall has nothing to do. That
// bookkeeping wakes the runtime's monitor thread whenever a syscall
// begins after all the process's processors were idle, and the monitor
// then polls every 20 µs for a millisecond: on a gateway whose
// processors idle between requests, a wake and some fifty sleeps a time,
// each a switch of threads. A race build makes its reads and sends with
// package syscall's calls instead, which the race detector sees.
package peek

import (
	"io"
	"net"
	"os"
	"sync"
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
// make one with New. Its looks and waits are for one goroutine at a time
// (the connection's own): Look, Wait and SendWait share its state, and
// SendWait's send does not take Go's write lock, so nothing else may
// write to the socket meanwhile, a Write included. Read and Write, each
// with state of its own under a lock of its own, may be called from any
// goroutine: an HTTP/2 connection's reader and writers share one.
type Peeker struct {
	c     net.Conn
	raw   syscall.RawConn
	fn    func(fd uintptr) bool
	n     uintptr
	errno syscall.Errno
	buf   [1]byte

	// waitFn is Wait's poller callback.
	waitFn func(fd uintptr) bool

	// Acked's callback, made at its first call, and what it read.
	ackFn func(fd uintptr)
	acked uint64
	ackOK bool

	// SendWait's state: what to send, whether it was sent, and what to
	// give it to once it was (SendWaitThen).
	sendFn func(fd uintptr) bool
	out    []byte
	sent   bool
	then   func([]byte)

	// Read's callback and state, under rmu; Write's under wmu.
	rmu    sync.Mutex
	readFn func(fd uintptr) bool
	rbuf   []byte
	rn     uintptr
	rerrno syscall.Errno

	wmu     sync.Mutex
	writeFn func(fd uintptr) bool
	wbuf    []byte
	wn      int
	werrno  syscall.Errno
}

// New returns a Peeker for c; its Look says Unknown when c is not a
// socket.
func New(c net.Conn) *Peeker {
	p := &Peeker{c: c}
	if sc, ok := c.(syscall.Conn); ok {
		p.raw, _ = sc.SyscallConn()
	}
	// Made once: a closure per look would allocate on every request. No
	// source address is asked for (unix.Recvfrom allocates one).
	p.fn = func(fd uintptr) bool {
		p.n, _, p.errno = unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p.buf[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		return true
	}
	p.sendFn = p.send
	p.writeFn = func(fd uintptr) bool {
		for p.wn < len(p.wbuf) {
			n, errno := sysSend(fd, p.wbuf[p.wn:])
			switch errno {
			case 0:
				p.wn += int(n)
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				p.werrno = errno
				return true
			}
		}
		return true
	}
	p.readFn = func(fd uintptr) bool {
		for {
			n, errno := sysRead(fd, p.rbuf)
			if errno == unix.EINTR {
				continue
			}
			if errno == unix.EAGAIN {
				return false
			}
			p.rn, p.rerrno = n, errno
			return true
		}
	}
	p.waitFn = func(fd uintptr) bool {
		for {
			p.fn(fd)
			if p.errno != unix.EINTR {
				return p.errno != unix.EAGAIN
			}
		}
	}
	return p
}

// Wait waits until the socket is readable (bytes or an end are there),
// its read deadline passes, or it is closed, without reading it: a wait
// that may be long holds no buffer to read into. It looks first, so bytes
// there before it began are found (unlike SendWait's wait). nil means the
// next read has what was found, bytes or an end of stream; an error is
// the one a read would have returned, in the form Read gives it: the
// deadline's, the close's, or the socket's own (a reset), which the look
// took from the socket, so that the next read would not see it. On a
// connection that is not a socket it returns nil at once: the read
// waits.
func (p *Peeker) Wait() error {
	if p.raw == nil {
		return nil
	}
	p.n, p.errno = 0, 0
	if err := p.raw.Read(p.waitFn); err != nil {
		if oe, ok := err.(*net.OpError); ok {
			oe.Op = "read" // (the raw read's own name for it is "raw-read")
		}
		return err
	}
	if p.errno != 0 && p.errno != unix.EAGAIN {
		return p.opError("read", os.NewSyscallError("read", p.errno))
	}
	return nil
}

// SendWait sends b on the socket without blocking and, when all of it was
// taken, waits until the socket is readable (the answer, an end, or an
// error is there), its read deadline passes, or it is closed, without
// reading it. It returns how much of b was sent; less than len(b), with
// the send's error if there was one, means no wait: the caller sends the
// rest the usual way, and reads the usual way in both cases, that read
// reporting what the wait found.
//
// The send happens inside the wait's registration with Go's poller, which
// is edge-triggered and forgets readiness seen before a wait begins: an
// answer that came between a send and a separate wait would not wake it.
// Bytes already on the socket before the send (which the look before a
// reuse rules out) may not wake it either; the read deadline bounds the
// wait then, and the read after it finds them.
func (p *Peeker) SendWait(b []byte) (int, error) { return p.SendWaitThen(b, nil) }

// SendWaitThen is SendWait that gives b to then as soon as all of it is
// sent, before the wait: the memory behind b need not be held while the
// answer is awaited. When less than all of b was sent, then is not
// called and b is still the caller's.
func (p *Peeker) SendWaitThen(b []byte, then func([]byte)) (int, error) {
	if p.raw == nil || len(b) == 0 {
		return 0, nil
	}
	p.out, p.sent, p.n, p.errno, p.then = b, false, 0, 0, then
	p.raw.Read(p.sendFn) // a wait's error is the next read's too
	p.out, p.then = nil, nil
	if p.errno != 0 {
		return int(p.n), p.errno
	}
	return int(p.n), nil
}

// send is SendWait's poller callback: first the send (false: now wait),
// then, once readable, done.
func (p *Peeker) send(fd uintptr) bool {
	if p.sent {
		return true
	}
	p.sent = true
	for {
		n, errno := sysSend(fd, p.out)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			p.errno = errno
			if errno == unix.EAGAIN {
				p.errno = 0 // nothing sent; the usual write waits for room
			}
			return true
		}
		p.n = n
		if n < uintptr(len(p.out)) {
			return true
		}
		if p.then != nil {
			p.then(p.out)
			p.out, p.then = nil, nil
		}
		return false
	}
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
	return found(p.n, p.errno)
}

// found is what a peeking recvfrom(2) that returned n and errno found.
func found(n uintptr, errno syscall.Errno) State {
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
		return Quiet
	case errno != 0, n == 0:
		return Closed
	}
	return Data
}

// Pending looks once at c's socket without blocking and without taking
// c's read lock, so another goroutine may be reading c meanwhile: it is
// for a shutdown deciding whether a connection is really idle. Unlike
// Look it allocates.
func Pending(c net.Conn) State {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Unknown
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Unknown
	}
	st := Unknown
	err = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		st = found(n, errno)
	})
	if err != nil {
		return Unknown
	}
	return st
}

// Read reads the socket as c's Read would, with a raw read(2).
func (p *Peeker) Read(b []byte) (int, error) {
	if p.raw == nil {
		return p.c.Read(b)
	}
	if len(b) == 0 {
		return 0, nil
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.rbuf, p.rn, p.rerrno = b, 0, 0
	err := p.raw.Read(p.readFn)
	p.rbuf = nil
	if err != nil {
		return 0, p.opError("read", err)
	}
	if p.rerrno != 0 {
		return 0, p.opError("read", os.NewSyscallError("read", p.rerrno))
	}
	if p.rn == 0 {
		return 0, io.EOF
	}
	return int(p.rn), nil
}

// Write writes b to the socket as c's Write would, with raw sends.
func (p *Peeker) Write(b []byte) (int, error) {
	if p.raw == nil {
		return p.c.Write(b)
	}
	if len(b) == 0 {
		return 0, nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.wbuf, p.wn, p.werrno = b, 0, 0
	err := p.raw.Write(p.writeFn)
	p.wbuf = nil
	if err != nil {
		return p.wn, p.opError("write", err)
	}
	if p.werrno != 0 {
		return p.wn, p.opError("write", os.NewSyscallError("write", p.werrno))
	}
	return p.wn, nil
}

// opError is err as the connection's own Read or Write would have given
// it: an *net.OpError named op, with both addresses, where the raw
// call's names its op "raw-read" or "raw-write" and only one address.
func (p *Peeker) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: p.c.LocalAddr().Network(), Source: p.c.LocalAddr(), Addr: p.c.RemoteAddr(), Err: err}
}
