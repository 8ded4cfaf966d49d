package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// A front connection's state, for Shutdown:
//
//	        request's first byte          response written
//	idle ─────────────────────────▶ active ─────────────────▶ idle
//	  │
//	  └── Shutdown closes it ──▶ closed     (active ones finish, then close)
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// frontConn serves the keep-alive requests of one client connection. Its
// request, header map, URL, body reader and response writer are reused
// from one request to the next: nothing of a finished request is retained
// anywhere else (the access entry copies what it keeps, and the strings
// parsed from a head point into that head's own copy).
type frontConn struct {
	f      *Front
	conn   net.Conn
	raw    syscall.RawConn // for the non-blocking peek; nil if not a socket
	br     *bufio.Reader
	bw     *bufio.Writer
	state  atomic.Int32
	remote string
	ip     string // the client's address without the port, for X-Forwarded-For

	req  *http.Request
	url  url.URL
	vals []string // backing store of the header map's values
	body bodyReader
	ctx  *clientCtx
	w    frontWriter
	rw   responseWriter
	// scratch formats numbers without allocating.
	scratch [24]byte

	// Of the current request.
	st         *reqState
	closeAfter bool   // the client asked for Connection: close, or the exchange broke
	requestID  string // the client's X-Request-Id
	hop        []string

	// stash holds the byte the client watcher read: the start of a
	// pipelined request.
	stash    byte
	stashed  bool
	handedTo bool // the connection belongs to the fallback server now
}

func newFrontConn(f *Front, c net.Conn) *frontConn {
	fc := &frontConn{f: f, conn: c, remote: c.RemoteAddr().String()}
	fc.ip = clientIP(fc.remote)
	if sc, ok := c.(syscall.Conn); ok {
		fc.raw, _ = sc.SyscallConn()
	}
	fc.br = bufio.NewReaderSize(source{fc}, 8<<10)
	fc.bw = bufio.NewWriterSize(c, 4<<10)
	fc.ctx = &clientCtx{fc: fc}
	fc.req = (&http.Request{Header: http.Header{}, URL: &fc.url}).WithContext(fc.ctx)
	fc.body.fc = fc
	fc.w.fc = fc
	fc.w.own = http.Header{}
	fc.state.Store(connIdle)
	return fc
}

// source reads the client connection, after the byte the watcher took.
type source struct{ fc *frontConn }

func (s source) Read(p []byte) (int, error) {
	if s.fc.stashed && len(p) > 0 {
		s.fc.stashed = false
		p[0] = s.fc.stash
		return 1, nil
	}
	return s.fc.conn.Read(p)
}

// serve reads and answers requests until the client or the server ends
// the connection.
func (fc *frontConn) serve() {
	defer fc.end()
	defer fc.recover()
	// A new connection gets ReadHeaderTimeout for its first request, as
	// with net/http; a kept-alive one IdleTimeout for the next.
	wait, first := fc.f.opts.ReadHeaderTimeout, true
	for {
		if fc.f.closing.Load() {
			return
		}
		fc.conn.SetReadDeadline(time.Now().Add(wait))
		if _, err := fc.br.Peek(1); err != nil {
			return
		}
		if !fc.state.CompareAndSwap(connIdle, connActive) {
			return // closed by Shutdown
		}
		if !fc.skipEmptyLines() {
			return
		}
		head, err := fc.readHead(!first)
		wait, first = fc.f.opts.IdleTimeout, false
		switch {
		case errors.Is(err, errNotFront):
			fc.handOff()
			return
		case err != nil:
			return
		}
		if !fc.parse(head) {
			fc.handOff()
			return
		}
		fc.br.Discard(len(head))
		fc.conn.SetReadDeadline(time.Time{})
		fc.f.gw.serveFront(fc)
		fc.ctx.stopWatch()
		if fc.closeAfter || fc.ctx.gone.Load() || !fc.drainBody() {
			return
		}
		if !fc.state.CompareAndSwap(connActive, connIdle) {
			return
		}
	}
}

// recover turns a panic while serving into a closed connection and a
// logged stack, as net/http does: one bad request must not take the
// gateway down.
func (fc *frontConn) recover() {
	if v := recover(); v != nil {
		fc.ctx.stopWatch()
		buf := make([]byte, 16<<10)
		buf = buf[:runtime.Stack(buf, false)]
		fc.f.gw.errLog.Printf("gateway: panic serving %s: %v\n%s", fc.remote, v, buf)
	}
}

// skipEmptyLines drops empty lines before a request line, as RFC 9112
// §2.2 asks of servers (some clients send a CRLF after a POST body).
func (fc *frontConn) skipEmptyLines() bool {
	for range 4 {
		b, err := fc.br.Peek(2)
		if err != nil || b[0] != '\r' || b[1] != '\n' {
			return err == nil
		}
		fc.br.Discard(2)
	}
	return true
}

// errNotFront: the request is one for the fallback server.
var errNotFront = errors.New("not a request the front serves")

// readHead returns the request head, up to and including its empty line,
// without consuming it. A head larger than the buffer, or whose lines end
// in a bare LF, is left to the fallback server.
//
// extend: the deadline set was the idle one, and the rest of the head gets
// ReadHeaderTimeout from now; a first request's deadline already is that.
func (fc *frontConn) readHead(extend bool) ([]byte, error) {
	extended := !extend
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		if n := headEnd(buf); n > 0 {
			return buf[:n], nil
		} else if n < 0 {
			return nil, errNotFront
		}
		if len(buf) >= fc.br.Size() {
			return nil, errNotFront
		}
		if !extended {
			fc.conn.SetReadDeadline(time.Now().Add(fc.f.opts.ReadHeaderTimeout))
			extended = true
		}
		if _, err := fc.br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// drainBody reads what the handler left of the request body, so that the
// next request starts where it should; false (close the connection) when
// too much is left or the read fails.
func (fc *frontConn) drainBody() bool {
	if fc.body.n == 0 {
		return true
	}
	if fc.body.n > maxDrain {
		return false
	}
	fc.conn.SetReadDeadline(time.Now().Add(fc.f.opts.ReadHeaderTimeout))
	_, err := io.Copy(io.Discard, &fc.body)
	return err == nil && fc.body.n == 0
}

// maxDrain is how much of an unread request body is read and dropped to
// keep the connection; net/http uses the same bound.
const maxDrain = 256 << 10

// handOff gives the connection, with what was read of it, to the fallback
// server.
func (fc *frontConn) handOff() {
	var pending []byte
	if fc.stashed {
		pending = append(pending, fc.stash)
	}
	buf, _ := fc.br.Peek(fc.br.Buffered())
	pending = append(pending, buf...)
	fc.conn.SetReadDeadline(time.Time{})
	if fc.f.handoff.give(&replayConn{Conn: fc.conn, pending: pending}) {
		fc.handedTo = true
	}
}

// end untracks the connection and closes it unless it was handed off.
// A client still sending a body the gateway did not read is given time to
// finish before the close, or its kernel would reset the connection and
// discard the answer it was sent (the answer said Connection: close).
func (fc *frontConn) end() {
	if !fc.handedTo {
		fc.state.Store(connClosed)
		if fc.body.n > 0 && !fc.ctx.gone.Load() {
			fc.lingerClose()
		}
		fc.conn.Close()
	}
	fc.f.track(fc, false)
}

// lingerWait bounds how long a closing connection reads what its client
// still sends; net/http waits as long.
const lingerWait = 500 * time.Millisecond

func (fc *frontConn) lingerClose() {
	if cw, ok := fc.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	fc.conn.SetReadDeadline(time.Now().Add(lingerWait))
	io.Copy(io.Discard, fc.conn)
}

// replayConn is a connection whose first bytes were already read.
type replayConn struct {
	net.Conn
	pending []byte
}

// CloseWrite lets net/http half-close a handed-off connection before it
// closes it, as it does with its own.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// bodyReader reads a request body of known length from the connection.
type bodyReader struct {
	fc *frontConn
	n  int64
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.fc.br.Read(p)
	b.n -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.fc.ctx.cancel()
	}
	return n, err
}

func (b *bodyReader) Close() error { return nil }
