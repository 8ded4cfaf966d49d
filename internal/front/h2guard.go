package front

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/peek"
)

// h2Guard is an HTTP/2 connection as the h2 server reads and writes it,
// watched frame by frame for two abuses the protocol itself does not
// bound:
//
//   - floods of frames that ask for no request: SETTINGS, PING,
//     WINDOW_UPDATE, PRIORITY, RST_STREAM, empty DATA, HEADERS or
//     CONTINUATION, unknown types. The server answers each it must: a
//     client that reads its answers, or floods what needs none, would be
//     served for ever at a core's cost.
//   - rapid reset: streams opened and reset at once, each a request the
//     handler may already have sent to the app. The server bounds only
//     the handlers running at once.
//
// Each is a token bucket (idleBudget, resetBudget): a frame that asks for
// nothing takes a token, as does a stream the client resets within
// prematureReset of opening it before the server has ended it (Envoy's
// premature reset); frames the server answers with, and streams it ends,
// give tokens back, and time refills them. A client that empties one has
// its reads fail with ENHANCE_YOUR_CALM as a connection error: the server
// sends GOAWAY with that code, reads no more, and closes the connection a
// second after; if the GOAWAY cannot be written (a client that does not
// read), calmGrace closes it anyway.
//
// Reads happen on the server's reader goroutine, writes on one writing
// goroutine at a time; the buckets and the open streams, which both
// sides change, are under mu.
type h2Guard struct {
	net.Conn
	s *Server
	// overTLS: the connection is TLS on a tlsSocket, which bounds each
	// write itself (SetWriteDeadline); not TLS a listener of the
	// caller's set up.
	overTLS bool
	in      frameScanner // the client's frames, after its preface
	out     frameScanner // the server's
	// calm, once set, is what every read returns; why says which budget
	// was spent.
	calm error
	why  string
	// filled: the last read filled the buffer it was given (Drained).
	// The reader's alone.
	filled bool

	mu     sync.Mutex
	idle   bucket
	resets bucket
	// open are the streams the client opened that the server has not
	// ended and the client has not reset, with when each opened.
	open  map[uint32]time.Time
	maxID uint32 // the highest stream the client opened
	// closer closes the connection calmGrace after the budget ran out;
	// done: the connection was served to its end, nothing more to close.
	closer *time.Timer
	done   bool
	// writeFailed: a write failed, and the close sends TLS no
	// close_notify (see Close).
	writeFailed atomic.Bool
}

// The budgets. A browser or an API client spends a few idle frames per
// connection (its SETTINGS and their acknowledgement, a PING now and
// then, WINDOW_UPDATEs as it reads what it is sent), and resets few
// streams it has just opened: navigating away cancels the requests of a
// page, at most every stream it may have open, a search box the request
// of each keystroke. A flood spends the idle budget in a millisecond, a
// rapid-reset attack the reset budget within a few hundred requests.
const (
	// idleBudget idle frames may come ahead of what the server sends.
	idleBudget = 1000
	// idleRefill gives one back each: 100 a second.
	idleRefill = 10 * time.Millisecond
	// answerCredit are given back for each DATA or HEADERS frame the
	// server writes: a client acknowledges what it reads with
	// WINDOW_UPDATE (and gRPC measures it with PING).
	answerCredit = 4
	// resetBudget streams may be reset within prematureReset of opening
	// (every stream a connection may have open, and some), one given back
	// for each stream the server ends, and ...
	resetBudget    = maxStreams + 50
	prematureReset = time.Second
	// ... one every resetRefill: 10 a second.
	resetRefill = 100 * time.Millisecond
	// maxTracked bounds the open streams followed: twice as many as the
	// h2 server runs handlers for at once. Past it, a stream that opens
	// counts as a premature reset.
	maxTracked = 4 * maxStreams
	// calmGrace is how long a connection told to calm down stays open at
	// most: the h2 server closes it a second after its GOAWAY is out.
	calmGrace = 2 * time.Second
)

// errCalm is what the guard's reads return once a budget is spent.
var errCalm = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)

// guardH2 wraps c, which begins with the client preface, for the h2
// server.
func (s *Server) guardH2(c net.Conn) *h2Guard {
	now := time.Now()
	g := &h2Guard{Conn: c, s: s, open: map[uint32]time.Time{},
		idle:   bucket{tokens: idleBudget, burst: idleBudget, every: idleRefill, last: now},
		resets: bucket{tokens: resetBudget, burst: resetBudget, every: resetRefill, last: now}}
	g.overTLS = socketBounds(c)
	g.in = frameScanner{preface: len(http2.ClientPreface), frame: g.clientFrame}
	g.out = frameScanner{frame: g.serverFrame}
	return g
}

// SetWriteDeadline passes the h2 server's write deadline on, except on a
// tlsSocket: there the socket bounds every write itself, by the
// same SendTimeout as the server's WriteTimeout, and so also what TLS
// writes of its own, a KeyUpdate's reply, which a deadline the server
// set for an earlier write, nearly spent, would cut short.
func (g *h2Guard) SetWriteDeadline(t time.Time) error {
	if g.overTLS {
		return nil
	}
	return g.Conn.SetWriteDeadline(t)
}

// Drained reports whether the client's connection holds nothing the h2
// server has not read: its last read did not fill the buffer it was given
// (else TLS may hold more plaintext of the same record), no TLS record is
// begun or undecrypted, and nothing is in the socket. The h2 server asks
// it until it has read what came with the connection's start, so that a
// GOAWAY of a shutdown names those streams. False where it cannot be seen
// (TLS of a caller's listener, a socket behind another reader): the
// server then looks a moment for more.
func (g *h2Guard) Drained() bool {
	if g.filled {
		return false
	}
	c := g.Conn
	if p, ok := c.(*prefixConn); ok {
		if len(p.pending) > 0 {
			return false
		}
		c = p.Conn
	}
	return (plainSocket(c) || drainedTLS(c)) && peek.Pending(socketOf(c)) == peek.Quiet
}

func (g *h2Guard) Read(p []byte) (int, error) {
	if g.calm != nil {
		return 0, g.calm
	}
	n, err := g.Conn.Read(p)
	g.filled = n > 0 && n == len(p)
	if k := g.in.scan(p[:n]); k < n {
		// The frame that spent the budget, and what follows, are not
		// passed on: the h2 server acts on nothing more of this client's.
		g.calmDown()
		return k, g.calm
	}
	return n, err
}

// Write writes p, TLS's records of it one by one: not gathered as
// HTTP/1.1's are (tlsSocket.writeGathered), since a gathered write goes
// out after crypto/tls's Write has returned, where a Close from another
// goroutine (the connection's end, calmDown's closer) would no longer
// break it but wait behind it.
func (g *h2Guard) Write(p []byte) (int, error) {
	n, err := g.Conn.Write(p)
	g.out.scan(p[:n])
	if err != nil {
		g.writeFailed.Store(true)
	}
	return n, err
}

// Close closes the connection; after a failed write, under TLS, its
// socket first. crypto/tls's Close would write a close_notify, under a
// deadline of its own (5 s), to a client that stopped reading, and the
// h2 server closes from its writer, which the handler told of the
// failure waits on. (On a tlsSocket, the failed write fails that one
// too; on a TLS listener's connection, nothing else would.)
func (g *h2Guard) Close() error {
	if g.writeFailed.Load() {
		closeSocketFirst(g.Conn)
		return nil
	}
	return g.Conn.Close()
}

// calmDown fails the reads from now on, and closes the connection if
// the h2 server has not calmGrace from now.
func (g *h2Guard) calmDown() {
	g.calm = errCalm
	g.s.opts.ErrorLog.Printf("http2: %s from %s: GOAWAY ENHANCE_YOUR_CALM", g.why, g.RemoteAddr())
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done {
		// Socket first: a client that has not read the GOAWAY by now
		// would not read a close_notify either.
		g.closer = time.AfterFunc(calmGrace, func() { closeSocketFirst(g.Conn) })
	}
}

// stop is called when the h2 server is done with the connection.
func (g *h2Guard) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	if g.closer != nil {
		g.closer.Stop()
	}
}

// clientFrame weighs a frame the client sent (pad: its pad length, when
// padded); false: the budget is spent.
func (g *h2Guard) clientFrame(f frameHead, pad int) bool {
	switch f.typ {
	case http2.FrameData:
		if f.payload(pad) > 0 || f.flags.Has(http2.FlagDataEndStream) {
			return true
		}
	case http2.FrameHeaders:
		if f.id&1 == 1 && f.id > g.maxID && !g.opened(f.id) {
			return g.spent(&g.s.h2Resets, "streams reset as they open")
		}
		if f.payload(pad) > 0 {
			return true
		}
	case http2.FrameContinuation:
		if f.length > 0 {
			return true
		}
	case http2.FrameRSTStream:
		if !g.reset(f.id) {
			return g.spent(&g.s.h2Resets, "streams reset as they open")
		}
	}
	g.mu.Lock()
	ok := g.idle.take(time.Now())
	g.mu.Unlock()
	if !ok {
		return g.spent(&g.s.h2Floods, "a flood of frames that ask for nothing")
	}
	return true
}

// spent counts the connection ended in n, for why; it returns false.
func (g *h2Guard) spent(n *atomic.Uint64, why string) bool {
	n.Add(1)
	g.why = why
	return false
}

// opened notes stream id opening; false when too many are open to follow.
func (g *h2Guard) opened(id uint32) bool {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.maxID = id
	if len(g.open) >= maxTracked {
		for id, t := range g.open {
			if now.Sub(t) >= prematureReset {
				delete(g.open, id)
			}
		}
		if len(g.open) >= maxTracked {
			return g.resets.take(now)
		}
	}
	g.open[id] = now
	return true
}

// reset notes the client resetting stream id; false when that spent the
// reset budget.
func (g *h2Guard) reset(id uint32) bool {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.open[id]
	if !ok {
		return true // already ended, or never opened (the h2 server's to judge)
	}
	delete(g.open, id)
	return now.Sub(t) >= prematureReset || g.resets.take(now)
}

// serverFrame notes a frame the server wrote: an answer gives idle
// frames back, and a stream it ends a reset.
func (g *h2Guard) serverFrame(f frameHead, _ int) bool {
	switch f.typ {
	case http2.FrameData, http2.FrameHeaders:
		g.mu.Lock()
		g.idle.give(answerCredit)
		if f.flags.Has(http2.FlagDataEndStream) {
			if _, ok := g.open[f.id]; ok {
				delete(g.open, f.id)
				g.resets.give(1)
			}
		}
		g.mu.Unlock()
	case http2.FrameRSTStream:
		g.mu.Lock()
		delete(g.open, f.id)
		g.mu.Unlock()
	}
	return true
}

// bucket is a token bucket: burst tokens at most, one more every every.
type bucket struct {
	tokens, burst int
	every         time.Duration
	last          time.Time // tokens were last refilled up to
}

// take takes a token; false when there was none.
func (b *bucket) take(now time.Time) bool {
	if n := int(now.Sub(b.last) / b.every); n > 0 {
		if b.tokens+n >= b.burst {
			b.tokens, b.last = b.burst, now
		} else {
			b.tokens += n
			b.last = b.last.Add(time.Duration(n) * b.every)
		}
	}
	if b.tokens <= 0 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) give(n int) { b.tokens = min(b.burst, b.tokens+n) }

// frameHead is a frame's header (RFC 9113 §4.1).
type frameHead struct {
	typ    http2.FrameType
	flags  http2.Flags
	length uint32
	id     uint32
}

// payload is what a DATA or HEADERS frame carries past its padding and
// priority fields (pad: its pad length); negative when they overrun it
// (the framer refuses such a frame).
func (f frameHead) payload(pad int) int {
	n := int(f.length)
	if f.flags.Has(http2.FlagDataPadded) {
		n -= 1 + pad
	}
	if f.typ == http2.FrameHeaders && f.flags.Has(http2.FlagHeadersPriority) {
		n -= 5
	}
	return n
}

// frameScanner follows the frames of one direction of a connection as
// its bytes pass, however they are split, and hands each frame's header
// to frame, with its pad length when it is padded.
type frameScanner struct {
	preface int // bytes still to pass before the first frame
	hdr     [9]byte
	nhdr    int  // bytes of hdr read
	rest    int  // bytes of the current frame's payload still to pass
	padded  bool // the current frame waits for its pad length
	head    frameHead
	// frame weighs a frame; false stops the scan before it.
	frame func(f frameHead, pad int) bool
}

// scan passes p; it returns len(p), or where in p the frame frame refused
// began (0 when it began before p).
func (s *frameScanner) scan(p []byte) int {
	start := 0
	for i := 0; i < len(p); {
		switch {
		case s.preface > 0:
			n := min(s.preface, len(p)-i)
			s.preface -= n
			i += n
		case s.padded:
			s.padded = false
			if !s.frame(s.head, int(p[i])) {
				return start
			}
		case s.rest > 0:
			n := min(s.rest, len(p)-i)
			s.rest -= n
			i += n
		default:
			if s.nhdr == 0 {
				start = i
			}
			n := copy(s.hdr[s.nhdr:], p[i:])
			s.nhdr += n
			i += n
			if s.nhdr < len(s.hdr) {
				continue
			}
			s.nhdr = 0
			h := frameHead{
				length: uint32(s.hdr[0])<<16 | uint32(s.hdr[1])<<8 | uint32(s.hdr[2]),
				typ:    http2.FrameType(s.hdr[3]),
				flags:  http2.Flags(s.hdr[4]),
				id:     binary.BigEndian.Uint32(s.hdr[5:]) & (1<<31 - 1),
			}
			s.rest = int(h.length)
			if h.length > 0 && h.flags.Has(http2.FlagDataPadded) && (h.typ == http2.FrameData || h.typ == http2.FrameHeaders) {
				s.padded, s.head = true, h
				continue
			}
			if !s.frame(h, 0) {
				return start
			}
		}
	}
	return len(p)
}
