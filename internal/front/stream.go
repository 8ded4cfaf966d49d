package front

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/h2"
	"github.com/gatehouse/gatehouse/internal/http1"
	"github.com/gatehouse/gatehouse/internal/spool"
	"golang.org/x/net/http2"
)

// streamHandler turns each HTTP/2 stream of one connection into an
// Exchange for the server's Handler: the h2 server keeps the frames,
// HPACK and flow control, and hands over an http.Request, which the front
// checks as it checks an HTTP/1.1 head before anything of it is
// forwarded.
type streamHandler struct {
	s *Server
	// tls is the connection's handshake; nil over h2c. It, not the
	// request's :scheme, says whether the request came over TLS.
	tls *tls.ConnectionState
	// clientUnknown is the connection's (Exchange.ClientUnknown).
	clientUnknown bool
	// buffered is the connection's budget, its streams' Exchange.Buffered.
	buffered spool.Budget
}

// stream is one HTTP/2 stream's side of an Exchange: pooled, with the
// exchange, its writer and its body.
type stream struct {
	x    Exchange
	w    streamWriter
	body timedBody
}

var streams = sync.Pool{New: func() any { return new(stream) }}

func (h *streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := streams.Get().(*stream)
	aborted := st.serve(h, w, r)
	*st = stream{x: Exchange{vals: st.x.vals[:0]}}
	streams.Put(st)
	if aborted {
		// The h2 server resets the stream: the client sees the answer break
		// rather than end (and a stream nothing was written for gets no
		// empty 200).
		panic(http.ErrAbortHandler)
	}
}

// serve serves one stream; true when its answer was cut short.
func (st *stream) serve(h *streamHandler, w http.ResponseWriter, r *http.Request) bool {
	o := &h.s.opts
	rc := w.(streamControl) // the h2 server's writer, which has them
	// The connection's handshake, not :scheme (the client's to say),
	// tells whether the request came over TLS.
	r.TLS = h.tls
	st.w = streamWriter{w: w, rc: rc, send: o.SendTimeout}
	if h.tls != nil {
		st.w.hsts = o.HSTS
	}
	if r.Body != nil && r.Body != http.NoBody {
		st.body = timedBody{ReadCloser: r.Body, rc: rc, d: o.BodyTimeout}
		r.Body = &st.body
	}
	x := &st.x
	*x = Exchange{Req: r, W: &st.w, side: st, IP: hostOf(r.RemoteAddr), ClientUnknown: h.clientUnknown, Buffered: &h.buffered, vals: x.vals[:0]}
	dropUnderscores(r.Header)
	if id := r.Header["X-Request-Id"]; len(id) > 0 {
		x.RequestID = id[0]
	}
	x.Reject = checkStream(r)
	if rc.Refused() == http.StatusRequestHeaderFieldsTooLarge {
		x.Reject = cause.New(cause.HeadersTooLarge, "", "request head larger than limits.request_head", nil)
	}
	h.s.h.Serve(x)
	st.w.end()
	return st.w.aborted
}

// The exchange's side (see Exchange): an HTTP/2 stream's. The h2 server
// ends the request's context when the client resets the stream or the connection
// goes, so there is nothing to watch; a stream's fault is its own.

func (st *stream) startWatch()                    {}
func (st *stream) isGone() bool                   { return st.x.Req.Context().Err() != nil }
func (st *stream) closeAfterAnswer()              {}
func (st *stream) limitBodyReads(d time.Duration) { st.body.d = d }

func (st *stream) takeOver() (net.Conn, []byte, error) { return nil, nil, ErrNoTunnel }

// dropUnderscores removes the fields whose name holds '_', as the HTTP/1
// parser leaves them out (http1.RequestHead.DropUnderscores): one could
// pass for a field gatehouse sets.
func dropUnderscores(h http.Header) {
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 {
			delete(h, k)
		}
	}
}

// checkStream refuses a stream whose method, target or host the HTTP/1.1
// request to the app cannot carry as they are, or whose length is not
// one. The h2 server checks what RFC 9113 asks of a request, not what
// HTTP/1.1 can carry: a space in a pseudo-header field would make the line the app reads another request, or
// none it can parse. A fragment is refused as over HTTP/1.1; so is a
// stream without :authority or Host (RFC 9113 §8.3.1), CONNECT, and "*"
// with another method than OPTIONS.
func checkStream(r *http.Request) *cause.Error {
	t := r.RequestURI
	switch {
	case r.Method == http.MethodConnect:
		return cause.New(cause.BadRequest, "", "CONNECT is not served: gatehouse is not a forward proxy", nil)
	case !http1.ValidToken(r.Method):
		return cause.New(cause.BadRequest, "", "the method is not a token", nil)
	case !http1.ValidTarget(t) || t[0] != '/' && (t != "*" || r.Method != http.MethodOptions):
		return cause.New(cause.BadRequest, "", "the request target holds white space, a control character or '#', or is not a path", nil)
	case r.Host == "":
		return cause.New(cause.BadRequest, "", "no :authority or Host", nil)
	case len(r.Header["Expect"]) > 0:
		// The h2 server took out an Expect that asks for nothing but
		// 100-continue (or nothing); one that asks for anything else
		// is refused, as over HTTP/1.1 (expectation).
		return cause.New(cause.BadRequest, "", "unsupported expectation in Expect", nil)
	}
	return streamLength(r)
}

// streamLength holds a stream to the length it declares (RFC 9113
// §8.1.1) where the h2 server, as net/http's, holds DATA to the first of
// several content-length values, takes one it cannot parse as 0 and, on
// a stream HEADERS ended, ignores it. A content-length that is not one number,
// the one the request has, is refused. A request that declares an empty
// body on an open stream is read to the stream's end here: DATA after it
// would otherwise reset a stream the app was already sent.
func streamLength(r *http.Request) *cause.Error {
	for _, v := range r.Header["Content-Length"] {
		if n, ok := http1.ParseLength(v); !ok || n != r.ContentLength {
			return cause.New(cause.BadRequest, "", "content-length is not the request's one length", nil)
		}
	}
	if r.ContentLength != 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	var b [1]byte
	if n, err := io.ReadAtLeast(r.Body, b[:], 1); n > 0 || err != io.EOF {
		if err == nil {
			err = errors.New("DATA beyond content-length 0")
		}
		return cause.New(cause.BadRequest, "", "reading the request body: "+err.Error(), err)
	}
	r.Body = http.NoBody
	return nil
}

// streamControl is what the h2 server's ResponseWriter offers besides
// the writes: what http.ResponseController would find on it, reached
// without one made for every stream.
type streamControl interface {
	Refused() int
	UseHeader(http.Header)
	FlushError() error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// streamWriter answers on an HTTP/2 stream, through the h2 server's
// ResponseWriter: each write that may block is bounded by send, as an
// HTTP/1.1 answer's are.
type streamWriter struct {
	w  http.ResponseWriter // the h2 server's
	rc streamControl
	// h is the header map UseHeader gave (a forwarded answer's); nil:
	// the h2 server's own.
	h         http.Header
	requestID string
	trailer   *http.Header
	send      time.Duration
	// hsts, when set, is the Strict-Transport-Security of an answer
	// that does not carry its own.
	hsts    string
	wrote   bool
	aborted bool
	// buffered is what the writes since the last flush have put in the
	// h2 server's buffer for the stream: a write that still fits there
	// only copies and cannot block on a client that stopped reading, so
	// it goes without the deadline, whose setting and clearing take the
	// connection's lock twice. h2Chunk once unknown (after a write that
	// did not fit).
	buffered int
}

// h2Chunk is the h2 server's per-stream answer buffer: writes that fit
// in it are not sent yet.
const h2Chunk = h2.AnswerBuffer

func (w *streamWriter) Header() http.Header {
	if w.h != nil {
		return w.h
	}
	return w.w.Header()
}

func (w *streamWriter) SetRequestID(id string)    { w.requestID = id }
func (w *streamWriter) UseHeader(h http.Header)   { w.h = h }
func (w *streamWriter) SetTrailer(t *http.Header) { w.trailer = t }

// WriteHeader hands the head to the h2 server, which sends it with the
// first DATA or at the end. A 101 has no meaning on a stream: it is never
// asked for (the h2 server refuses Upgrade).
func (w *streamWriter) WriteHeader(code int) {
	if w.wrote || code < 200 {
		return
	}
	w.wrote = true
	if w.h != nil {
		// The forwarded answer's own map, read by the h2 server as it
		// writes the head rather than copied into its own; the fields
		// HTTP/2 must not carry it leaves out as it encodes.
		w.rc.UseHeader(w.h)
	}
	h := w.w.Header()
	if code == http.StatusNoContent || code == http.StatusNotModified {
		// A 204 carries no Content-Length (RFC 9110 §8.6), as the
		// HTTP/1.1 writer sends it; a 304's is the representation's,
		// which an HTTP/2 client (Go's) takes for a body the stream's
		// end left out, as it does a 204's: neither goes on a stream.
		delete(h, "Content-Length")
	}
	if w.requestID != "" {
		h["X-Request-Id"] = []string{w.requestID}
	}
	if w.hsts != "" && h["Strict-Transport-Security"] == nil {
		h["Strict-Transport-Security"] = []string{w.hsts}
	}
	if w.trailer != nil && len(*w.trailer) > 0 {
		h["Trailer"] = trailerNames(*w.trailer) // announced, as over HTTP/1.1
	}
	w.w.WriteHeader(code)
}

// WriteInterim sends a 1xx answer with fields h alone: the h2 server
// sends the handler's header map with it, so what that map held for the final
// answer is set aside meanwhile (a 1xx is rare: the copy is too).
func (w *streamWriter) WriteInterim(code int, h http.Header) {
	if w.wrote || code <= http.StatusSwitchingProtocols || code >= 200 {
		return
	}
	hh := w.w.Header()
	final := maps.Clone(hh)
	clear(hh)
	maps.Copy(hh, h)
	w.w.WriteHeader(code)
	clear(hh)
	maps.Copy(hh, final)
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.aborted {
		return 0, ErrClientWrite
	}
	if w.buffered+len(p) < h2Chunk {
		w.buffered += len(p)
		n, err := w.w.Write(p)
		return n, writeError(err)
	}
	w.buffered = h2Chunk
	w.deadline()
	defer w.done()
	n, err := w.w.Write(p)
	return n, writeError(err)
}

// writeError is the h2 server's write error as the Writer's: a body longer than
// declared is ErrBodyTooLong, anything else the client's.
func writeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, http.ErrContentLength):
		return ErrBodyTooLong
	}
	return ErrClientWrite
}

// Flush sends what is buffered, within send.
func (w *streamWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.deadline()
	w.rc.FlushError()
	w.done()
	w.buffered = 0
}

// Abort cuts the answer short: what was written goes out first, as over
// HTTP/1.1, so that the client gets the head and the part of the body
// the access log counts, then the stream's reset.
func (w *streamWriter) Abort() {
	if w.wrote && !w.aborted {
		w.Flush()
	}
	w.aborted = true
}

// end completes the answer: trailers, and the deadline of what the h2
// server still holds of it, which it writes after the handler returns,
// under flow control: a client that grants no window would hold the
// stream for ever. A stream nothing was written for (its client is gone)
// is reset.
func (w *streamWriter) end() {
	if !w.wrote {
		w.aborted = true
	}
	if w.aborted {
		return
	}
	if w.trailer != nil {
		h := w.w.Header()
		for k, vs := range *w.trailer {
			if len(vs) == 0 {
				// Announced and left out: the h2 server takes an
				// announced name's value from the header map, which
				// holds the head's fields (sent already), not trailers.
				delete(h, k)
				continue
			}
			h[http.TrailerPrefix+k] = vs
		}
	}
	w.deadline()
}

// deadline gives the next write send to reach the client: a write still
// waiting for the client's window then fails and the stream is reset. It
// is cleared again after the write (done), so that a stream that is only
// quiet (server-sent events, a long poll) outlives send, as an HTTP/1.1
// answer does.
func (w *streamWriter) deadline() { w.rc.SetWriteDeadline(time.Now().Add(w.send)) }

func (w *streamWriter) done() { w.rc.SetWriteDeadline(time.Time{}) }

// timedBody gives each read of a stream's request body d to return: a
// client that trickles its upload holds an app's connection no longer.
// The deadline is a timer that ends the body when it fires, read pending
// or not, so it is cleared after every read: a handler's pause between
// reads is not the client's fault.
type timedBody struct {
	io.ReadCloser
	rc streamControl
	d  time.Duration
}

func (b *timedBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	b.rc.SetReadDeadline(time.Time{})
	if se := (http2.StreamError{}); errors.As(err, &se) {
		// The client reset its stream (the h2 server's body reads say
		// so with the reset's code; a reset of the server's own says
		// h2: stream reset), whatever the code: the body was cut short
		// by a client that went away, as a closed HTTP/1.1
		// connection's is, not malformed.
		err = fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, err)
	}
	return n, err
}
