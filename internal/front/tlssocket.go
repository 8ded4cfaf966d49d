package front

import (
	"crypto/tls"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/peek"
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
//
// It also bounds every write TLS makes by SendTimeout (send) from the
// write's start, as the HTTP/1.1 sink and the HTTP/2 guard leave it to:
// an answer's, and what TLS writes of its own from inside a read, such
// as the reply to a TLS 1.3 KeyUpdate. A deadline set for the last
// answer may have passed, or nearly, when the client sends one, and a
// reply that fails breaks the connection for good, losing the request
// behind it; with no deadline, a client that asks for replies and never
// reads them would hold its connection for ever.
type tlsSocket struct {
	net.Conn
	// left is what remains of the current record's body; hdr gathers
	// the next record's header, hdrN bytes of it so far.
	left int
	hdr  [recordHeader]byte
	hdrN int
	mid  atomic.Bool
	// lastEnded: the last read ended one record, began none, and took
	// less than it asked for; alerted: an alert came in the clear (see
	// drained).
	lastEnded bool
	alerted   bool
	// plain: the socket is one itself, not under a layer that reads
	// ahead of TLS (a PROXY header's): it is read and written with raw
	// syscalls, through the Peeker in io (see peeker).
	plain bool

	// gathered collects what TLS writes while gathering: the records of
	// one write, sent at once (gather). sending: they are being sent, and
	// a write from another goroutine (a KeyUpdate's reply, from inside a
	// read) waits on sent for them, whose sequence numbers come first.
	// Guarded by wmu.
	gathering bool
	gathered  *[]byte
	sending   bool
	sent      *sync.Cond
	// failed is the first write's error: nothing is written after it
	// (see Write). After a gathered send's, TLS, which counted the
	// records sent, must not write another behind them.
	failed error

	send time.Duration
	// io is the Peeker the socket is read and written through, made at
	// the first read or write after the connection last parked (park):
	// an idle connection holds no more than it must.
	io atomic.Pointer[peek.Peeker]
	// wmu guards the write deadline's state: set from other goroutines
	// (Shutdown cutting a handshake's writes) as writes check it.
	wmu sync.Mutex
	// wdeadline is the socket's write deadline (zero: none); own: Write
	// set it; stopped: it was set in the past, to fail writes.
	wdeadline time.Time
	own       bool
	stopped   bool
}

// recordHeader is a TLS record header's length: type, version, length;
// recordAlert an alert record's type.
const (
	recordHeader = 5
	recordAlert  = 21
)

func (s *tlsSocket) Read(p []byte) (int, error) {
	n, err := s.read(p)
	if n > 0 {
		s.follow(p[:n])
		// A read that filled p may have left the next record on the
		// socket, come before any wait begins, which would not see it.
		s.lastEnded = s.lastEnded && n < len(p)
	}
	return n, err
}

// Write bounds p's write (see tlsSocket). A write with less than send
// left of the deadline Write last set, or with none, or with one set for
// it that has passed, gets send and half as much again: half again, so
// that a run of writes needs a timer change only once half the bound is
// spent. A deadline set for it (a refusal's shorter bound) stands while
// it is ahead, and one already past when it was set stops writes.
//
// A write that fails fails every write after it. TLS gives up on the
// connection then anyway, all but its close_notify, which crypto/tls's
// Close would otherwise send under a deadline of its own, 5 s, to a
// client that has stopped reading: the close, and whatever waits on it
// (the HTTP/2 writer, and so the handler told of the failure), would
// wait that long.
func (s *tlsSocket) Write(p []byte) (int, error) {
	s.wmu.Lock()
	if s.gathering && s.stopped {
		// A deadline set past stops writes, gathered ones too: crypto/tls
		// sets one once its close_notify is gathered behind a last
		// answer (writeClosing), and a record after it (a KeyUpdate's
		// reply, from a read that took TLS's write lock as the alert let
		// go of it) must not go out behind the alert.
		err := &net.OpError{Op: "write", Net: s.LocalAddr().Network(), Source: s.LocalAddr(), Addr: s.RemoteAddr(),
			Err: os.ErrDeadlineExceeded}
		if s.failed == nil {
			s.failed = err
		}
		s.wmu.Unlock()
		return 0, err
	}
	if s.gathering {
		*s.gathered = append(*s.gathered, p...)
		s.wmu.Unlock()
		return len(p), nil
	}
	for s.sending {
		s.sent.Wait()
	}
	if err := s.failed; err != nil {
		s.wmu.Unlock()
		return 0, err
	}
	s.bound()
	s.wmu.Unlock()
	return s.writeSocket(p)
}

// newTLSSocket returns the socket under a TLS connection the server set
// up on c.
func newTLSSocket(c net.Conn, send time.Duration) *tlsSocket {
	return &tlsSocket{Conn: c, send: send, plain: plainSocket(c)}
}

// peeker is the Peeker the socket is read and written through; nil when
// it is not plain. Reads and writes come from several goroutines (an
// HTTP/2 connection's reader and writers); should two make one at once,
// each is a whole Peeker of the same socket, whose calls Go's own locks
// on the socket order.
func (s *tlsSocket) peeker() *peek.Peeker {
	if !s.plain {
		return nil
	}
	if pk := s.io.Load(); pk != nil {
		return pk
	}
	pk := peek.New(s.Conn)
	if !s.io.CompareAndSwap(nil, pk) {
		if other := s.io.Load(); other != nil {
			return other
		}
	}
	return pk
}

// parkTLS lets go of what c's socket holds only to read and write, as c
// parks (a Peeker is some 400 bytes): a parked connection holds its TLS
// state and its socket, no more.
func parkTLS(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		if s, ok := tc.NetConn().(*tlsSocket); ok {
			s.io.Store(nil)
		}
	}
}

// read reads the socket, with a raw syscall when it can (see package
// peek).
func (s *tlsSocket) read(p []byte) (int, error) {
	if pk := s.peeker(); pk != nil {
		return pk.Read(p)
	}
	return s.Conn.Read(p)
}

// writeSocket writes b to the socket; an error is kept as failed.
func (s *tlsSocket) writeSocket(b []byte) (int, error) {
	var n int
	var err error
	if pk := s.peeker(); pk != nil {
		n, err = pk.Write(b)
	} else {
		n, err = s.Conn.Write(b)
	}
	if err != nil {
		s.wmu.Lock()
		if s.failed == nil {
			s.failed = err
		}
		s.wmu.Unlock()
	}
	return n, err
}

// bound sets the write deadline a write beginning now gets (see Write),
// when the socket bounds writes (send). The caller holds wmu.
func (s *tlsSocket) bound() {
	if s.send <= 0 {
		return
	}
	if now := time.Now(); !s.stopped {
		left := s.wdeadline.Sub(now)
		if s.wdeadline.IsZero() || left <= 0 || s.own && left < s.send {
			s.wdeadline, s.own = now.Add(s.send+s.send/2), true
			s.Conn.SetWriteDeadline(s.wdeadline)
		}
	}
}

// writeOwn writes what gather returned, bounded as Write bounds a write,
// while other writes wait for it.
func (s *tlsSocket) writeOwn(b []byte) (int, error) {
	s.wmu.Lock()
	s.bound()
	s.wmu.Unlock()
	return s.writeSocket(b)
}

// SetWriteDeadline sets the socket's write deadline. One already past
// when set stops writes until the next is set (Shutdown's cut of a
// handshake, crypto/tls's close); one that passes later does not.
func (s *tlsSocket) SetWriteDeadline(t time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wdeadline, s.own = t, false
	s.stopped = !t.IsZero() && !t.After(time.Now())
	return s.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines, the write's as SetWriteDeadline does.
func (s *tlsSocket) SetDeadline(t time.Time) error {
	if err := s.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return s.SetWriteDeadline(t)
}

// follow advances the record framing over b, what was just read.
func (s *tlsSocket) follow(b []byte) {
	ended := 0
	for len(b) > 0 {
		if s.left > 0 {
			k := min(s.left, len(b))
			s.left -= k
			b = b[k:]
			if s.left == 0 {
				ended++
			}
			continue
		}
		k := copy(s.hdr[s.hdrN:], b)
		s.hdrN += k
		b = b[k:]
		if s.hdrN == recordHeader {
			// An alert in the clear (TLS 1.2's; 1.3 hides them as
			// application data): TLS, having handed over plaintext,
			// reads past a warning for what follows, whose plaintext it
			// then holds however the read ended.
			s.alerted = s.alerted || s.hdr[0] == recordAlert
			s.left = int(s.hdr[3])<<8 | int(s.hdr[4])
			s.hdrN = 0
			if s.left == 0 {
				ended++
			}
		}
	}
	mid := s.hdrN > 0 || s.left > 0
	s.mid.Store(mid)
	s.lastEnded = ended == 1 && !mid
}

// drained reports, once TLS has handed over all the plaintext it
// decrypted, whether it holds nothing more of the client's: TLS reads
// the socket only for a record it lacks part of, so when its last read
// ended exactly one record, began none and took all the socket had,
// that record, now decrypted, was all it held. Two records ended by one
// read may leave the second undecrypted in TLS's buffer, where no look
// at the socket can see it. A connection whose client sent an alert in
// the clear is never drained again (see follow).
func (s *tlsSocket) drained() bool { return s.lastEnded && !s.alerted }

// gatheredBufs holds the buffers answers' records are gathered in.
var gatheredBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// gather has tc make its records of p without writing them: they are
// returned, to go out in one send (writeOwn, or a peek.SendWait's), with
// what tc.Write returned. Until release, which gives the buffer back once
// they have gone, other writes wait: a TLS 1.3 KeyUpdate's reply, which
// another goroutine's read may write as soon as tc.Write returns, must
// follow them on the wire; so does another gather. release is called
// once, its argument unused (it is a peek.SendWaitThen's then).
func (s *tlsSocket) gather(tc *tls.Conn, p []byte) (out []byte, release func([]byte), n int, err error) {
	return s.gatherClosing(tc, p, false)
}

// gatherClosing is gather, with TLS's close_notify after p's records
// when closing.
func (s *tlsSocket) gatherClosing(tc *tls.Conn, p []byte, closing bool) (out []byte, release func([]byte), n int, err error) {
	bp := gatheredBufs.Get().(*[]byte)
	s.wmu.Lock()
	if s.sent == nil {
		s.sent = sync.NewCond(&s.wmu)
	}
	for s.gathering || s.sending {
		s.sent.Wait()
	}
	s.gathered, s.gathering = bp, true
	s.wmu.Unlock()
	made := false
	defer func() {
		if !made { // tc.Write panicked: nothing to send, nobody to wait for
			s.wmu.Lock()
			s.gathering, s.gathered = false, nil
			s.sent.Broadcast()
			s.wmu.Unlock()
		}
	}()
	n, err = tc.Write(p)
	if err == nil && closing {
		tc.CloseWrite()
	}
	made = true
	s.wmu.Lock()
	s.gathering, s.gathered, s.sending = false, nil, true
	out = *bp
	s.wmu.Unlock()
	release = func([]byte) {
		s.wmu.Lock()
		s.sending = false
		s.sent.Broadcast()
		s.wmu.Unlock()
		if cap(out) <= 64<<10 {
			*bp = out[:0]
			gatheredBufs.Put(bp)
		}
	}
	return out, release, n, err
}

// writeGathered writes p through tc, whose socket s is, the records TLS
// makes of each gatherPiece of it in one write: crypto/tls writes each
// on its own, and makes them small at a connection's start (about 1.2 KB
// until it has sent 128 KB), so that a 16 KB answer would take a dozen
// writes. Only the connection's own goroutine may close it meanwhile: a
// Close from another would wait behind the write, not break it, as
// crypto/tls's Close does a Write of its own.
func (s *tlsSocket) writeGathered(tc *tls.Conn, p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		piece := p[:min(len(p), gatherPiece)]
		n, err := s.writePiece(tc, piece)
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(piece):]
	}
	return written, nil
}

// gatherPiece bounds what one gathered write carries: its buffer, and
// the send a deadline bounds.
const gatherPiece = 32 << 10

func (s *tlsSocket) writePiece(tc *tls.Conn, p []byte) (int, error) {
	out, release, n, err := s.gather(tc, p)
	defer release(nil)
	if err != nil || len(out) == 0 {
		return n, err
	}
	if _, err := s.writeOwn(out); err != nil {
		return 0, err
	}
	return n, nil
}

// writeClosing writes p through tc, whose socket s is, as the
// connection's last: its records and the close_notify that ends it in
// one send, where crypto/tls's Close would send the alert on its own.
// tc writes nothing after it. The send has the write deadline the socket
// had before (a refusal's shorter one, or Shutdown's cut), not the one
// crypto/tls leaves past after the alert to fail later writes, which is
// set again once it is sent.
func (s *tlsSocket) writeClosing(tc *tls.Conn, p []byte) (int, error) {
	s.wmu.Lock()
	deadline, own, stopped := s.wdeadline, s.own, s.stopped
	s.wmu.Unlock()
	out, release, n, err := s.gatherClosing(tc, p, true)
	defer release(nil)
	if err != nil || len(out) == 0 {
		return n, err
	}
	s.SetWriteDeadline(deadline)
	s.wmu.Lock()
	s.own, s.stopped = own, stopped
	s.wmu.Unlock()
	if _, err := s.writeOwn(out); err != nil {
		return 0, err
	}
	// Nothing after the close_notify, as crypto/tls asked: not a
	// KeyUpdate's reply, written from a read that waited for this send.
	s.SetWriteDeadline(time.Now())
	return n, nil
}

// sendWait writes p through tc, whose socket s is, in one send that
// then waits until the client sends again (peek.SendWait): the records
// TLS makes of p are gathered, not written one by one. It returns how
// much of p was written and whether the wait was made; a send the socket
// did not take whole is finished with writeOwn, unwaited. The wait
// needs the connection's reader to be the caller: nothing else may read
// meanwhile. Neither p nor the records are held through the wait: p is
// given to then once TLS has made its records of all of it, and the
// records' buffer goes back once they are sent.
func (s *tlsSocket) sendWait(tc *tls.Conn, pk *peek.Peeker, p []byte, then func([]byte)) (int, bool, error) {
	out, release, n, err := s.gather(tc, p)
	if err != nil || len(out) == 0 {
		release(nil)
		return n, false, err
	}
	if n == len(p) && then != nil {
		then(p)
	}
	sent, err := pk.SendWaitThen(out, release) // which releases, once all is sent
	if sent == len(out) {
		return n, true, nil
	}
	if err != nil {
		sent = 0 // the usual write reports the socket's error in Go's form
	}
	_, err = s.writeOwn(out[sent:])
	release(nil)
	if err != nil {
		return 0, false, err
	}
	return n, false, nil
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

// drainedTLS reports whether c is TLS the server set up, on a tlsSocket
// that bounds its writes, over a plain socket (no PROXY header reader,
// which may hold bytes of its own), and holds nothing of its client's
// beyond the plaintext it handed over (see drained).
func drainedTLS(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		s, ok := tc.NetConn().(*tlsSocket)
		return ok && s.send > 0 && plainSocket(s.Conn) && s.drained()
	}
	return false
}

// socketBounds reports whether c's writes are bounded by its socket: TLS
// the server set up on a tlsSocket, not TLS from a listener of the
// caller's.
func socketBounds(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		s, ok := tc.NetConn().(*tlsSocket)
		return ok && s.send > 0
	}
	return false
}
