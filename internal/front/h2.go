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
// the HTTP/2 preface (h2c). Each stream becomes an Exchange for the
// handler (stream.go), with the body and send timeouts of an HTTP/1.1
// request.
//
// The connection counts as active for Shutdown, which does not close it
// as idle but has the HTTP/2 server send GOAWAY: open streams finish,
// then the server closes it.
//
// x/net reads and writes the connection through a guard (h2guard.go) that
// ends a client flooding it with frames that ask for nothing, or
// resetting the streams it opens as it opens them.
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
	h := &streamHandler{s: s, tls: fc.tls, clientUnknown: clientUnknown(fc.c)}
	h.buffered.SetLimit(s.opts.ConnectionBuffer)
	g, gc := s.guardH2(c)
	defer g.stop()
	//lint:ignore SA1019 net/http serves only connections it accepts itself; this one the front accepted, sniffed and wrapped.
	s.h2.ServeConn(gc, &http2.ServeConnOpts{Context: ctx, BaseConfig: s.h2base, Handler: h})
}

// newH2 makes the server's HTTP/2 side: ServeConn serves one connection
// at a time on the front's own goroutine, and base's Shutdown is how the
// front tells every HTTP/2 connection to go away. The settings are
// base's (IdleTimeout, HTTP2), which x/net reads through ServeConnOpts.
func (s *Server) newH2() {
	o := &s.opts
	// WriteByteTimeout bounds the connection's own writes: without it a
	// client that stops reading the socket blocks x/net's frame writer,
	// and with it every stream, handler and app connection, for ever
	// (not even GOAWAY gets out).
	//
	// MaxReadFrameSize is the protocol's initial value, 16 KiB, where
	// x/net's default is 1 MiB: x/net's framer keeps a read buffer as
	// large as the largest frame its connection has read, for as long as
	// the connection lives, so under 1 MiB any client could pin 1 MiB per
	// connection with one HEADERS frame, which flow control does not
	// bound. A larger frame is a connection error FRAME_SIZE_ERROR (RFC
	// 9113 §4.2); a client sends a larger header block as CONTINUATION
	// frames, and a body as more DATA frames.
	s.h2base = &http.Server{
		Handler:        http.NotFoundHandler(), // each connection has its own (serveH2)
		MaxHeaderBytes: o.HeadLimit,
		IdleTimeout:    o.KeepaliveTimeout,
		ErrorLog:       o.ErrorLog,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: maxStreams,
			WriteByteTimeout:     o.SendTimeout,
			MaxReadFrameSize:     maxFrameSize,
		},
	}
	//lint:ignore SA1019 ServeConn (serveH2) needs an x/net Server; net/http has no equivalent for a connection it did not accept.
	s.h2 = &http2.Server{}
	// Registers the graceful-shutdown hook on base, and copies its
	// IdleTimeout to the x/net server; base never serves.
	//lint:ignore SA1019 the only way to have base's Shutdown send GOAWAY on connections served by ServeConn.
	http2.ConfigureServer(s.h2base, s.h2)
}

// maxStreams bounds the requests in flight on one HTTP/2 connection, as
// nginx's http2_max_concurrent_streams (128) and Go's default (250) do.
const maxStreams = 250

// maxFrameSize is the largest frame the front reads: RFC 9113's initial
// SETTINGS_MAX_FRAME_SIZE, the least a server may advertise.
const maxFrameSize = 16 << 10

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
