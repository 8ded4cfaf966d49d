package front

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connListener is the fallback server's listener: it accepts the
// connections the front hands over.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// give hands c to the fallback server; false once it is closed.
func (l *connListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// tlsStateKey keys a handed-off TLS connection's state in its context.
type tlsStateKey struct{}

// connContext gives a handed-off TLS connection's requests its state.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*replayConn); ok && rc.tls != nil {
		return context.WithValue(ctx, tlsStateKey{}, rc.tls)
	}
	return ctx
}

// replayConn is a handed-off connection whose first bytes were already
// read; closing it frees its connection slot.
type replayConn struct {
	net.Conn
	// tls is the handshake of a TLS connection; nil on a plain one.
	tls     *tls.ConnectionState
	pending []byte
	once    sync.Once
	s       *Server
	// hijacked: net/http gave the connection up to an upgrade.
	hijacked atomic.Bool
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close a handed-off connection before it
// closes it, as it does with its own.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *replayConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.handedOff(c, false)
		c.s.freeSlot()
	})
	return err
}

// fallbackHandler serves the one request of a handed-off connection. The
// connection closes after it: the front checked this request's head, and
// must check every next one too, so net/http never reads a second request
// on its own. A request body's reads are bounded by bodyTimeout each, and
// what net/http reads of an unread body after the handler by lingerWait.
type fallbackHandler struct {
	h           Handler
	bodyTimeout time.Duration
	sendTimeout time.Duration
	hsts        string
}

func (f fallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	st, _ := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	if st != nil || r.Body != nil && r.Body != http.NoBody {
		// On a copy: net/http looks at its own request's body after the
		// handler, to linger for a client still sending one unread.
		r = r.WithContext(r.Context())
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &timedBody{ReadCloser: r.Body, rc: rc, d: f.bodyTimeout}
	}
	cw := &closingWriter{ResponseWriter: w, rc: rc, send: f.sendTimeout}
	if st != nil {
		// net/http sees the hand-off wrapper, not the TLS connection
		// under it: the front says what the handshake was.
		r.TLS = st
		cw.hsts = f.hsts
	}
	f.h.ServeHTTP(cw, r)
	// net/http then reads what is left of the body (up to 256 KiB) to
	// close cleanly; a client that stopped sending must not hold the
	// connection for ever. (After an upgrade this fails: hijacked.)
	rc.SetReadDeadline(time.Now().Add(lingerWait))
}

// closingWriter makes every final answer but a switch of protocols say
// Connection: close, so that net/http ends the connection after it (set
// on the 101 itself it would break the upgrade; a 1xx must not carry it),
// and gives each write send to reach the client. keep: the connection
// outlives the answer (an HTTP/2 stream), so nothing is said of it.
type closingWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	send  time.Duration
	wrote bool
	keep  bool
	// hsts, when set, is the Strict-Transport-Security of an answer over
	// TLS that does not carry its own.
	hsts string
	// buffered is, on an HTTP/2 stream (keep), what the writes since the
	// last flush have put in x/net's buffer for the stream: a write that
	// still fits there only copies and cannot block on a client that
	// stopped reading, so it goes without the deadline, whose setting
	// and clearing are two messages to the connection's serve loop and a
	// timer. h2Chunk once unknown (after a write that did not fit).
	buffered int
}

// h2Chunk is the size of x/net's per-stream response buffer
// (handlerChunkWriteSize): writes that fit in it are not sent yet.
const h2Chunk = 4 << 10

func (w *closingWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		h := w.Header()
		if code != http.StatusSwitchingProtocols && !w.keep {
			h.Set("Connection", "close")
		}
		if w.hsts != "" && h.Get("Strict-Transport-Security") == "" {
			h.Set("Strict-Transport-Security", w.hsts)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closingWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.keep && w.buffered+len(p) < h2Chunk {
		w.buffered += len(p)
		return w.ResponseWriter.Write(p)
	}
	w.buffered = h2Chunk
	w.deadline()
	defer w.done()
	return w.ResponseWriter.Write(p)
}

// Flush sends what is buffered, within send.
func (w *closingWriter) Flush() {
	w.deadline()
	w.rc.Flush()
	w.done()
	w.buffered = 0
}

// deadline gives the next write send to reach the client. On an HTTP/2
// stream (keep) the deadline is a timer that resets the stream when it
// fires, write pending or not: it is cleared again after the write
// (done), so that a stream that is only quiet (server-sent events, a long
// poll) outlives send, as an HTTP/1.1 response does.
func (w *closingWriter) deadline() {
	w.rc.SetWriteDeadline(time.Now().Add(w.send))
}

// done clears an HTTP/2 stream's write deadline once its write returned.
func (w *closingWriter) done() {
	if w.keep {
		w.rc.SetWriteDeadline(time.Time{})
	}
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *closingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// timedBody gives each read of a request body d to return: a client that
// trickles its upload holds an app's connection no longer.
type timedBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
	// stream: an HTTP/2 stream's body, whose read deadline is a timer
	// that ends the body when it fires, read pending or not; it is
	// cleared after every read, so that a handler's pause between reads
	// is not the client's fault.
	stream bool
}

// SetTimeout bounds each further read by d instead (an app's own limit).
func (b *timedBody) SetTimeout(d time.Duration) { b.d = d }

func (b *timedBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err != nil || b.stream {
		// net/http's own read of the connection, which starts once the
		// body is read, must not inherit the deadline.
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
