package upstream

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/peek"
)

// Conn is one keep-alive connection to a member. While an exchange uses
// it, it belongs to that exchange; Finish gives it back.
type Conn struct {
	pool *Pool
	conn net.Conn
	// raw is the TCP connection under conn: conn itself, or the socket
	// under TLS.
	raw net.Conn
	// tls is conn when it is TLS, for the look before reuse.
	tls *tls.Conn
	// tls13: the handshake negotiated TLS 1.3, in which the server's
	// verdict on a client certificate comes after the client's handshake
	// ends (see cause.Progress.TLS13).
	tls13 bool
	src   source
	dst   sink
	br    *bufio.Reader
	bw    *bufio.Writer
	// head is the block a request's head is written into, from heads,
	// until it is sent; putHeadFn is putHead, made once.
	head      *[]byte
	putHeadFn func([]byte)
	// idleSince is when the connection was last returned to the pool.
	idleSince time.Time
	// bodyless: the response being read may not carry a body.
	bodyless bool
	// reuse: the response did not ask to close.
	reuse bool

	// peek looks at the socket before every reuse.
	peek *peek.Peeker
}

// ErrHeadTooLarge: the app's response head is larger than the limit.
var ErrHeadTooLarge = errors.New("response head larger than the limit")

// source reads the socket for the buffered reader; while a head is read
// it counts, and fails the read past the head limit, so that an app
// writing an endless header line costs at most the limit in memory.
//
// While a body of known length is read, each read of the socket must
// return within idle: an app that stops in the middle of such a body
// holds its instance and connection no longer than it may take for its
// head (a stream, whose silences are normal, is let go when its client
// leaves instead).
type source struct {
	c    net.Conn
	left int64         // bytes the head may still take; < 0 when no head is read
	idle time.Duration // bound on each socket read of a body; 0: none
	// interrupted: Interrupt was called; no read may re-arm a deadline
	// over the one it set.
	interrupted atomic.Bool
	// armed: a read of the body set a deadline (idle), which Finish
	// clears.
	armed bool
	peek  *peek.Peeker // reads the socket raw when set (plain TCP)
}

func (s *source) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, ErrHeadTooLarge
	}
	if s.interrupted.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	if s.idle > 0 {
		s.c.SetReadDeadline(time.Now().Add(s.idle))
		s.armed = true
		if s.interrupted.Load() {
			// Interrupt came between the look above and this deadline,
			// which may have replaced its cut: cut again.
			s.c.SetReadDeadline(time.Unix(1, 0))
			return 0, os.ErrDeadlineExceeded
		}
	}
	if s.left > 0 && int64(len(p)) > s.left {
		p = p[:s.left]
	}
	var n int
	var err error
	if s.peek != nil {
		n, err = s.peek.Read(p)
	} else {
		n, err = s.c.Read(p)
	}
	if s.left > 0 {
		s.left -= int64(n)
	}
	return n, err
}

// sink writes the request to the socket; each write must complete within
// timeout: an app that stops reading an upload is given up on, while one
// that keeps reading may take as long as the client takes to send.
//
// The write that ends a request may also wait for the answer (sendWait):
// see peek.SendWait.
type sink struct {
	c       net.Conn
	timeout time.Duration
	// peek is the socket's Peeker when the connection is plain TCP, for
	// the send that waits; nil under TLS.
	peek *peek.Peeker
	// wait: the next write ends the request, and may wait for its answer
	// until the read deadline set for it. waited: it did.
	wait, waited bool
	// then, when set, is given what the waiting write sent, once all of
	// it is (peek.SendWaitThen).
	then func([]byte)
	// writes counts the exchange's writes: only a request sent in one
	// write may wait, since an app may answer a request's head before
	// its body's end has come (a 401 or 413 to an upload), and the
	// poller forgets an answer that came before the wait (see
	// peek.SendWait).
	writes int
	// sent counts the bytes of the exchange's request the socket took:
	// a request whose sending failed after some reached the app may have
	// been read, in part, by it.
	sent int64
	// ackedBefore is what the app's TCP had acknowledged of the
	// connection's bytes before an upload on a reused connection began
	// (peek.Acked), when ackedKnown: see nothingAcked.
	ackedBefore uint64
	ackedKnown  bool
}

func (s *sink) Write(p []byte) (int, error) {
	s.writes++
	n, err := s.writeOrWait(p)
	s.sent += int64(n)
	return n, err
}

func (s *sink) writeOrWait(p []byte) (int, error) {
	if s.wait && s.peek != nil {
		s.wait = false
		n, err := s.peek.SendWaitThen(p, s.then)
		if n == len(p) {
			s.waited = true
			return n, nil
		}
		if err != nil {
			// The usual write reports the socket's error in Go's form.
			n = 0
		}
		m, err := s.write(p[n:])
		return n + m, err
	}
	return s.write(p)
}

func (s *sink) write(p []byte) (int, error) {
	if s.timeout > 0 {
		s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	}
	if s.peek != nil {
		return s.peek.Write(p)
	}
	return s.c.Write(p)
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
	heads   = sync.Pool{New: func() any { b := make([]byte, 0, headBlock); return &b }}
)

// headBlock is a head block's size: most requests' heads fit, and one
// that does not grows its block, which goes back to the pool unless it
// grew past maxHeadBlock.
const headBlock, maxHeadBlock = 1 << 10, 16 << 10

// newConn wraps c, whose TCP connection is raw (c itself unless c is
// TLS).
func newConn(p *Pool, c, raw net.Conn) *Conn {
	pc := &Conn{pool: p, conn: c, raw: raw, src: source{c: c, left: -1}, dst: sink{c: c}}
	pc.putHeadFn = pc.putHead
	pc.tls, _ = c.(*tls.Conn)
	if pc.tls != nil {
		pc.tls13 = pc.tls.ConnectionState().Version == tls.VersionTLS13
	}
	pc.peek = peek.New(raw)
	if pc.tls == nil {
		pc.dst.peek = pc.peek
		pc.src.peek = pc.peek
	}
	return pc
}

// begin readies the connection for an exchange whose writes must each
// complete within timeout.
func (pc *Conn) begin(timeout time.Duration) {
	pc.src.idle, pc.dst.timeout, pc.dst.writes, pc.dst.sent = 0, timeout, 0, 0
	pc.dst.ackedKnown = false
}

// noteAcked records what the app's TCP has acknowledged so far, before
// an upload on a reused connection: one getsockopt(2), for uploads only.
// The connection carried a request the app answered, which its TCP
// acknowledged: a count of 0 is a kernel that does not keep it (gVisor,
// WSL 1, …), where every failed upload would be taken for stale and
// sent again though the app may have read it.
func (pc *Conn) noteAcked() {
	n, ok := pc.peek.Acked()
	pc.dst.ackedBefore, pc.dst.ackedKnown = n, countsAcked(n, ok)
}

// countsAcked reports whether n, what the kernel said was acknowledged
// on a reused connection before an upload, is a count: Linux counts the
// SYN, so a connection's count is never 0 where it is kept.
func countsAcked(n uint64, ok bool) bool { return ok && n > 0 }

// nothingAcked reports whether the app's TCP acknowledged none of the
// request whose sending failed, though the socket took some of it: the
// bytes met a connection the app had closed (an idle close crossing the
// request, answered with a reset), not an app that may have read them.
func (pc *Conn) nothingAcked() bool {
	if !pc.dst.ackedKnown {
		return false
	}
	now, ok := pc.peek.Acked()
	return ok && now == pc.dst.ackedBefore
}

// takeReader gives the connection its reader, when it holds none, once
// the answer is there to read (awaitFirstByte). An idle connection in the
// pool holds no buffer: with hundreds kept per member, their memory would
// be most of what the pool costs; nor does one whose request is sent and
// whose answer has not begun, under load most of the busy ones. An
// exchange holds its head's block (takeHead) only until the head is sent,
// and a writer (takeWriter) only for a request with a body, until it is
// sent.
func (pc *Conn) takeReader() {
	if pc.br == nil {
		pc.br = readers.Get().(*bufio.Reader)
		pc.br.Reset(&pc.src)
	}
}

// takeWriter gives the connection a writer, for a request's body.
func (pc *Conn) takeWriter() {
	pc.bw = writers.Get().(*bufio.Writer)
	pc.bw.Reset(&pc.dst)
}

// takeHead returns an empty block to write a request's head into.
func (pc *Conn) takeHead() []byte {
	pc.head = heads.Get().(*[]byte)
	return (*pc.head)[:0]
}

// putHead gives the head's block back, as b, what the head grew it to;
// once: a second call does nothing.
func (pc *Conn) putHead(b []byte) {
	if pc.head == nil {
		return
	}
	if cap(b) <= maxHeadBlock {
		*pc.head = b[:0]
	}
	heads.Put(pc.head)
	pc.head = nil
}

// putWriter gives the writer back once the request is sent: the answer
// is read with the reader alone. What it holds is dropped.
func (pc *Conn) putWriter() {
	if pc.bw != nil {
		pc.bw.Reset(nil)
		writers.Put(pc.bw)
		pc.bw = nil
	}
}

// readBuffered is how many bytes the reader holds, if there is one.
func (pc *Conn) readBuffered() int {
	if pc.br == nil {
		return 0
	}
	return pc.br.Buffered()
}

// putReader gives the reader back; what it holds is dropped.
func (pc *Conn) putReader() {
	if pc.br != nil {
		pc.br.Reset(nil)
		readers.Put(pc.br)
		pc.br = nil
	}
}

// putBuffers gives the buffers back, once; what they hold is dropped.
func (pc *Conn) putBuffers() {
	pc.putWriter()
	pc.putReader()
}

// NetConn is the connection, for an upgraded exchange that now carries
// another protocol.
func (pc *Conn) NetConn() net.Conn { return pc.conn }

// Reader is the connection's buffered reader: an upgraded exchange reads
// what the app sent after its 101 from it first.
func (pc *Conn) Reader() *bufio.Reader { return pc.br }

// Finish ends the exchange's use of the connection. clean says the
// response's body was read exactly to its end (or had none); only then,
// and when the app kept the connection alive and sent nothing more so far,
// does it go back to the pool; else it is closed. A connection whose
// response could not carry a body (HEAD, 204, 304) is closed too: the app
// bug this class invites is a body sent anyway, a moment later, which
// would be read as the next request's answer (see the package doc).
func (pc *Conn) Finish(clean bool) {
	if clean && pc.reuse && !pc.src.interrupted.Load() && !pc.bodyless && pc.br.Buffered() == 0 {
		pc.src.idle = 0
		if pc.src.armed {
			// The body's read deadline must not outlive it: past it,
			// the look before reuse would fail.
			pc.src.armed = false
			pc.conn.SetReadDeadline(time.Time{})
		}
		pc.putBuffers()
		pc.pool.put(pc)
		return
	}
	pc.Close()
}

// Interrupt ends the exchange's reads from the app now and for good (the
// client left): the connection is spent. Safe from any goroutine.
func (pc *Conn) Interrupt() {
	pc.src.interrupted.Store(true)
	pc.conn.SetReadDeadline(time.Unix(1, 0))
}

// Close closes the connection and recycles its buffers. A TLS connection
// is closed without a close_notify: HTTP/1.1's framing, not TLS's, says
// where an answer ends, and the alert's write could hold the closing
// goroutine for seconds on an upstream that stopped reading.
func (pc *Conn) Close() {
	pc.raw.Close()
	pc.putBuffers()
}

// quiet peeks at the socket without blocking: ok when the app has sent
// nothing and not closed, closed when the look found its close. One
// syscall; a byte there is one the app sent unasked (a surplus body, a
// 408, a late body to HEAD), and an EOF a close that would cross our next
// request.
//
// Under TLS the look is at the TCP socket under it: any byte there is a
// record the upstream sent while the connection idled, a close_notify or
// a stray answer, and either spends the connection (the session tickets a
// TLS 1.3 server sends come before its first answer, so they were read
// with it). Records that crypto/tls has already pulled off the socket but
// not decrypted are looked at too (tlsQuiet).
func (pc *Conn) quiet() (ok, closed bool) {
	if pc.readBuffered() > 0 {
		return false, false
	}
	// Unknown (a look that failed) is not quiet: only a socket seen
	// empty may carry another request.
	switch pc.peek.Look() {
	case peek.Quiet:
	case peek.Closed:
		return false, true
	default:
		return false, false
	}
	return pc.tls == nil || pc.tlsQuiet(), false
}

// tlsQuiet reports whether crypto/tls holds nothing of the upstream's
// either: a read whose deadline has passed decrypts what it has buffered
// and, with nothing, fails at once without a syscall (a timeout leaves a
// tls.Conn usable). What it finds, an answer's byte or a close_notify's
// EOF, spends the connection. A record only partly arrived is as unseen
// as bytes still on the wire, the limit that plain connections have too.
func (pc *Conn) tlsQuiet() bool {
	pc.tls.SetReadDeadline(time.Unix(1, 0))
	var b [1]byte
	n, err := pc.tls.Read(b[:])
	pc.tls.SetReadDeadline(time.Time{})
	return n == 0 && IsDeadline(err)
}
