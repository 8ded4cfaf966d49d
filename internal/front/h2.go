package front

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
)

// ALPN protocol names the front acts on.
const (
	alpnH2   = "h2"
	alpnH1   = "http/1.1"
	alpnACME = "acme-tls/1" // an ACME TLS-ALPN-01 validation: no request follows
)

// handshake runs the TLS handshake of a TLS connection, bounded by
// HeadTimeout (a client that opens a connection and sends nothing holds it
// no longer than one that sends half a head), and records the state on the
// connection's request. false: the handshake failed, or it was an ACME
// validation, and the connection ends.
func (fc *conn) handshake(tc *tls.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), fc.s.opts.HeadTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		fc.s.tlsErrors.Add(1)
		return false
	}
	st := tc.ConnectionState()
	fc.tls = &st
	return st.NegotiatedProtocol != alpnACME
}

// serveH2 serves the connection as HTTP/2 until it ends: c is the TLS
// connection that negotiated "h2", or a plain one whose first bytes were
// the HTTP/2 preface (h2c). Streams go to the handler's ServeHTTP, each
// with the body and send timeouts of an HTTP/1.1 request.
//
// The connection counts as active for Shutdown, which does not close it
// as idle but has the HTTP/2 server send GOAWAY: open streams finish,
// then the server closes it.
func (fc *conn) serveH2(c net.Conn) {
	fc.state.Store(connActive)
	s := fc.s
	s.h2conns.Add(1)
	defer s.h2conns.Add(-1)
	// During a shutdown the connection is still served: the next tick of
	// Shutdown tells it to go away, and its client retries what it had
	// not sent elsewhere, where a closed connection would fail it.
	// An h2c connection still has the deadline its preface was read
	// under, which x/net never clears: it would end the connection
	// HeadTimeout after it opened. x/net bounds the rest of the preface
	// and the first SETTINGS itself, and idleness with IdleTimeout.
	c.SetReadDeadline(time.Time{})
	// The streams' contexts end with the connection.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.h2.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: s.h2base, Handler: s.h2handler})
}

// newH2 makes the server's HTTP/2 side: ServeConn serves one connection
// at a time on the front's own goroutine, and base's Shutdown is how the
// front tells every HTTP/2 connection to go away.
func (s *Server) newH2() {
	o := &s.opts
	s.h2handler = streamHandler{h: s.h, bodyTimeout: o.BodyTimeout, sendTimeout: o.SendTimeout, hsts: o.HSTS}
	// WriteByteTimeout bounds the connection's own writes: without it a
	// client that stops reading the socket blocks x/net's frame writer,
	// and with it every stream, handler and app connection, for ever
	// (not even GOAWAY gets out).
	s.h2 = &http2.Server{IdleTimeout: o.KeepaliveTimeout, MaxConcurrentStreams: maxStreams, WriteByteTimeout: o.SendTimeout}
	s.h2base = &http.Server{
		Handler:        s.h2handler,
		MaxHeaderBytes: o.HeadLimit,
		IdleTimeout:    o.KeepaliveTimeout,
		ErrorLog:       o.ErrorLog,
	}
	// Registers the graceful-shutdown hook on base; base never serves.
	http2.ConfigureServer(s.h2base, s.h2)
}

// maxStreams bounds the requests in flight on one HTTP/2 connection, as
// nginx's http2_max_concurrent_streams (128) and Go's default (250) do.
const maxStreams = 250

// goAwayH2 tells the HTTP/2 connections to finish their streams and
// close. Called on every tick of Shutdown: a connection that began after
// the first call hears it too (each connection acts on it once).
func (s *Server) goAwayH2() {
	if s.h2conns.Load() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.h2base.Shutdown(ctx) // returns at once: base tracks no connections
}

// streamHandler serves an HTTP/2 stream: the request body's reads are
// bounded by bodyTimeout each and the answer's writes by sendTimeout, as
// on an HTTP/1.1 connection.
type streamHandler struct {
	h           Handler
	bodyTimeout time.Duration
	sendTimeout time.Duration
	hsts        string
}

func (f streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &timedBody{ReadCloser: r.Body, rc: rc, d: f.bodyTimeout, stream: true}
	}
	sw := &closingWriter{ResponseWriter: w, rc: rc, send: f.sendTimeout, keep: true}
	if r.TLS != nil {
		sw.hsts = f.hsts
	}
	f.h.ServeHTTP(sw, r)
	// What the handler left in x/net's buffer (a small answer, never
	// flushed) goes out after it returns, under flow control: a client
	// that grants no window would hold the stream for ever. The deadline
	// bounds that last write; x/net stops its timer when the stream
	// closes.
	sw.deadline()
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
