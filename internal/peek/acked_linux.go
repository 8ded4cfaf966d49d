//go:build linux

package peek

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Acked is how many of the bytes sent on the socket its peer's TCP has
// acknowledged (TCP_INFO's bytes_acked): bytes the peer's kernel took
// into a socket still open, which its app may have read. Bytes that met
// a socket the peer had closed are answered with a reset, not
// acknowledged. ok is false when the kernel does not say (not a TCP
// socket, or a kernel older than 4.2, whose TCP_INFO ends before
// bytes_acked). One getsockopt(2); it allocates nothing but its callback,
// once per Peeker.
func (p *Peeker) Acked() (n uint64, ok bool) {
	if p.raw == nil {
		return 0, false
	}
	if p.ackFn == nil {
		p.ackFn = p.readAcked
	}
	p.acked, p.ackOK = 0, false
	if err := p.raw.Control(p.ackFn); err != nil || !p.ackOK {
		return 0, false
	}
	return p.acked, true
}

// readAcked reads bytes_acked into p.acked, p.ackOK when the kernel
// filled it. The info is on the stack: unix.GetsockoptTCPInfo would
// allocate it, and Control's callback a closure, per call.
func (p *Peeker) readAcked(fd uintptr) {
	var info unix.TCPInfo
	l := uint32(unsafe.Sizeof(info))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return
	}
	if uintptr(l) < unsafe.Offsetof(info.Bytes_acked)+unsafe.Sizeof(info.Bytes_acked) {
		return
	}
	p.acked, p.ackOK = info.Bytes_acked, true
}
