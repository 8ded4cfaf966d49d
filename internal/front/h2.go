package front

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/gatehouse/gatehouse/internal/h2"
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
	fc.handshaking.Store(true)
	err := tc.HandshakeContext(ctx)
	cancel()
	fc.stopMu.Lock()
	fc.handshaking.Store(false)
	if fc.state.Load() == connStopping {
		// Cut short as it ended: no write after it is the cut's to fail
		// (stopWait).
		fc.c.SetWriteDeadline(time.Time{})
	}
	fc.stopMu.Unlock()
	if err != nil {
		fc.s.tlsErrors.Add(1)
		answerPlainHTTP(err)
		return false
	}
	st := tc.ConnectionState()
	fc.tls = &st
	return st.NegotiatedProtocol != alpnACME
}

// plainHTTPAnswer is what a client that spoke plain HTTP to the HTTPS
// listener is told, as net/http, Caddy and nginx tell it: closing without
// a word leaves a person at a browser with an empty reply and no reason.
const plainHTTPAnswer = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
	"Client sent an HTTP request to an HTTPS server.\n"

// answerPlainHTTP answers a handshake that failed on a first record that
// is the start of an HTTP request. The socket bounds the write (SendTimeout).
func answerPlainHTTP(err error) {
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		io.WriteString(re.Conn, plainHTTPAnswer)
	}
}

// looksLikeHTTP reports whether a TLS record header's five bytes are the
// start of an HTTP/1.x request line.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH":
		return true
	}
	return false
}

// serveH2 serves the connection as HTTP/2 until it ends (true), or
// parks (false: the poller's claimer serves it on, wakeH2): c is the TLS
// connection that negotiated "h2", or a plain one whose first bytes were
// the HTTP/2 preface (h2c). Each stream becomes an Exchange for the
// handler (stream.go), with the body and send timeouts of an HTTP/1.1
// request.
//
// The connection counts as active for Shutdown, which does not close it
// as idle but has it send GOAWAY: open streams finish, then it closes.
//
// The connection is read and written through a guard (h2guard.go) that
// ends a client flooding it with frames that ask for nothing, or
// resetting the streams it opens as it opens them.
func (fc *conn) serveH2(c net.Conn) (ended bool) {
	// Active already (run's request loop, or its handshake): Shutdown
	// sends it GOAWAY rather than closing it as idle.
	s := fc.s
	// During a shutdown the connection is still served: the next tick of
	// Shutdown tells it to go away, and its client retries what it had
	// not sent elsewhere, where a closed connection would fail it.
	// The deadline the preface was sniffed under is the h2 server's to
	// set from here on.
	c.SetReadDeadline(time.Time{})
	// The streams' contexts end with the connection, which cancels
	// them itself: a parent here would hold a map of one child for as
	// long as the connection lives.
	h := &streamHandler{s: s, tls: fc.tls, clientUnknown: clientUnknown(fc.c)}
	h.buffered.SetLimit(s.opts.ConnectionBuffer)
	g := s.guardH2(c)
	fc.h2 = &h2Side{end: func() {
		g.stop()
		s.h2conns.Add(-1)
	}}
	s.h2conns.Add(1)
	return s.h2.ServeParkable(context.Background(), g, h, h2Parking{fc})
}

// h2Side is what an HTTP/2 connection keeps on the front's side: what
// ends it here (fc.end calls it), and, while it is parked, how it is
// served on (wake, ordered by the poller's lock) and its slot in the
// poller (idx and gen, written under the poller's lock and read by
// unparkH2, both under the HTTP/2 connection's lock).
type h2Side struct {
	end      func()
	wake     func() (ended bool)
	idx, gen uint32
}

// runH2 serves a TLS connection that negotiated HTTP/2, on the
// goroutine started after its handshake.
func (fc *conn) runH2(tc *tls.Conn) { fc.h2Leg(func() bool { return fc.serveH2(tc) }) }

// wakeH2 serves a parked HTTP/2 connection on, on the goroutine of the
// poller's claim.
func (fc *conn) wakeH2(wake func() bool) { fc.h2Leg(wake) }

// h2Leg runs serve, one stretch of an HTTP/2 connection's life on this
// goroutine, and ends the connection when serve says it ended, or
// panicked; not when it parked (whoever wakes it runs the next).
func (fc *conn) h2Leg(serve func() (ended bool)) {
	ended := true
	defer func() {
		if ended {
			fc.end()
		}
	}()
	defer fc.recover()
	ended = serve()
}

// h2Parking parks an idle HTTP/2 connection in the server's poller, as
// an idle HTTP/1.1 one parks: its reader goroutine and read buffer go,
// the socket waits in epoll (h2.Parking). Over TLS only when no record
// has begun: what TLS holds then is nothing, and anything more must
// come on the socket.
type h2Parking struct{ fc *conn }

func (p h2Parking) Park(wake func() bool) bool {
	fc := p.fc
	if !parkable(fc.c) || midRecord(fc.c) {
		return false
	}
	pl := fc.s.poller()
	return pl != nil && pl.parkH2(fc, wake)
}

func (p h2Parking) Unpark() {
	fc := p.fc
	fc.s.mu.Lock()
	pl := fc.s.poll
	fc.s.mu.Unlock()
	if pl != nil {
		pl.unparkH2(fc)
	}
}

// newH2 makes the server's HTTP/2 side.
//
// WriteTimeout bounds the connection's own writes: without it a client
// that stops reading the socket blocks every stream's writer, and with
// it every handler and app connection, for ever (not even GOAWAY gets
// out).
//
// MaxReadFrameSize is the protocol's initial value, 16 KiB: the read
// buffer is as large as the largest frame the connection has read, for
// as long as it lives, and flow control does not bound a HEADERS frame.
// A larger frame is a connection error FRAME_SIZE_ERROR (RFC 9113 §4.2);
// a client sends a larger header block as CONTINUATION frames, and a
// body as more DATA frames.
func (s *Server) newH2() {
	o := &s.opts
	s.h2 = &h2.Server{
		MaxConcurrentStreams: maxStreams,
		MaxHeaderListSize:    uint32(o.HeadLimit) + headListSlack,
		HandleRefused:        true, // refused through the handler, as HTTP/1.1's heads are: logged
		MaxReadFrameSize:     maxFrameSize,
		IdleTimeout:          o.KeepaliveTimeout,
		WriteTimeout:         o.SendTimeout,
		PrefaceTimeout:       o.HeadTimeout,
		ErrorLog:             o.ErrorLog.Printf,
	}
}

// headListSlack is what HPACK counts beyond a head's bytes: 32 a field,
// for 10 fields, as net/http adds to MaxHeaderBytes for HTTP/2.
const headListSlack = 10 * 32

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
	s.h2.GoAway()
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
		if len(c.pending) == 0 {
			c.pending = nil // not held for the connection's life
		}
		return n, nil
	}
	return c.Conn.Read(p)
}
