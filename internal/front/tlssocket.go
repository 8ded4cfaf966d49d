package front

import (
	"crypto/tls"
	"net"
	"sync/atomic"
)

// tlsSocket is the socket under a TLS connection, following the record
// framing of what TLS reads from it. A record TLS has begun and not
// received whole shows nowhere else: not at the socket (read already),
// not as plaintext (not decrypted yet). Its client has begun sending,
// and the connection is not idle: Shutdown spares it, the idle wait does
// not park it, and it is not reclaimed as idle.
//
// Only the connection's reader reads it; midRecord may be asked from any
// goroutine.
type tlsSocket struct {
	net.Conn
	// left is what remains of the current record's body; hdr gathers
	// the next record's header, hdrN bytes of it so far.
	left int
	hdr  [recordHeader]byte
	hdrN int
	mid  atomic.Bool
}

// recordHeader is a TLS record header's length: type, version, length.
const recordHeader = 5

func (s *tlsSocket) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if n > 0 {
		s.follow(p[:n])
	}
	return n, err
}

// follow advances the record framing over b, what was just read.
func (s *tlsSocket) follow(b []byte) {
	for len(b) > 0 {
		if s.left > 0 {
			k := min(s.left, len(b))
			s.left -= k
			b = b[k:]
			continue
		}
		k := copy(s.hdr[s.hdrN:], b)
		s.hdrN += k
		b = b[k:]
		if s.hdrN == recordHeader {
			s.left = int(s.hdr[3])<<8 | int(s.hdr[4])
			s.hdrN = 0
		}
	}
	s.mid.Store(s.hdrN > 0 || s.left > 0)
}

// midRecord reports whether TLS holds part of a record of c's client:
// false for a connection not on a tlsSocket.
func midRecord(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		if s, ok := tc.NetConn().(*tlsSocket); ok {
			return s.mid.Load()
		}
	}
	return false
}
