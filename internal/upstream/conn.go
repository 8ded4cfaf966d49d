package upstream

import (
	"bufio"
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
	src  source
	dst  sink
	br   *bufio.Reader
	bw   *bufio.Writer
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
	}
	if s.left > 0 && int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.c.Read(p)
	if s.left > 0 {
		s.left -= int64(n)
	}
	return n, err
}

// sink writes the request to the socket; each write must complete within
// timeout: an app that stops reading an upload is given up on, while one
// that keeps reading may take as long as the client takes to send.
type sink struct {
	c       net.Conn
	timeout time.Duration
}

func (s *sink) Write(p []byte) (int, error) {
	if s.timeout > 0 {
		s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	}
	return s.c.Write(p)
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

func newConn(p *Pool, c net.Conn) *Conn {
	pc := &Conn{pool: p, conn: c, src: source{c: c, left: -1}, dst: sink{c: c}}
	pc.br = readers.Get().(*bufio.Reader)
	pc.br.Reset(&pc.src)
	pc.bw = writers.Get().(*bufio.Writer)
	pc.bw.Reset(&pc.dst)
	pc.peek = peek.New(c)
	return pc
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
		if pc.src.idle > 0 {
			// The body's read deadline must not outlive it: past it,
			// the look before reuse would fail.
			pc.src.idle = 0
			pc.conn.SetReadDeadline(time.Time{})
		}
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

// Close closes the connection and recycles its buffers.
func (pc *Conn) Close() {
	pc.conn.Close()
	pc.bw.Reset(nil)
	writers.Put(pc.bw)
	pc.br.Reset(nil)
	readers.Put(pc.br)
}

// quiet peeks at the socket without blocking: true when the app has sent
// nothing and not closed. One syscall; a byte there is one the app sent
// unasked (a surplus body, a 408, a late body to HEAD), and an EOF a close
// that would cross our next request.
func (pc *Conn) quiet() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	// Unknown (a look that failed) is not quiet: only a socket seen
	// empty may carry another request.
	return pc.peek.Look() == peek.Quiet
}
