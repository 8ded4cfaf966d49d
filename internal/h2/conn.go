package h2

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// conn is one HTTP/2 connection. Its reader goroutine (read) reads
// every frame and owns the stream table's changes; handlers write their
// own frames under wmu.
//
// Locks: mu guards the connection's and its streams' state and the
// windows; wmu the writing side (buffer, HPACK encoder, framer's
// writes). Neither is taken while the other is held.
type conn struct {
	s      *Server
	nc     net.Conn
	h      http.Handler
	ctx    context.Context
	cancel context.CancelFunc
	// base is what streams' contexts derive from: the serving context
	// itself when nothing can cancel it (the connection then cancels its
	// streams itself, see cancelStreams), which spares every stream an
	// entry in ctx's table of children, taken and given back under its
	// lock; ctx otherwise.
	base   context.Context
	remote string
	fr     *http2.Framer
	// hdec decodes the client's header blocks (the reader's).
	hdec *blockDecoder
	// br is the read buffer, nil while the connection waits idle (see
	// awaitFrame); one holds the byte that wait read, hasOne whether it
	// is still to be read.
	br     *bufio.Reader
	one    [1]byte
	hasOne bool

	// The writing side, under wmu.
	wmu  sync.Mutex
	bw   outBuffer
	henc blockEncoder
	werr error // the first write error: the connection is broken
	// wdeadline is the write deadline set on nc.
	wdeadline time.Time
	waiting   atomic.Int32 // writers queued for wmu: the last one flushes
	// unflushed: frames are in bw that a writer, yielding before its
	// flush, left for whoever flushes first.
	unflushed bool

	// peerMaxFrame is the largest frame the client reads.
	peerMaxFrame atomic.Uint32

	// caughtUp: the reader has read all the client sent before its first
	// wait (Drained), or caughtUpBound has passed since the connection
	// began; until then a GOAWAY would refuse streams sent with the
	// connection's start, and is held (goAwayDue).
	caughtUp atomic.Bool

	// The state, under mu.
	mu      sync.Mutex
	cond    sync.Cond
	streams map[uint32]*stream // nil while no stream has been opened since the connection went idle
	maxID   uint32             // the highest stream the client opened
	// active counts the streams whose handler runs: changed under mu,
	// read without it too (a writer yields before its flush while others
	// run).
	active      atomic.Int32
	open        int   // streams open or half-closed: what the limit counts
	sendWindow  int64 // what the connection may still send
	peerWindow  int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	recvWindow  int64 // what the client may still send
	recvUnacked int64 // read or dropped, not yet granted back
	goingAway   bool  // GOAWAY sent or due: no new stream is served
	// goAwayDue: a GOAWAY held until the server's SETTINGS are out and
	// the reader has caught up (caughtUp), or catchUpTimer's bound.
	goAwayDue    bool
	catchUpTimer *time.Timer
	sentGoAway   bool // a GOAWAY went out, naming lastSent
	lastSent     uint32
	settings     bool // the server's SETTINGS went out
	lingering    bool // the connection reads out its last frames
	closed       bool // ended: waiters give up
	// awaiting: the reader waits for a frame's first byte with nothing
	// buffered, so a read deadline may be set under it (nothing of a
	// frame is half read); graceSet: one is set for the idle check.
	awaiting  bool
	graceSet  bool
	idleSince time.Time
	born      time.Time // when the connection began: caughtUpBound's start
	idle      *time.Timer
	// refused are the last streams reset as they opened (a malformed
	// request): their DATA, sent before the client heard, is dropped.
	refused     [8]uint32
	nextRefused int

	handlers sync.WaitGroup
	canon    map[string]string // canonical field names seen beyond the common ones

	// parking holds the socket of the connection idle past its grace
	// (nil: the reader waits on it); parked, under mu, says it does.
	parking Parking
	parked  bool
}

func newConn(ctx context.Context, s *Server, nc net.Conn, h http.Handler) *conn {
	c := &conn{s: s, nc: nc, h: h, remote: nc.RemoteAddr().String()}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.base = c.ctx
	if ctx.Done() == nil {
		c.base = ctx
	}
	c.cond.L = &c.mu
	c.takeReadBuffer()
	c.bw = outBuffer{w: nc, pool: &s.bufs}
	c.fr = http2.NewFramer(&c.bw, frameSource{c})
	c.fr.SetMaxReadFrameSize(s.maxFrame())
	c.fr.MaxHeaderListSize = s.maxHeaderList()
	c.hdec = newBlockDecoder(c.fr.MaxHeaderListSize)
	c.fr.SetReuseFrames()
	c.peerMaxFrame.Store(defaultMaxFrame)
	c.sendWindow = initialWindow
	c.peerWindow = initialWindow
	c.recvWindow = initialWindow
	c.idleSince = time.Now()
	c.born = c.idleSince
	return c
}

// clientPreface is what an HTTP/2 client sends first (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// start reads the client's preface and says the server's SETTINGS; false
// when the connection ends there.
func (c *conn) start() bool {
	c.nc.SetReadDeadline(time.Now().Add(c.s.prefaceTimeout()))
	var p [len(clientPreface)]byte
	if _, err := io.ReadFull(c.br, p[:]); err != nil || string(p[:]) != clientPreface || !c.writeSettings() {
		return false
	}
	c.mu.Lock()
	c.settings = true
	due := c.goAwayDue
	c.mu.Unlock()
	if due {
		// Told to go away before it could say SETTINGS: now it may.
		c.goAway()
	}
	if c.s.IdleTimeout > 0 {
		c.idle = time.AfterFunc(c.s.IdleTimeout, c.onIdle)
	}
	return true
}

// wake serves a parked connection on (Parking.Park).
func (c *conn) wake() (ended bool) {
	c.mu.Lock()
	c.parked = false
	c.mu.Unlock()
	c.takeReadBuffer()
	return c.read(false)
}

// read reads and acts on frames until the connection ends, then waits
// for its handlers (true), or until it parks (false); first: the
// connection starts (start), and the client's SETTINGS is its first
// frame.
func (c *conn) read(first bool) (ended bool) {
	parked := false
	defer func() {
		// Unless parked: a panic that the caller recovers ends it too.
		if !parked {
			c.end()
		}
	}()
	if first && !c.start() {
		return true
	}
	for {
		// (A look for more of the connection's start that finds it has
		// read the next frame's first bytes.)
		if !first && !c.hasOne && c.br.Buffered() == 0 && (c.caughtUp.Load() || !c.lookForMore()) {
			if err := c.awaitFrame(); errors.Is(err, errParked) {
				parked = true
				return false // another goroutine's from here on
			} else if err != nil {
				// What the read found (a guard's ENHANCE_YOUR_CALM,
				// the connection's end) is acted on as ReadFrame's.
				c.failed(err, nil)
				return true
			}
		}
		f, err := c.readFrame()
		var detail error // why ReadFrame refused a frame, for GOAWAY
		if err != nil {
			detail = c.fr.ErrorDetail()
			c.usedOnRead(err)
		}
		if err == nil && first {
			// Its SETTINGS, or, as x/net takes it too, the
			// acknowledgement of the server's.
			if _, ok := f.(*http2.SettingsFrame); !ok {
				err = http2.ConnectionError(http2.ErrCodeProtocol)
			}
		}
		if err == nil {
			err = c.process(f)
		}
		if err != nil && !c.failed(err, detail) {
			return true
		}
		if first {
			first = false
			c.mu.Lock()
			if !c.lingering {
				c.nc.SetReadDeadline(time.Time{})
			}
			c.mu.Unlock()
		}
	}
}

// awaitFrame waits for the next frame's first byte, with nothing
// buffered. Once the connection has been idle (no stream open) for
// readIdleAfter, it gives its read buffer back and waits for one byte
// without it, or parks (awaitByte): an idle connection holds no read
// buffer, a busy one keeps its buffer between frames and pays nothing. The grace's read deadline
// is set here, or by streamEnded when the last stream ends meanwhile.
func (c *conn) awaitFrame() error {
	for {
		c.mu.Lock()
		c.awaiting = true
		c.armGraceLocked(time.Time{})
		c.mu.Unlock()
		_, err := c.br.Peek(1)
		c.mu.Lock()
		c.awaiting = false
		grace := c.graceSet
		c.graceSet = false
		if grace && !c.lingering {
			c.nc.SetReadDeadline(time.Time{})
		}
		idle := c.idleLocked()
		c.mu.Unlock()
		switch {
		case err == nil:
			return nil
		case !grace || !errors.Is(err, os.ErrDeadlineExceeded):
			return err
		case idle:
			return c.awaitByte()
		}
		// The grace's deadline passed on a connection told to go away
		// meanwhile: it waits on, under linger's deadline once that is
		// set, and its GOAWAY goes out first.
	}
}

// errParked: the connection's socket is held by its Parking, and its
// reader goroutine ends.
var errParked = errors.New("h2: connection parked")

// awaitByte waits for the next frame's first byte without a read buffer,
// or parks the connection (errParked).
func (c *conn) awaitByte() error {
	// Idle past the grace: the connection's own bounds (the idle timer's
	// GOAWAY and linger, Close) end this wait.
	c.putReadBuffer()
	c.mu.Lock()
	if len(c.streams) == 0 {
		c.streams = nil // a map never shrinks: the next stream makes one anew
	}
	// Under mu, which linger takes to unpark it: no GOAWAY's linger can
	// come between the look at idle and the parking.
	if c.parking != nil && c.idleLocked() && c.parking.Park(c.wake) {
		c.parked = true
		c.mu.Unlock()
		return errParked
	}
	c.mu.Unlock()
	n, err := c.nc.Read(c.one[:])
	c.takeReadBuffer()
	c.hasOne = n == 1
	if n == 1 {
		return nil
	}
	return err
}

// armGraceLocked sets the idle check's read deadline under a reader
// waiting for a frame, when the connection is idle; now is the time, if
// the caller read it (zero: it is read here, when needed). c.mu is
// held.
func (c *conn) armGraceLocked(now time.Time) {
	if c.awaiting && !c.graceSet && c.idleLocked() {
		if now.IsZero() {
			now = time.Now()
		}
		c.graceSet = true
		c.nc.SetReadDeadline(now.Add(readIdleAfter))
	}
}

// idleLocked reports whether no stream is open or running and the
// connection is not ending. c.mu is held.
func (c *conn) idleLocked() bool {
	return c.active.Load() == 0 && c.open == 0 && !c.goingAway && !c.lingering && !c.closed
}

// readIdleAfter is how long a connection is idle before it gives back
// its read buffer: a client between the requests of a burst sends the
// next well within it.
const readIdleAfter = 50 * time.Millisecond

// takeReadBuffer gives the connection a read buffer on nc.
func (c *conn) takeReadBuffer() {
	br, _ := c.s.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(nil, readBuffer)
	}
	br.Reset(c.nc)
	c.br = br
}

// putReadBuffer gives the read buffer back; it holds nothing.
func (c *conn) putReadBuffer() {
	c.br.Reset(nil)
	c.s.readers.Put(c.br)
	c.br = nil
}

// readBuffer is the size of br: what one read of the connection takes.
const readBuffer = 4 << 10

// frameSource is what the framer reads: the byte an idle wait read,
// then the read buffer.
type frameSource struct{ c *conn }

func (s frameSource) Read(p []byte) (int, error) {
	c := s.c
	if c.hasOne && len(p) > 0 {
		p[0] = c.one[0]
		c.hasOne = false
		return 1, nil
	}
	return c.br.Read(p)
}

// failed acts on an error reading or acting on a frame: a stream error
// resets that stream and the connection goes on; anything else ends it,
// with GOAWAY when it is the client's fault.
func (c *conn) failed(err, detail error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		c.mu.Lock()
		st := c.streams[se.StreamID]
		if st != nil {
			st.resetLocked(errStreamReset)
		} else {
			c.refuseLocked(se.StreamID)
		}
		c.mu.Unlock()
		c.writeReset(se.StreamID, se.Code)
		return true
	}
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		c.writeGoAway(http2.ErrCode(ce), detail)
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.writeGoAway(http2.ErrCodeFrameSize, nil)
	default:
		return false
	}
	c.drain()
	return false
}

// usedOnRead takes the stream of a stream error met as a frame was read
// as used: a header block refused as it opens its stream still opens it
// (RFC 9113 §5.1.1), and it is closed now. A stream error met acting on
// a frame is not a use: a PRIORITY frame opens no stream, and
// processHeaders records the streams it opens itself.
func (c *conn) usedOnRead(err error) {
	var se http2.StreamError
	if !errors.As(err, &se) || se.StreamID%2 == 0 {
		return
	}
	c.mu.Lock()
	c.maxID = max(c.maxID, se.StreamID)
	c.mu.Unlock()
}

// drain gives the client goAwayLinger to read the GOAWAY before the
// connection closes: closing with its frames unread would reset the
// connection, and the client could lose the GOAWAY with them. What it
// sends meanwhile is read and dropped; a read that fails at once (a
// guard that reads no more of this client) leaves only the wait.
func (c *conn) drain() {
	deadline := time.Now().Add(goAwayLinger)
	c.nc.SetReadDeadline(deadline)
	var buf [4 << 10]byte
	for {
		_, err := c.nc.Read(buf[:])
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
			return
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
		return
	}
}

// end closes the connection and waits for its handlers, which the
// canceled context and the closed state stop.
func (c *conn) end() {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.catchUpTimer != nil {
		c.catchUpTimer.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	c.cancelStreams()
	c.nc.Close()
	c.handlers.Wait()
	c.s.forget(c)
}

// cancelStreams cancels the context of every stream whose handler runs,
// as the connection's own cancellation does its children's (see base).
func (c *conn) cancelStreams() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.streams {
		st.cancel()
	}
}

// readFrame reads the client's next frame: a HEADERS frame with its
// CONTINUATIONs as one *headerBlock, any other as the Framer reads it.
func (c *conn) readFrame() (any, error) {
	f, err := c.fr.ReadFrame()
	if hf, ok := f.(*http2.HeadersFrame); ok && err == nil {
		return c.hdec.read(c.fr, hf)
	}
	return f, err
}

// process acts on one frame the client sent.
func (c *conn) process(f any) error {
	switch f := f.(type) {
	case *headerBlock:
		err := c.processHeaders(f)
		c.hdec.done()
		return err
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.write(func() error { return c.fr.WritePing(true, f.Data) })
		}
	case *http2.RSTStreamFrame:
		return c.processReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
	case *http2.GoAwayFrame:
		// The client opens no more streams: the open ones finish.
		c.goAway()
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	// Unknown frame types are ignored (RFC 9113 §4.1); CONTINUATION
	// comes merged into its HEADERS.
	return nil
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if err := f.ForeachSetting(func(s http2.Setting) error { return s.Valid() }); err != nil {
		return err
	}
	// SETTINGS_HEADER_TABLE_SIZE bounds a table the answers never use
	// (see blockEncoder).
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			return c.setPeerWindow(int64(s.Val))
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame.Store(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.write(c.fr.WriteSettingsAck)
	return nil
}

// setPeerWindow applies a new SETTINGS_INITIAL_WINDOW_SIZE to every
// open stream's window (RFC 9113 §6.9.2).
func (c *conn) setPeerWindow(v int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delta := v - c.peerWindow
	c.peerWindow = v
	for _, st := range c.streams {
		st.sendWindow += delta
		if st.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	}
	c.cond.Broadcast()
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		c.sendWindow += inc
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.cond.Broadcast()
		return nil
	}
	if f.StreamID > c.maxID {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := c.streams[f.StreamID]
	if st == nil || st.reset != nil {
		return nil
	}
	st.sendWindow += inc
	if st.sendWindow > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	c.cond.Broadcast()
	return nil
}

func (c *conn) processReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID > c.maxID {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := c.streams[f.StreamID]; st != nil && st.reset == nil {
		st.resetLocked(http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode})
		st.clientReset = true
	}
	return nil
}

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	data := f.Data()
	c.mu.Lock()
	if n > c.recvWindow {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	st := c.streams[id]
	if st == nil || st.remoteDone || st.reset != nil {
		c.recvUnacked += n
		connInc := c.grantLocked()
		idle := id > c.maxID
		refused := st != nil && st.reset != nil && !st.clientReset || st == nil && (c.wasRefusedLocked(id) || c.pastGoAwayLocked(id))
		c.mu.Unlock()
		if idle {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.writeWindow(0, connInc)
		if refused {
			// Sent before the client heard of the server's reset.
			return nil
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if n > st.recvWindow {
		c.recvUnacked += n
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvWindow -= n
	// Padding is given back at once, to both windows; the data as the
	// handler reads it.
	pad := n - int64(len(data))
	c.recvUnacked += pad
	st.recvUnacked += pad
	st.received += int64(len(data))
	if st.declared >= 0 && (st.received > st.declared || f.StreamEnded() && st.received != st.declared) {
		c.recvUnacked += int64(len(data))
		st.resetLocked(errStreamReset)
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if st.bodyClosed {
		// Dropped: the connection's window is given back, the stream's
		// not, so that a body nobody reads stops coming.
		c.recvUnacked += int64(len(data))
	} else {
		st.body = append(st.body, data...)
	}
	if f.StreamEnded() {
		st.remoteDone = true
		st.bodyErr = io.EOF
		st.closedLocked()
	}
	c.cond.Broadcast()
	connInc := c.grantLocked()
	var streamInc uint32
	if !st.remoteDone {
		streamInc = st.grantLocked()
	}
	c.mu.Unlock()
	c.writeWindow(id, streamInc, 0, connInc)
	return nil
}

// wasRefusedLocked reports whether stream id was reset by the server of
// late, as it opened or before the client ended it.
func (c *conn) wasRefusedLocked(id uint32) bool {
	for _, r := range c.refused {
		if r == id {
			return true
		}
	}
	return false
}

// pastGoAwayLocked reports whether stream id came after the last stream
// a GOAWAY named: not served, and what the client sends on it before it
// hears of the GOAWAY is discarded (RFC 9113 §6.8).
func (c *conn) pastGoAwayLocked(id uint32) bool {
	return c.sentGoAway && id > c.lastSent
}

// refuseLocked records stream id as reset by the server: frames the
// client sent on it before it heard are dropped, not answered.
func (c *conn) refuseLocked(id uint32) {
	c.refused[c.nextRefused%len(c.refused)] = id
	c.nextRefused++
}

// grantLocked is how much of the connection's window to give back now:
// what was read or dropped, once it is a quarter of the window.
//
// It is given back sooner too, once it is as much as the client has left
// of the window: what other streams hold unread can leave the client none
// of the connection's window with less than a quarter read, and then only
// this grant would come.
func (c *conn) grantLocked() uint32 {
	return grant(&c.recvUnacked, &c.recvWindow, c.s.connWindow(), true)
}

// grant moves what was read or dropped (unacked) back into window once
// it is a quarter of the window's size, or, when short, as much as the
// client has left of it, and returns the increment to send; 0: not yet.
func grant(unacked, window *int64, size uint32, short bool) uint32 {
	if *unacked == 0 || *unacked < int64(size)/4 && (!short || *unacked < *window) {
		return 0
	}
	inc := *unacked
	*unacked = 0
	*window += inc
	return uint32(inc)
}

func (c *conn) processHeaders(f *headerBlock) error {
	id := f.streamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	// Held from the checks to the stream's registration: a GOAWAY sent
	// meanwhile names this stream as processed or not, and the stream is
	// served or not accordingly.
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		c.mu.Unlock()
		return c.processTrailers(st, f)
	}
	if id <= c.maxID {
		// Trailers sent before the client heard of the reset, or of the
		// GOAWAY that left the stream unserved: discarded, as the stream
		// was (RFC 9113 §6.8), the block decoded already.
		refused := c.wasRefusedLocked(id) || c.pastGoAwayLocked(id)
		c.mu.Unlock()
		if refused {
			return nil
		}
		// A stream id going down, or one closed and gone (RFC 9113
		// §5.1.1), as x/net has it.
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.maxID = id
	if c.goingAway {
		// Past the GOAWAY's last stream: ignored, as the client knows.
		c.mu.Unlock()
		return nil
	}
	if f.dependsOnItself {
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	// The limit counts streams the protocol has open; handlers of reset
	// streams may still run for a while, but not without bound.
	if max := c.s.maxStreams(); uint32(c.open) >= max || uint32(c.active.Load()) >= 2*max {
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	if f.truncated && !c.s.HandleRefused {
		c.refuseLocked(id)
		c.mu.Unlock()
		c.writeStatusOnly(id, http.StatusRequestHeaderFieldsTooLarge)
		if !f.streamEnded {
			// Answered: the body it would send is not wanted.
			c.writeReset(id, http2.ErrCodeNo)
		}
		return nil
	}
	st := newStream(c, id)
	if f.truncated {
		st.buildRefused(f)
	} else if err := st.buildRequest(f); err != nil {
		st.cancel()
		c.mu.Unlock()
		return err
	}
	st.sendWindow = c.peerWindow
	st.recvWindow = int64(c.s.streamWindow())
	if f.streamEnded {
		st.remoteDone = true
		st.bodyErr = io.EOF
	}
	if c.streams == nil {
		c.streams = map[uint32]*stream{}
	}
	c.streams[id] = st
	if c.ctx.Err() != nil {
		st.cancel() // cancelStreams ran before it was in the table
	}
	c.active.Add(1)
	c.open++
	st.counted = true
	c.handlers.Add(1)
	c.mu.Unlock()
	go st.run()
	return nil
}

// processTrailers takes a HEADERS frame on an open stream: the request's
// trailers, which end it.
func (c *conn) processTrailers(st *stream, f *headerBlock) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case st.reset != nil && !st.clientReset:
		return nil // sent before the client heard of the server's reset
	case st.clientReset || st.remoteDone && st.localDone:
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	case st.remoteDone:
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeStreamClosed}
	case !f.streamEnded || len(f.pseudos()) > 0:
		st.resetLocked(errStreamReset)
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	case st.declared >= 0 && st.received != st.declared:
		st.resetLocked(errStreamReset)
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	for _, hf := range f.regular() {
		k := c.canonical(hf.Name)
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length", "Host", "Te":
			st.resetLocked(errStreamReset)
			return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
		}
		// The request's Trailer has the announced names; the values
		// are visible to the handler once its body read sees the end,
		// which takes mu.
		if t := st.req.Trailer; t != nil {
			t[k] = append(t[k], hf.Value)
		}
	}
	st.remoteDone = true
	st.bodyErr = io.EOF
	st.closedLocked()
	c.cond.Broadcast()
	return nil
}

// goAway has the connection take no new stream and close once its open
// streams end; once only. The GOAWAY is written on a goroutine of the
// connection's: a writer stuck on a client that does not read must not
// hold the caller (Shutdown, a timer, the reader). Before the reader has
// caught up with what the client sent as the connection began (the
// streams a GOAWAY then would name none of), it is held until it has
// (catchUp).
func (c *conn) goAway() {
	c.mu.Lock()
	if c.goingAway || c.closed {
		c.mu.Unlock()
		return
	}
	if !c.settings {
		// No frame goes before the server's SETTINGS: start calls
		// goAway again once they are out.
		c.goAwayDue = true
		c.mu.Unlock()
		return
	}
	if !c.caughtUp.Load() {
		// Held for the reader, but not for longer than caughtUpBound: a
		// reader inside a frame the client never finishes does not
		// catch up.
		if wait := caughtUpBound - time.Since(c.born); wait > 0 {
			c.goAwayDue = true
			if c.catchUpTimer == nil {
				c.catchUpTimer = time.AfterFunc(wait, c.catchUp)
			}
			c.mu.Unlock()
			return
		}
		c.caughtUp.Store(true)
	}
	c.goingAway = true
	last := c.goAwayLastLocked()
	idle := c.active.Load() == 0
	c.handlers.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.handlers.Done()
		c.write(func() error { return c.fr.WriteGoAway(last, http2.ErrCodeNo, nil) })
		if idle {
			c.linger()
		}
	}()
}

// caughtUpBound bounds the catching up: a client that never stops
// sending (an upload as the connection begins), or stops inside a frame,
// does not hold a GOAWAY for longer.
const caughtUpBound = time.Second

// catchUpLook is how long the reader looks for more of what came with the
// connection's start when the connection cannot say whether it holds
// any (Drained).
const catchUpLook = 50 * time.Millisecond

// lookForMore catches up (catchUp) once the client's connection holds
// nothing unread: at once when it says so (Drained), else when a short
// look (catchUpLook) finds nothing, or past caughtUpBound. found: the
// look found more, left buffered for the reader.
func (c *conn) lookForMore() (found bool) {
	if drained(c.nc) || time.Since(c.born) >= caughtUpBound {
		c.catchUp()
		return false
	}
	// Deadlines under mu, as linger sets its own: a lingering
	// connection's is not cut short, nor cleared.
	c.mu.Lock()
	if c.lingering {
		c.mu.Unlock()
		c.catchUp()
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(catchUpLook))
	c.mu.Unlock()
	_, err := c.br.Peek(1)
	c.mu.Lock()
	if !c.lingering {
		c.nc.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	if err != nil {
		// Nothing came (or the connection ended, which the wait for the
		// next frame meets again).
		c.catchUp()
		return false
	}
	return true
}

// drained reports whether nc holds nothing of the client's that the
// reader has not read: what nc says (Drained); false when it cannot say,
// so that the reader looks a moment (lookForMore).
func drained(nc net.Conn) bool {
	d, ok := nc.(interface{ Drained() bool })
	return ok && d.Drained()
}

// catchUp records that the reader has caught up with the connection's
// start, or that caughtUpBound has passed, and sends the GOAWAY held
// meanwhile, if any: it names the streams the client sent as the
// connection began.
func (c *conn) catchUp() {
	c.mu.Lock()
	c.caughtUp.Store(true)
	due := c.goAwayDue
	c.mu.Unlock()
	if due {
		c.goAway()
	}
}

// goAwayLastLocked is the last stream a GOAWAY names: the highest the
// client opened when the first was sent, never more after (RFC 9113
// §6.8).
func (c *conn) goAwayLastLocked() uint32 {
	if !c.sentGoAway {
		c.sentGoAway = true
		c.lastSent = c.maxID
	}
	return c.lastSent
}

// linger has the reader read out what the client still sends for a
// moment, then end.
func (c *conn) linger() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lingering = true
	c.nc.SetReadDeadline(time.Now().Add(goAwayLinger))
	if c.parked {
		c.parking.Unpark()
	}
}

// onIdle ends a connection that had no stream for IdleTimeout.
func (c *conn) onIdle() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	left := c.s.IdleTimeout
	if c.active.Load() == 0 {
		left -= time.Since(c.idleSince)
	}
	if left > 0 {
		c.idle.Reset(left)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.goAway()
}

// streamEnded takes a stream whose handler returned out of the table.
func (c *conn) streamEnded(st *stream) {
	c.mu.Lock()
	delete(c.streams, st.id)
	c.active.Add(-1)
	if !st.remoteDone && !st.clientReset {
		// Reset by the server (its answer ended first, or it failed):
		// what the client sent meanwhile is dropped.
		c.refuseLocked(st.id)
	}
	st.localDone = true
	st.closedLocked()
	// What the handler left unread is the connection's again.
	unread := int64(len(st.body))
	st.body = nil
	c.recvUnacked += unread
	connInc := c.grantLocked()
	last := c.active.Load() == 0
	var now time.Time
	if last {
		now = time.Now()
		c.idleSince = now
	}
	c.armGraceLocked(now)
	linger := last && c.goingAway && !c.lingering
	c.mu.Unlock()
	c.writeWindow(0, connInc)
	if linger {
		c.linger()
	}
}

// write runs fn, which writes frames, under the write lock, and flushes
// them (see unlockWrite). Every write to the connection is bounded by
// WriteTimeout.
func (c *conn) write(fn func() error) error {
	c.lockWrite()
	err := fn()
	return c.unlockWrite(err)
}

func (c *conn) lockWrite() {
	c.waiting.Add(1)
	c.wmu.Lock()
	c.waiting.Add(-1)
	if d := c.s.WriteTimeout; d > 0 && c.werr == nil {
		// Each write gets WriteTimeout at least, half as much again at
		// most: moving the deadline on every write would cost a timer
		// change a write, set half a timeout ahead it moves once in
		// that half.
		if now := time.Now(); c.wdeadline.Sub(now) < d {
			c.wdeadline = now.Add(d + d/2)
			c.nc.SetWriteDeadline(c.wdeadline)
		}
	}
}

// unlockWrite flushes what was written and releases the lock; err is
// what the frames' writing said. Answers of several streams share a
// flush, and so one TLS record and one write(2), where they can:
//
//   - a writer queued for the lock flushes for the one before it;
//   - while other handlers of the connection run, a writer first yields
//     its processor once (runtime.Gosched): a handler woken with it, its
//     app's answer in, writes its frames meanwhile, and the first of
//     them back flushes for both. The wait is one turn of the scheduler,
//     not a timer: an answer never waits for a handler that is itself
//     waiting.
//
// Under load, with ten streams a connection, about a third of a write
// is left a request; a connection with one stream at a time flushes at
// once.
func (c *conn) unlockWrite(err error) error {
	if c.werr == nil && err == nil && c.waiting.Load() == 0 {
		err = c.flush()
	}
	if err != nil && c.werr == nil {
		c.werr = fmt.Errorf("h2: writing to the client: %w", err)
		// Nothing more can be sent: the reader sees the close and ends
		// the connection.
		c.nc.Close()
	}
	err = c.werr
	c.wmu.Unlock()
	return err
}

// flush writes bw out, after a yield while other handlers run (see
// unlockWrite). wmu is held, and is again when it returns.
func (c *conn) flush() error {
	if c.active.Load() > 1 && c.bw.Buffered() < flushAtOnce {
		c.unflushed = true
		c.wmu.Unlock()
		runtime.Gosched()
		c.wmu.Lock()
		if !c.unflushed || c.werr != nil || c.waiting.Load() > 0 {
			// Flushed, failed, or one queued for the lock flushes.
			return nil
		}
	}
	c.unflushed = false
	return c.bw.Flush()
}

// writeBuffer is the size of bw's buffer; a flush does not wait for more
// once flushAtOnce is written (bw writes itself out when full).
const (
	writeBuffer = 16 << 10
	flushAtOnce = writeBuffer / 2
)

func (c *conn) writeSettings() bool {
	s := c.s
	err := c.write(func() error {
		err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: s.maxStreams()},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: s.maxFrame()},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: s.streamWindow()},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: s.maxHeaderList()},
		)
		if err == nil && s.connWindow() > initialWindow {
			err = c.fr.WriteWindowUpdate(0, s.connWindow()-initialWindow)
		}
		return err
	})
	c.mu.Lock()
	c.recvWindow = int64(s.connWindow())
	c.mu.Unlock()
	return err == nil
}

func (c *conn) writeReset(id uint32, code http2.ErrCode) {
	c.write(func() error { return c.fr.WriteRSTStream(id, code) })
}

func (c *conn) writeGoAway(code http2.ErrCode, detail error) {
	c.mu.Lock()
	c.goingAway = true
	last := c.goAwayLastLocked()
	c.mu.Unlock()
	var debug []byte
	if detail != nil {
		debug = []byte(detail.Error())
	}
	c.write(func() error { return c.fr.WriteGoAway(last, code, debug) })
}

// writeWindow sends WINDOW_UPDATE frames, given as stream and increment
// pairs; a zero increment is none.
func (c *conn) writeWindow(pairs ...uint32) {
	any := false
	for i := 1; i < len(pairs); i += 2 {
		any = any || pairs[i] > 0
	}
	if !any {
		return
	}
	c.write(func() error {
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i+1] == 0 {
				continue
			}
			if err := c.fr.WriteWindowUpdate(pairs[i], pairs[i+1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeStatusOnly answers a stream with a status and nothing else, the
// stream read no further.
func (c *conn) writeStatusOnly(id uint32, status int) {
	c.lockWrite()
	err := c.writeHeaderBlock(id, status, nil, true, "", true)
	c.unlockWrite(err)
}

// waitLocked waits on the connection's condition until woken or until
// deadline, if set; false once the deadline passed.
func (c *conn) waitLocked(deadline time.Time) bool {
	if deadline.IsZero() {
		c.cond.Wait()
		return true
	}
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.AfterFunc(d, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	c.cond.Wait()
	t.Stop()
	return true
}
