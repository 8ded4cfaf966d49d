package front

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/http1"
	"github.com/gatehouse/gatehouse/internal/peek"
	"github.com/gatehouse/gatehouse/internal/spool"
)

// A connection's state, for Shutdown:
//
//	        request's first byte          response written
//	idle ─────────────────────────▶ active ─────────────────▶ idle
//	  │  ▲                            ▲
//	  │  └── readable ── parked ◀── idle a while, nothing buffered (sockets, TLS on them)
//	  │                    │          │
//	  │                    │          └── a request begun (its last) ──┐
//	  │                    │                                           │
//	  └── Shutdown or reclaim cuts its wait short (stopWait) ──▶ stopping
//	                       │                                           │
//	                       │ Shutdown or reclaim           nothing begun│
//	                       ▼                                           ▼
//	                     closed ◀──────────────────────────────────────┘
//
// An active connection ends (closed) after its answer when it must. A
// parked one whose client began a request as Shutdown came, or whose
// poller stopped, goes back to idle on a goroutine. A connection that
// goes on as HTTP/2 is active from then on (over TLS from idle, or from
// stopping, its requests maybe in TLS's buffer, once its handshake
// ends), parked in the poller or not: Shutdown tells it GOAWAY.
const (
	connIdle int32 = iota
	connActive
	connClosed
	// connParked: idle, with no goroutine and no buffers; the poller
	// owns it (park_linux.go).
	connParked
	// connStopping: idle, and Shutdown or reclaim has cut its
	// goroutine's wait short (stopWait); the goroutine ends it, or
	// serves what it had begun to read as its last request (takeUpBegun).
	connStopping
)

// The buffers a connection holds only while it reads or answers a
// request: the read buffer bounds what one read of the socket takes (a
// head larger than it is gathered in conn.big), the write buffer what an
// answer sends at once.
const (
	readSize  = 8 << 10
	writeSize = 4 << 10
)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readSize) }}
)

// parkAfter is how long a connection idle after an answer keeps its
// goroutine and buffers, waiting for the next request as it came, before
// it gives both up and parks (or, unparkable, waits with neither): a
// client in the middle of a burst sends its next request well within it,
// and pays nothing for parking.
const parkAfter = 50 * time.Millisecond

// conn serves the keep-alive requests of one client connection. What it
// needs only to read and answer a request (reqState: the buffers, the
// request, header map, URL, body reader, response writer and context) is
// made when a request comes and reused from one request to the next while
// they keep coming: nothing of a finished request is retained anywhere
// else (the access entry copies what it keeps, and the strings parsed from
// a head point into that head's own copy). A connection idle long enough
// drops it, and holds only the few words below: thousands of idle
// keep-alive connections cost little more than their sockets.
type conn struct {
	*reqState // nil while idle past parkAfter

	s *Server
	c net.Conn
	// tls is the handshake of a TLS connection; nil on a plain one.
	tls *tls.ConnectionState
	// buffered is the connection's budget (Exchange.Buffered).
	buffered spool.Budget
	// deadline ends the wait for the next request (see monoNow):
	// HeadTimeout after the connection came (first), KeepaliveTimeout
	// after the last answer.
	deadline int64
	state    atomic.Int32
	// idleAt is when the connection last went idle after an answer
	// (monoNow), 0 while a request is served or before the first: when
	// connections run out, the one idle longest is closed (reclaim).
	idleAt atomic.Int64
	// waits counts the answers whose last write waited for the next
	// request (primeSendWait); tests read it.
	waits atomic.Int64
	// writeFailed: a write to the client failed, and its close sends
	// TLS no close_notify (see end).
	writeFailed atomic.Bool
	// cut: the answer was cut short (Writer.Abort), and the close sends
	// TLS no close_notify either: to a client whose answer ends with the
	// connection (HTTP/1.0's), the alert would say it ended whole.
	cut bool
	// ip is the client address the connection is counted against
	// (Options.MaxConnectionsPerIP); the zero Addr when it is not.
	ip netip.Addr
	// stopMu orders the cut of an idle wait (stopWait) before the
	// goroutine takes up a request it had begun to read (takeUpBegun), so that
	// no cut lands after the request's own read deadline is set.
	stopMu sync.Mutex
	first  bool
	// last: the request taken up after a cut is the connection's last.
	last bool
	// handshaking: its TLS handshake runs; changed to false under
	// stopMu, so that stopWait's cut of its writes is undone after it.
	handshaking atomic.Bool
	woke        bool // the poller found the parked connection readable
	// tunneled: the connection carries another protocol now (Tunnel),
	// and the front serves nothing more on it.
	tunneled bool
	// h2 is set once the connection goes on as HTTP/2 (h2.go).
	h2 *h2Side
}

// reqState is what a connection needs only while it reads and answers
// requests.
type reqState struct {
	br *bufio.Reader // from readers
	bw answerBuf
	// giveWriter gives bw's memory back (peek.SendWaitThen's then): made
	// once, as a closure per answer would allocate.
	giveWriter func([]byte)

	// ctx is the requests' context: cancelled when the client goes away,
	// when the connection ends, and when it drops its request state.
	ctx    context.Context
	cancel context.CancelFunc
	remote string
	// peek looks at the client's socket (watcher.check); made at the
	// first look.
	peek *peek.Peeker

	// pending are bytes to read before the socket's: the byte the
	// watcher or the idle wait took (the start of the next request), or
	// what followed a head that outgrew the read buffer.
	pending    []byte
	pendingBuf [1]byte
	// big holds a head that outgrew the read buffer, and what came after
	// it in the same reads.
	big []byte

	// short: the socket's last read returned less than it asked for,
	// which takes everything the socket held (see sendWait).
	short bool
	// sendWait: the answer's next write is its last and may wait for the
	// next request (primeSendWait); waitedTo: it did, until that
	// deadline (monoNow) at most; 0 when it did not.
	sendWait bool
	waitedTo int64
	// lastSend: the answer's next write is the connection's last, over
	// TLS: its close_notify goes in the same send (tlsSocket.writeClosing).
	lastSend bool

	// bodyTimeout bounds each read of the current request's body.
	bodyTimeout time.Duration
	// sendTimeout bounds each write to the client: SendTimeout, or a
	// second for a request the front refuses.
	sendTimeout time.Duration
	closeAfter  bool // the client asked for Connection: close, or the exchange broke

	x       Exchange
	head    http1.RequestHead
	url     url.URL
	body    bodyReader
	w       Writer
	watch   watcher
	scratch [24]byte
}

// epoch is the origin of the connections' deadlines: nanoseconds on the
// monotonic clock, one word where a time.Time takes three.
var epoch = time.Now()

// monoNow is the time now as a deadline.
func monoNow() int64 { return int64(time.Since(epoch)) }

// monoTime is a deadline as a time.Time, for SetReadDeadline.
func monoTime(d int64) time.Time { return epoch.Add(time.Duration(d)) }

func newConn(s *Server, c net.Conn) *conn {
	fc := &conn{s: s, c: c}
	fc.state.Store(connIdle)
	return fc
}

// activate makes the connection's request state, when it has none.
func (fc *conn) activate() {
	if fc.reqState != nil {
		return
	}
	fc.reqState = &reqState{}
	fc.giveWriter = func([]byte) { fc.bw.give() }
	fc.ctx, fc.cancel = context.WithCancel(context.Background())
	// A PROXY protocol wrapper read its header at the connection's start
	// (setRemote): from then on RemoteAddr is a field's value.
	fc.remote = fc.c.RemoteAddr().String()
	fc.sendTimeout = fc.s.opts.SendTimeout
	fc.head.DropUnderscores = true
	req := (&http.Request{Header: http.Header{}, URL: &fc.url, TLS: fc.tls}).WithContext(fc.ctx)
	fc.buffered.SetLimit(fc.s.opts.ConnectionBuffer)
	fc.x = Exchange{side: fc, Req: req, W: &fc.w, IP: hostOf(fc.remote), ClientUnknown: clientUnknown(fc.c), Buffered: &fc.buffered}
	fc.body.fc = fc
	fc.w.fc = fc
	fc.w.own = http.Header{}
	fc.w.h = fc.w.own
	fc.watch.fc = fc
}

// setRemote learns the client's address. It runs on the connection's own
// goroutine, not in the accept loop: behind a PROXY protocol listener,
// RemoteAddr reads the header from the client, and a client slow to send
// it would hold up accepting everyone else. The address is formatted
// only with the request state.
func (fc *conn) setRemote() { fc.c.RemoteAddr() }

// clientUnknown reports whether c's PROXY protocol header said the
// client is unknown (see Exchange.ClientUnknown).
func clientUnknown(c net.Conn) bool {
	// Under TLS, the PROXY protocol wrapper is the socket's (socketOf).
	cu, ok := socketOf(c).(interface{ ClientUnknown() bool })
	return ok && cu.ClientUnknown()
}

func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// plainSocket reports whether c is a TCP or unix socket itself, with no
// layer above it (TLS, a PROXY protocol wrapper).
func plainSocket(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// parkable reports whether c can be parked: a plain socket, or TLS
// directly over one (whose state waits in its Conn, the socket in epoll);
// not one behind a PROXY protocol wrapper, which may hold bytes of its
// own.
func parkable(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		// On a tlsSocket only, which tells a record begun (see await).
		s, ok := tc.NetConn().(*tlsSocket)
		return ok && plainSocket(s.Conn)
	}
	return plainSocket(c)
}

// rawSocket is the socket of a parkable connection (under its TLS); nil
// for any other. (Made when needed, rather than kept: an idle connection
// holds no more than it must.)
func rawSocket(c net.Conn) syscall.RawConn {
	if !parkable(c) {
		return nil
	}
	raw, _ := socketOf(c).(syscall.Conn).SyscallConn()
	return raw
}

// source reads the client connection, after the pending bytes.
type source struct{ fc *conn }

func (s source) Read(p []byte) (int, error) {
	if fc := s.fc; len(fc.pending) > 0 {
		n := copy(p, fc.pending)
		fc.pending = fc.pending[n:]
		if len(fc.pending) == 0 {
			fc.pending = nil // not to keep a large head's array alive
		}
		return n, nil
	}
	var n int
	var err error
	if plainSocket(s.fc.c) {
		n, err = s.fc.watch.peeker().Read(p)
	} else {
		n, err = s.fc.c.Read(p)
	}
	s.fc.short = err == nil && n < len(p)
	return n, err
}

// sink writes to the client connection, each write within SendTimeout: a
// client that stops reading its answer is given up on.
type sink struct{ fc *conn }

// Write writes p; a failure is remembered for the connection's close
// (see conn.end).
func (s sink) Write(p []byte) (int, error) {
	n, err := s.send(p)
	if err != nil {
		s.fc.writeFailed.Store(true)
	}
	return n, err
}

func (s sink) send(p []byte) (int, error) {
	fc := s.fc
	if fc.sendWait {
		fc.sendWait = false
		if tc, ok := fc.c.(*tls.Conn); ok {
			n, waited, err := tc.NetConn().(*tlsSocket).sendWait(tc, fc.peek, p, fc.giveWriter)
			if !waited {
				fc.waitedTo = 0
			} else {
				fc.waits.Add(1)
			}
			return n, err
		}
		n, err := fc.peek.SendWaitThen(p, fc.giveWriter)
		if n == len(p) {
			fc.waits.Add(1)
			return n, nil
		}
		fc.waitedTo = 0
		if err != nil {
			n = 0 // the usual write reports the socket's error in Go's form
		}
		m, err := s.write(p[n:])
		return n + m, err
	}
	return s.write(p)
}

func (s sink) write(p []byte) (int, error) {
	// On a tlsSocket (TLS the server set up) the socket bounds each
	// write by SendTimeout itself: a deadline set here would also bound,
	// nearly spent, what TLS writes of its own later (a KeyUpdate's
	// reply). A refusal's shorter bound is set here.
	fc := s.fc
	bounds := socketBounds(fc.c)
	if !bounds || fc.sendTimeout != fc.s.opts.SendTimeout {
		fc.c.SetWriteDeadline(time.Now().Add(fc.sendTimeout))
	}
	// More than a small record's worth goes in one write, and so does
	// the connection's last answer with its close_notify.
	if bounds && (len(p) > oneRecord || fc.lastSend) {
		tc := fc.c.(*tls.Conn)
		if fc.lastSend && len(p) <= gatherPiece {
			return tc.NetConn().(*tlsSocket).writeClosing(tc, p)
		}
		return tc.NetConn().(*tlsSocket).writeGathered(tc, p)
	}
	if plainSocket(fc.c) {
		return fc.watch.peeker().Write(p)
	}
	return fc.c.Write(p)
}

// oneRecord is at most what crypto/tls puts in one record at a
// connection's start.
const oneRecord = 1 << 10

// primeSendWait arms the answer's last write (the flush that ends it) to
// wait for the next request in the same breath (peek.SendWait), when the
// connection is known to be empty: the request and its body read to
// their end by a read that took all there was, nothing buffered, and no
// watcher reading. That is a plain socket, or TLS on a tlsSocket that
// holds no record undecrypted (drainedTLS), whose answer's records go
// out in one send. The wait lasts until the keep-alive
// grace (parkAfter) ends, after which await parks the connection at
// once; a request that comes meanwhile is read without first finding
// the socket empty (one syscall fewer per request).
//
// A client that pipelines its next request while this one is served, in
// a segment of its own, may not wake the wait (the poller forgets what
// it saw before the wait began); that request is then read when the
// grace ends and the connection parks, at most parkAfter late.
func (fc *conn) primeSendWait() {
	fc.waitedTo = 0
	// The watcher first: while its read runs (or has ended unjoined, until
	// watch.stop), pending is its to write.
	if fc.watch.active() {
		return
	}
	if fc.closeAfter || fc.watch.gone.Load() || !fc.short || fc.body.n != 0 || fc.readBuffered() > 0 || len(fc.pending) > 0 ||
		fc.bw.Buffered() == 0 || !(plainSocket(fc.c) || drainedTLS(fc.c)) || fc.s.opts.KeepaliveTimeout <= parkAfter {
		return
	}
	p := fc.watch.peeker()
	if p == nil {
		return
	}
	fc.waitedTo = monoNow() + int64(parkAfter)
	fc.c.SetReadDeadline(monoTime(fc.waitedTo))
	fc.sendWait = true
}

// serve serves a new connection, on its own goroutine.
func (fc *conn) serve() { fc.run(true) }

// run reads and answers requests until the client or the server ends the
// connection, or it parks or goes on as HTTP/2 on another goroutine;
// fresh: the connection was just accepted.
func (fc *conn) run(fresh bool) {
	handed := false // the poller or the HTTP/2 goroutine ends it
	defer func() {
		if !handed {
			fc.end()
		}
	}()
	defer fc.recover()
	if fresh {
		fc.setRemote()
		if tc, ok := fc.c.(*tls.Conn); ok {
			if !fc.handshake(tc) {
				return
			}
			if fc.tls.NegotiatedProtocol == alpnH2 {
				// On a goroutine of its own: the handshake grew this
				// one's stack (to 16 KiB or so), which the connection's
				// reader would keep, idle or not, for as long as it
				// lives; a new one starts at the runtime's usual size.
				if !fc.state.CompareAndSwap(connIdle, connActive) && !fc.takeUp(true) {
					return
				}
				handed = true
				go fc.runH2(tc)
				return
			}
		}
		// A new connection gets HeadTimeout for its first request, as
		// with net/http; a kept-alive one KeepaliveTimeout for the next.
		fc.deadline, fc.first = monoNow()+int64(fc.s.opts.HeadTimeout), true
	}
	// No check for a shutdown here: a connection waiting for its next
	// request is idle, and Shutdown ends it as such (after its idle
	// grace). Closing it here instead would cut off the request of a
	// client told keep-alive a moment before, or one that just finished
	// its handshake, and answer it with a reset.
	for {
		switch fc.await() {
		case awaitEnd:
			return
		case awaitParked:
			// From here the connection is the poller's, or already
			// another goroutine's: nothing of it may be touched.
			handed = true
			return
		}
		if fc.dropEmptyLines() {
			continue
		}
		if !fc.state.CompareAndSwap(connIdle, connActive) && !fc.takeUpBegun() {
			return // its wait cut short, with no request begun
		}
		fc.idleAt.Store(0)
		if !fc.skipEmptyLines() {
			return
		}
		head, err := fc.readHead(!fc.first)
		fc.first = false
		if err != nil {
			fc.refuseRead(err)
			return
		}
		if string(head) == http1.PrefaceHead && fc.s.opts.H2C && fc.tls == nil {
			// What was read past the head goes with the connection; the
			// HTTP/1.1 buffers and request state go back, unused for as
			// long as the HTTP/2 connection lives.
			pending := fc.unread()
			fc.forget()
			handed = !fc.serveH2(&prefixConn{Conn: fc.c, pending: pending})
			return
		}
		if !fc.request(head) {
			return
		}
		if fc.body.n == 0 && fc.br.Buffered() == 0 && len(fc.pending) == 0 {
			// Nothing more to read for this request: its head is parsed
			// into strings of their own, and the watcher reads into
			// pending. A request waiting for its app holds no buffer.
			fc.putReader()
		}
		fc.c.SetReadDeadline(time.Time{})
		fc.s.h.Serve(&fc.x)
		if fc.tunneled {
			return // the handler's now, until it closes it
		}
		// Idle from when the answer went out: its last write may then
		// wait a while for the next request (primeSendWait).
		answered := monoNow()
		fc.w.end()
		fc.putWriter()
		fc.watch.stop()
		if fc.closeAfter || fc.watch.gone.Load() || !fc.drainBody() {
			return
		}
		if !fc.state.CompareAndSwap(connActive, connIdle) {
			return
		}
		fc.idleAt.Store(answered)
		fc.deadline = monoNow() + int64(fc.s.opts.KeepaliveTimeout)
	}
}

// What await found.
const (
	awaitRequest = iota // a request's first byte is buffered
	awaitEnd            // the connection ends: closed, or idle too long
	awaitParked         // the poller has it
)

// await waits for the next request's first byte, until fc.deadline. The
// buffers are taken for it; if nothing comes within parkAfter, they are
// given back and the connection parks, or, when it cannot, waits on its
// goroutine for one byte without them. Only a connection with nothing
// buffered is parked: a request partly read, or pipelined behind the
// last one, is read on.
func (fc *conn) await() int {
	fc.takeBuffers()
	// A connection the poller woke has something to read (or an end): it
	// parks again only after a request, and what its client began has
	// HeadTimeout to arrive, as a head split by a pause has, not what is
	// left of the keep-alive.
	woke := fc.woke
	fc.woke = false
	wait, grace := fc.deadline, false
	if woke {
		wait = min(wait, monoNow()+int64(fc.s.opts.HeadTimeout))
	}
	switch t := monoNow() + int64(parkAfter); {
	case fc.waitedTo != 0:
		// The answer's last write waited, with this grace as the
		// socket's read deadline (primeSendWait).
		grace = true
		fc.waitedTo = 0
	case t < wait && !woke:
		wait, grace = t, true
		fallthrough
	default:
		fc.setWait(monoTime(wait))
	}
	_, err := fc.br.Peek(1)
	if woke && errors.Is(err, os.ErrDeadlineExceeded) && peek.Pending(socketOf(fc.c)) == peek.Data {
		// The bound passed before the read was made (this goroutine was
		// held up longer than HeadTimeout): what woke it is there.
		fc.setWait(time.Now().Add(fc.s.opts.HeadTimeout))
		_, err = fc.br.Peek(1)
	}
	if err != nil && fc.takeUpBegun() {
		return fc.readOn()
	}
	if woke && errors.Is(err, os.ErrDeadlineExceeded) && !midRecord(fc.c) && monoNow() < fc.deadline {
		// What woke it began no request (a TLS KeyUpdate, which TLS
		// answered inside the read): idle still, it parks again until
		// its own deadline, rather than ending at HeadTimeout.
		grace = true
	}
	switch {
	case err == nil:
		if grace && (fc.first || !fc.headStarts()) {
			// The grace's bound is not the request's: the rest of the
			// head (or the CRLF some clients send after a body, RFC
			// 9112 §2.2) gets the connection's own deadline. (A kept-
			// alive request's head that has started is given its
			// HeadTimeout by readHead, before it reads.)
			fc.c.SetReadDeadline(monoTime(fc.deadline))
		}
		return awaitRequest
	case grace && errors.Is(err, os.ErrDeadlineExceeded) && midRecord(fc.c):
		// A request's first record under way: its head has begun, and
		// has its HeadTimeout, as a plain head split by a pause does.
		fc.c.SetReadDeadline(time.Now().Add(fc.s.opts.HeadTimeout))
		return awaitRequest
	case !grace || !errors.Is(err, os.ErrDeadlineExceeded) || fc.br.Buffered() > 0 || len(fc.pending) > 0,
		fc.state.Load() == connStopping: // cut short, nothing begun (takeUpBegun)
		return awaitEnd
	}
	// Over TLS too: the grace's read timed out inside TLS, which so holds
	// no whole record, and whatever comes next must come on the socket,
	// which wakes the poller.
	fc.forget()
	if fc.park() {
		return awaitParked
	}
	fc.setWait(monoTime(fc.deadline))
	var b [1]byte
	n, _ := fc.c.Read(b[:])
	if n == 0 {
		if !fc.takeUpBegun() {
			return awaitEnd
		}
		return fc.readOn()
	}
	fc.takeBuffers()
	fc.pendingBuf = b
	fc.pending = fc.pendingBuf[:1]
	return awaitRequest
}

// readOn reads on a request taken up after its wait was cut short
// (takeUpBegun): its first byte, buffered already (by lastLook, say) or
// still to come under the request's deadline.
func (fc *conn) readOn() int {
	fc.takeBuffers()
	if _, err := fc.br.Peek(1); err != nil {
		return awaitEnd
	}
	return awaitRequest
}

// cutDeadline is the read deadline of a wait cut short: long past.
var cutDeadline = time.Unix(1, 0)

// stopWait cuts short the wait of an idle connection's goroutine for its
// next request, for Shutdown and reclaim: the goroutine ends the
// connection, or serves a request it had begun to read. Closing the
// connection instead would lose a request whose first bytes the
// goroutine has just read. It reports whether fc was idle (or cut
// already).
func (fc *conn) stopWait() bool {
	fc.stopMu.Lock()
	defer fc.stopMu.Unlock()
	if !fc.state.CompareAndSwap(connIdle, connStopping) && fc.state.Load() != connStopping {
		return false
	}
	fc.c.SetReadDeadline(cutDeadline)
	if fc.handshaking.Load() {
		// Its writes too, which a client that does not read would hold
		// up. Not a finished handshake's: TLS 1.3 answers a KeyUpdate
		// from inside a read, and a failed write breaks the connection
		// for good, with a request it may have to answer.
		fc.c.SetWriteDeadline(cutDeadline)
	}
	return true
}

// setWait sets the deadline of the wait for a request, unless the wait
// was cut short: the cut stands. stopWait marks the connection before it
// sets the deadline, and this sets it before it looks, so one of the two
// sets the cut last.
func (fc *conn) setWait(t time.Time) {
	fc.c.SetReadDeadline(t)
	if fc.state.Load() == connStopping {
		fc.c.SetReadDeadline(cutDeadline)
	}
}

// takeUpBegun takes up, as active, a connection whose wait was cut
// short after its client began a request (begun): the request is
// served, as the connection's last. False when nothing had begun, and the connection
// ends. True, too, for a connection taken up already.
func (fc *conn) takeUpBegun() bool { return fc.takeUp(false) }

// takeUp makes a connection whose wait was cut short active, with
// HeadTimeout for its head, when a request has begun (begun) or, with
// anyway, whatever it holds: a connection that has just finished its
// handshake for HTTP/2, whose client may have sent its requests with the
// handshake's end, into TLS's buffer, where begun cannot see them
// (HTTP/2 answers them and says GOAWAY). Under stopMu, so that the cut
// is set before the request's deadline is. True, too, for a connection
// active already (taken up earlier in its wait); false for one neither
// cut short nor active.
func (fc *conn) takeUp(anyway bool) bool {
	if st := fc.state.Load(); st != connStopping {
		return st == connActive
	}
	fc.stopMu.Lock()
	defer fc.stopMu.Unlock()
	if !anyway && !fc.begun() {
		return false
	}
	fc.state.Store(connActive)
	fc.last = true
	fc.c.SetReadDeadline(time.Now().Add(fc.s.opts.HeadTimeout))
	return true
}

// begun reports whether the connection holds the start of a request:
// bytes read and not consumed (a connection idle past its grace holds no
// request state, nor them), a TLS record under way, or bytes on the
// socket. Called under stopMu, with the cut in force.
func (fc *conn) begun() bool {
	if fc.reqState != nil && (len(fc.pending) > 0 || fc.readBuffered() > 0) || midRecord(fc.c) {
		return true
	}
	switch peek.Pending(socketOf(fc.c)) {
	case peek.Data:
		return true
	case peek.Unknown:
		return fc.lastLook()
	}
	return false
}

// lastLook reads what the client may have sent as the wait was cut, when
// the socket cannot be looked at without a read (behind a PROXY protocol
// header, whose reader may hold bytes of its own): a read that waits
// lastLookWait at most. What it finds is buffered.
func (fc *conn) lastLook() bool {
	fc.takeBuffers()
	fc.c.SetReadDeadline(time.Now().Add(lastLookWait))
	_, err := fc.br.Peek(1)
	fc.c.SetReadDeadline(cutDeadline)
	return err == nil
}

// lastLookWait bounds lastLook's read: bytes already there come at once.
const lastLookWait = time.Millisecond

// dropEmptyLines drops the empty lines read ahead of a request (RFC 9112
// §2.2: some clients send a CRLF after a body), and reports whether they
// were all that was read: the connection then waits on, idle, for its
// request. Taken for the start of one, they would make it active, beyond
// Shutdown's and reclaim's reach, until its deadline.
func (fc *conn) dropEmptyLines() bool {
	if len(fc.pending) > 0 {
		return false
	}
	dropped := false
	for fc.br.Buffered() >= 2 {
		b, _ := fc.br.Peek(2)
		if b[0] != '\r' || b[1] != '\n' {
			return false
		}
		fc.br.Discard(2)
		dropped = true
	}
	return dropped && fc.br.Buffered() == 0
}

// park hands the idle connection to the server's poller; false when it
// is not parkable, there is no poller, or its wait was cut short.
func (fc *conn) park() bool {
	if !parkable(fc.c) {
		return false
	}
	p := fc.s.poller()
	if p == nil || !fc.state.CompareAndSwap(connIdle, connParked) {
		return false
	}
	if p.park(fc) {
		return true
	}
	fc.state.CompareAndSwap(connParked, connIdle)
	return false
}

// takeBuffers gives the connection its read buffer and its request
// state, when it does not hold them. The write buffer is an answer's
// (takeWriter): a connection waiting for its next request holds none.
func (fc *conn) takeBuffers() {
	fc.activate()
	if fc.br == nil {
		fc.br = readers.Get().(*bufio.Reader)
		fc.br.Reset(source{fc})
	}
}

// takeWriter gives the connection its write buffer for an answer's
// head, when it does not hold it; the request state is there already.
func (fc *conn) takeWriter() {
	fc.bw.take(sink{fc})
}

// putWriter gives the write buffer back once an answer is out, if the
// answer's last send has not (see answerBuf): under load most
// connections are waiting for their client's next request, and their
// writers would be a third of the buffers held. What it holds is
// dropped.
func (fc *conn) putWriter() {
	if fc.reqState != nil {
		fc.bw.give()
	}
}

// putReader gives the read buffer back; what it holds is dropped. The
// chunked body reader lets go of it too: the next chunked body is
// started with the buffer the connection holds then.
func (fc *conn) putReader() {
	if fc.reqState != nil && fc.br != nil {
		fc.br.Reset(nil)
		readers.Put(fc.br)
		fc.br = nil
		fc.body.chunked.Reset(nil, 0)
	}
}

// readBuffered is how many bytes the read buffer holds, if there is one.
func (fc *conn) readBuffered() int {
	if fc.br == nil {
		return 0
	}
	return fc.br.Buffered()
}

// putBuffers gives the buffers back; what they held is dropped, so only
// a connection with nothing buffered, or one that ends, may.
func (fc *conn) putBuffers() {
	fc.putReader()
	fc.putWriter()
}

// forget drops what the connection holds of its last request while it
// waits for the next: its buffers, the copy of its head that the parsed
// strings point into, the header maps, what the handler set, its context
// (cancelled: nothing of a finished request may still use it). The next
// request makes them anew.
func (fc *conn) forget() {
	if fc.reqState == nil {
		return
	}
	fc.putBuffers()
	fc.cancel()
	fc.reqState = nil
}

// request checks and parses head and prepares the request for the
// handler; false when the connection was answered or refused instead.
func (fc *conn) request(head []byte) bool {
	inBuf := fc.big == nil
	if string(head) == http1.PrefaceHead {
		// An HTTP/2 client with prior knowledge: it would read an
		// HTTP/1.1 answer as garbage, so it is told in its own protocol.
		fc.c.SetWriteDeadline(time.Now().Add(time.Second))
		fc.c.Write(http1.GoAway("gatehouse: HTTP/2 without TLS (h2c) is not enabled on this listener"))
		fc.refuse(head, cause.UnsupportedProtocol, "HTTP/2 prior-knowledge preface; h2c is not enabled", true)
		return false
	}
	if err := http1.ParseRequestHead(head, &fc.head); err != nil {
		c := cause.BadRequest
		var he *http1.Error
		if errors.As(err, &he) && he.Status == http.StatusHTTPVersionNotSupported {
			c = cause.UnsupportedProtocol
		}
		fc.refuse(head, c, err.Error(), false)
		return false
	}
	h := &fc.head
	r := fc.x.Req
	host, target, fail := requestTarget(h, &fc.url)
	if fail == "" {
		fail = fc.expectation(h)
	}
	if fail != "" {
		fc.refuse(head, cause.BadRequest, fail, false)
		return false
	}
	if inBuf {
		fc.br.Discard(len(head))
	} else {
		// What came after the head, if anything: an empty rest would
		// still hold the large head's array.
		fc.pending = nil
		if rest := fc.big[len(head):]; len(rest) > 0 {
			fc.pending = rest
		}
		fc.big = nil
	}
	if host == "" {
		// HTTP/1.0 needs no Host: the request is for the address the
		// client connected to, and the app is told that one.
		host = fc.c.LocalAddr().String()
	}
	r.Method, r.Host, r.RequestURI, r.RemoteAddr = h.Method, host, target, fc.remote
	r.Header = h.Header
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if h.Minor == 0 {
		r.Proto, r.ProtoMinor = "HTTP/1.0", 0
	}
	// An HTTP/1.0 client is answered once: its answer may have to end
	// with the connection (no chunked framing in HTTP/1.0).
	r.Close = h.Close || h.Minor == 0
	r.GetBody, r.Trailer = nil, nil
	fc.closeAfter = r.Close || fc.last
	fc.bodyTimeout = fc.s.opts.BodyTimeout
	fc.x.begin()
	fc.w.reset()
	fc.x.ConnTokens = h.ConnTokens
	if h.Upgrade && h.Minor == 1 {
		fc.x.Upgrade = strings.Join(h.Header["Upgrade"], ", ")
	}
	fc.x.RequestID = ""
	if id := h.Header["X-Request-Id"]; len(id) > 0 {
		fc.x.RequestID = id[0]
	}
	fc.body.start(h)
	r.ContentLength = fc.body.n
	r.Body = http.NoBody
	if fc.body.n != 0 {
		r.Body = &fc.body
	}
	return true
}

// requestTarget reads the request's target (RFC 9112 §3.2): the origin
// form, the absolute form (whose authority is the request's host, Host
// notwithstanding) and "*" for OPTIONS. It sets u to the target's path
// and query, and returns the host and the target sent on (origin form);
// fail says why a request cannot be served: CONNECT (gatehouse is no
// forward proxy), "*" with another method, any other form.
func requestTarget(h *http1.RequestHead, u *url.URL) (host, target, fail string) {
	t := h.Target
	switch {
	case h.Method == http.MethodConnect:
		return "", "", "CONNECT is not served: gatehouse is not a forward proxy"
	case t == "*" && h.Method == http.MethodOptions:
		*u = url.URL{Path: "*"}
		return h.Host, t, ""
	case t[0] == '/':
		if !setTarget(u, t) {
			return "", "", "malformed request target"
		}
		return h.Host, t, ""
	}
	authority, origin, ok := absoluteTarget(t)
	if !ok || !setTarget(u, origin) {
		return "", "", "malformed request target"
	}
	return authority, origin, ""
}

// absoluteTarget splits an absolute-form target, "http://host/p?q", into
// its authority and its origin form ("/p?q"; "/" for an empty path).
func absoluteTarget(t string) (authority, origin string, ok bool) {
	scheme, rest, found := strings.Cut(t, "://")
	if !found || !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return "", "", false
	}
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		i = len(rest)
	}
	authority, origin = rest[:i], rest[i:]
	if authority == "" || strings.IndexByte(authority, '@') >= 0 || !http1.ValidHost(authority) {
		return "", "", false
	}
	if origin == "" || origin[0] == '?' {
		origin = "/" + origin
	}
	return authority, origin, true
}

// expectation reads the Expect field: 100-continue is honoured when the
// body is first read (bodyReader); any other expectation is refused, in
// whichever element of the list it is, as the HTTP/2 server leaves it.
// HTTP/1.0 servers ignore the field (RFC 9110 §10.1.1).
func (fc *conn) expectation(h *http1.RequestHead) string {
	if h.Expect == "" || h.Minor == 0 {
		return ""
	}
	for e := range strings.SplitSeq(h.Expect, ",") {
		if e = http1.TrimOWS(e); e != "" && !http1.EqualFold(e, "100-continue") {
			return "unsupported expectation in Expect"
		}
	}
	return ""
}

// The exchange's side (see Exchange): an HTTP/1 connection's.

func (fc *conn) startWatch()                    { fc.watch.start() }
func (fc *conn) isGone() bool                   { return fc.watch.check() }
func (fc *conn) closeAfterAnswer()              { fc.closeAfter = true }
func (fc *conn) limitBodyReads(d time.Duration) { fc.bodyTimeout = d }

// takeOver hands the connection to the protocol its 101 answer switched
// to: the watcher stops, what was read past the request goes with it, and
// Shutdown no longer waits for it (see Server.tunnel).
func (fc *conn) takeOver() (net.Conn, []byte, error) {
	if !fc.w.switched || fc.w.failed || fc.tunneled {
		return nil, nil, ErrNoTunnel
	}
	fc.watch.stop()
	fc.tunneled, fc.closeAfter = true, true
	pending := fc.unread() // a copy: the buffers go back now, not when the tunnel ends
	fc.big, fc.pending = nil, nil
	fc.putBuffers()
	fc.c.SetDeadline(time.Time{})
	fc.s.tunnel(fc)
	return fc.c, pending, nil
}

// recover turns a panic while serving into a closed connection and a
// logged stack, as net/http does: one bad request must not take the
// gateway down.
func (fc *conn) recover() {
	if v := recover(); v != nil {
		if fc.reqState != nil {
			fc.watch.stop()
		}
		buf := make([]byte, 16<<10)
		buf = buf[:runtime.Stack(buf, false)]
		fc.s.opts.ErrorLog.Printf("front: panic serving %s: %v\n%s", fc.c.RemoteAddr(), v, buf)
	}
}

// headStarts reports whether what is buffered is a head's start that
// skipEmptyLines passes without a read.
func (fc *conn) headStarts() bool {
	b, _ := fc.br.Peek(fc.br.Buffered())
	return len(b) >= 2 && (b[0] != '\r' || b[1] != '\n')
}

// skipEmptyLines drops empty lines before a request line, as RFC 9112
// §2.2 asks of servers (some clients send a CRLF after a POST body): the
// few read after the request began (dropEmptyLines dropped those read
// while the connection waited, as many as came).
func (fc *conn) skipEmptyLines() bool {
	for range 4 {
		b, err := fc.br.Peek(2)
		if err != nil || b[0] != '\r' || b[1] != '\n' {
			return err == nil
		}
		fc.br.Discard(2)
	}
	return true
}

// errBareLF: a head line ended in LF alone.
var errBareLF = errors.New("a head line ends in a bare LF")

// errHeadTooLarge: the head is larger than Options.HeadLimit.
var errHeadTooLarge = errors.New("request head too large")

// readHead returns the request head, up to and including its empty line.
// A head that fits the read buffer is returned unconsumed, in the buffer;
// a larger one is gathered, with what follows it, into fc.big, up to
// HeadLimit.
//
// extend: the deadline set was the idle one, and the rest of the head gets
// HeadTimeout from now, set before the first read it takes (a head that
// came whole needs none); a first request's deadline already is that.
func (fc *conn) readHead(extend bool) ([]byte, error) {
	limit := fc.s.opts.HeadLimit
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		n := http1.HeadEnd(buf)
		switch {
		case n > limit || n == 0 && len(buf) > limit:
			return nil, errHeadTooLarge
		case n > 0:
			return buf[:n], nil
		case n < 0:
			return nil, errBareLF
		}
		if extend {
			extend = false
			fc.c.SetReadDeadline(time.Now().Add(fc.s.opts.HeadTimeout))
		}
		if len(buf) >= fc.br.Size() {
			return fc.readBigHead()
		}
		if _, err := fc.br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// readBigHead gathers a head larger than the read buffer into fc.big (kept
// there as it grows, so that a head cut off by the timeout is answered).
func (fc *conn) readBigHead() ([]byte, error) {
	limit := fc.s.opts.HeadLimit
	fc.big = make([]byte, 0, 2*fc.br.Size())
	for {
		from := len(fc.big)
		buf, _ := fc.br.Peek(fc.br.Buffered())
		fc.big = append(fc.big, buf...)
		fc.br.Discard(len(buf))
		n := http1.HeadEndFrom(fc.big, max(from-3, 0))
		switch {
		case n > limit || n == 0 && len(fc.big) > limit:
			return nil, errHeadTooLarge
		case n > 0:
			return fc.big[:n], nil
		case n < 0:
			return nil, errBareLF
		}
		if _, err := fc.br.Peek(1); err != nil {
			return nil, err
		}
	}
}

// refuseRead answers a head that could not be read: too large, too slow,
// or a bare LF. A client that closed, or sent nothing in time, gets
// nothing.
func (fc *conn) refuseRead(err error) {
	switch {
	case errors.Is(err, errHeadTooLarge):
		fc.refuse(nil, cause.HeadersTooLarge, "request head larger than limits.request_head", false)
	case errors.Is(err, errBareLF):
		fc.refuse(nil, cause.BadRequest, err.Error(), false)
	case errors.Is(err, os.ErrDeadlineExceeded) && (fc.br.Buffered() > 0 || fc.big != nil):
		fc.refuse(nil, cause.ClientTimeout, "request head not complete within limits.head_timeout", false)
	}
}

// refuse answers a request the front will not serve, through the handler
// so that it is logged, and the connection closes after it. answered: the
// front already told the client in its own way.
func (fc *conn) refuse(head []byte, c cause.Cause, detail string, answered bool) {
	fc.closeAfter = true
	r := fc.x.Req
	r.Method, r.Host, r.RequestURI, r.RemoteAddr = "", "", "", fc.remote
	r.Proto, r.ProtoMajor, r.ProtoMinor = "", 0, 0 // (not known: not the last request's)
	fc.url = url.URL{}
	clear(r.Header)
	describe(r, head)
	r.Body, r.ContentLength = http.NoBody, 0
	fc.x.RequestID = ""
	fc.x.begin()
	fc.w.reset()
	fc.x.Reject = cause.New(c, "", detail, nil)
	fc.x.Answered = answered
	fc.sendTimeout = time.Second
	fc.body = bodyReader{fc: fc}
	fc.s.h.Serve(&fc.x)
	if !answered {
		fc.w.end()
	}
}

// describe fills in what a refused request's first line says, when it
// says it plainly, for the access log.
func describe(r *http.Request, head []byte) {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	method, rest, ok1 := bytes.Cut(bytes.TrimSuffix(line, []byte("\r")), []byte(" "))
	target, _, ok2 := bytes.Cut(rest, []byte(" "))
	if ok1 && ok2 && http1.ValidToken(string(method)) && len(target) > 0 && target[0] == '/' {
		r.Method = string(method)
		setTarget(r.URL, string(target))
	}
}

// drainBody reads what the handler left of the request body, so that the
// next request starts where it should; false (close the connection) when
// too much is left or the read fails.
func (fc *conn) drainBody() bool {
	switch b := &fc.body; {
	case b.n == 0:
		return true
	case b.n > maxDrain || b.expect:
		// (A client told nothing of 100-continue may be waiting for it,
		// or sending a body it was not asked for: either way not read.)
		return false
	}
	_, err := io.CopyN(io.Discard, &fc.body, maxDrain+1)
	return err == io.EOF && fc.body.n == 0
}

// maxDrain is how much of an unread request body is read and dropped to
// keep the connection; net/http uses the same bound.
const maxDrain = 256 << 10

// unread is what was read of the connection and not consumed: a large
// head, the pending bytes, the read buffer.
func (fc *conn) unread() []byte {
	pending := append(fc.big, fc.pending...)
	if fc.br == nil {
		return pending
	}
	buf, _ := fc.br.Peek(fc.br.Buffered())
	return append(pending, buf...)
}

// end untracks the connection and closes it. A client still sending a
// body the gateway did not read is given time to finish before the
// close, or its kernel would reset the connection and discard the answer
// it was sent (the answer said Connection: close).
func (fc *conn) end() {
	if fc.reqState != nil {
		fc.cancel()
	}
	stopped := fc.state.Swap(connClosed) == connStopping
	// No linger once a write failed: no answer is on its way, and TLS's
	// CloseWrite is a close_notify.
	if fc.reqState != nil && fc.body.n != 0 && !fc.tunneled && !fc.watch.gone.Load() && !fc.writeFailed.Load() && !fc.cut {
		fc.lingerClose()
	}
	if stopped || fc.writeFailed.Load() || fc.cut {
		// As Shutdown would have: no close_notify to wait on, which a
		// client that stopped reading would hold up.
		closeSocketFirst(fc.c)
	} else {
		fc.c.Close()
	}
	if fc.h2 != nil {
		fc.h2.end()
	}
	fc.s.freeSlot()
	fc.s.leavePeer(fc.ip)
	fc.putBuffers()
	fc.s.track(fc, false)
}

// A connection closed with its request's body unread (answered early,
// or refused) first reads and drops what its client still sends, as
// nginx's lingering close does: closed with bytes unread, the socket
// would send a reset, and a client still writing its upload would lose
// the answer waiting in its receive buffer to the reset. It reads for as
// long as the client goes on sending, each read within lingerWait of the
// last, and lingerTime in all (nginx's lingering_timeout and
// lingering_time are 5 s and 30 s; net/http's single wait of 500 ms
// loses the answer to a large upload on a busy machine). While the
// server shuts down, lingerClosing in all, as the drain waits for it.
const (
	lingerWait    = 2 * time.Second
	lingerTime    = 30 * time.Second
	lingerClosing = 500 * time.Millisecond
)

func (fc *conn) lingerClose() {
	if cw, ok := fc.c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, lingerReader{fc: fc, start: time.Now()})
}

// lingerReader reads a lingering connection, within its bounds.
type lingerReader struct {
	fc    *conn
	start time.Time
}

func (l lingerReader) Read(p []byte) (int, error) {
	end := l.start.Add(lingerTime)
	if l.fc.s.closing.Load() {
		end = l.start.Add(lingerClosing)
	}
	now := time.Now()
	if !now.Before(end) {
		return 0, io.EOF
	}
	if d := now.Add(lingerWait); d.Before(end) {
		end = d
	}
	l.fc.c.SetReadDeadline(end)
	return l.fc.c.Read(p)
}

// bodyReader reads a request body from the connection, of known length
// or chunked, each read bounded by the request's body timeout.
type bodyReader struct {
	fc *conn
	// n is what is left of a body of known length; -1 while a chunked
	// one has not ended; 0 once the body is read (or there is none).
	n       int64
	chunked http1.ChunkedReader
	// expect: the client waits for 100 Continue before it sends the
	// body, which the first read sends.
	expect bool
}

// start prepares the body of the request whose head is h.
func (b *bodyReader) start(h *http1.RequestHead) {
	b.n, b.expect = max(h.ContentLength, 0), false
	if h.Chunked {
		b.n = -1
		b.chunked.Reset(b.fc.br, b.fc.s.opts.HeadLimit)
	}
	b.expect = b.n != 0 && h.Expect != "" && h.Minor == 1
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	fc := b.fc
	if b.expect {
		b.expect = false
		if err := fc.sendContinue(); err != nil {
			return 0, err
		}
	}
	if b.n > 0 && int64(len(p)) > b.n {
		p = p[:b.n]
	}
	if b.n < 0 || fc.br.Buffered() == 0 {
		// (A chunk's framing may take more reads than its data shows.)
		fc.c.SetReadDeadline(time.Now().Add(fc.bodyTimeout))
	}
	var n int
	var err error
	if b.n < 0 {
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			b.n, err = 0, nil
		}
	} else {
		n, err = fc.br.Read(p)
		b.n -= int64(n)
	}
	var malformed *http1.Error
	switch {
	case err == nil && b.n != 0:
		return n, nil
	case err == nil:
		err = io.EOF
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &malformed):
		fc.closeAfter = true // too slow, or bad framing: answered, then closed
	default:
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		fc.watch.cancel()
	}
	// The body ended or broke: later reads (the watcher's) must not
	// inherit its deadline.
	fc.c.SetReadDeadline(time.Time{})
	if err == io.EOF && n > 0 {
		return n, nil // (the next read says EOF: n is 0 now)
	}
	return n, err
}

func (b *bodyReader) Close() error { return nil }

// sendContinue tells a client that waits for it to send its body (Expect:
// 100-continue), unless the answer has begun.
func (fc *conn) sendContinue() error {
	if fc.w.wrote {
		return nil
	}
	fc.takeWriter()
	bw := &fc.bw
	bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	if err := bw.Flush(); err != nil {
		fc.w.fail()
		return ErrClientWrite
	}
	// Sent: the body and the app's answer are waited for holding no
	// write buffer, as without the 100.
	fc.putWriter()
	return nil
}
