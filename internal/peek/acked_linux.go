//go:build linux

package peek

import "golang.org/x/sys/unix"

// Acked is how many of the bytes sent on the socket its peer's TCP has
// acknowledged (TCP_INFO's bytes_acked): bytes the peer's kernel took
// into a socket still open, which its app may have read. Bytes that met
// a socket the peer had closed are answered with a reset, not
// acknowledged. ok is false when the kernel does not say (not a TCP
// socket); a kernel older than 4.2 says 0.
func (p *Peeker) Acked() (n uint64, ok bool) {
	if p.raw == nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var err error
	if cerr := p.raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return 0, false
	}
	return info.Bytes_acked, true
}
