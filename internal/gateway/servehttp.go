package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/http1"
)

// ServeHTTP serves a request net/http read (the front hands it the
// unusual ones): routes it, forwards it through ReverseProxy, logs it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := getState()
	defer putState(st)
	g.peer(st, clientIP(r.RemoteAddr), r.Header)
	g.name(st, r.Header.Get("X-Request-Id"))
	rw := &responseWriter{ResponseWriter: w, requestID: st.requestID}
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	st.ctx = r.Context()
	defer func() {
		// ReverseProxy aborts a response whose body broke after the
		// headers went out by panicking with http.ErrAbortHandler; the
		// request must still be logged (response_truncated) before
		// net/http closes the client's connection.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				g.finish(rw.status, rw.bytes, r, st, start)
			}
			panic(v)
		}
	}()
	if a := g.routeHTTP(rw, r, st); a != nil {
		a.rp.ServeHTTP(rw, r)
		if st.fail != nil && st.fail.Cause == cause.ClientClosed && rw.status == 0 {
			// Nothing was written for a client that is gone or whose
			// request body broke; returning would make net/http answer
			// 200. Abort the connection instead (logged by the recover).
			panic(http.ErrAbortHandler)
		}
	}
	g.finish(rw.status, rw.bytes, r, st, start)
}

// routeHTTP routes r and applies the app's body limit; nil once the client
// has been answered.
func (g *Gateway) routeHTTP(rw *responseWriter, r *http.Request, st *reqState) *appProxy {
	if fail := requestLine(r); fail != nil {
		g.fail(rw, r, st, fail)
		return nil
	}
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI() // absolute-form: its path and query
	}
	a, cleaned, fail := g.route(r.Host, r.URL.Path, target, st)
	if fail != nil {
		g.fail(rw, r, st, fail)
		return nil
	}
	if cleaned {
		u := *r.URL
		u.Path, u.RawPath = st.cleanPath, ""
		r.URL = &u
	}
	if fail := a.limitBody(r, rw, st); fail != nil {
		g.fail(rw, r, st, fail)
		return nil
	}
	if fail := h2Length(r); fail != nil {
		g.fail(rw, r, st, fail)
		return nil
	}
	return a
}

// h2Length holds an HTTP/2 request to the length it declares (RFC 9113
// §8.1.1), where x/net does not: it reads the first of several
// content-length values, takes one it cannot parse as 0 and, on a stream
// HEADERS ended, ignores it. A content-length that is not one number,
// the one the request has, is refused. And ReverseProxy sends a request
// of length 0 at once, its body unread: DATA after it would only reset a
// stream the app was already sent. So a request that declares an empty
// body on an open stream waits for the stream's end before it goes.
func h2Length(r *http.Request) *cause.Error {
	if r.ProtoMajor != 2 {
		return nil
	}
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
		return cause.New(clientCause(err), "", "reading the request body: "+err.Error(), err)
	}
	r.Body = http.NoBody
	return nil
}

// requestLine refuses a request whose method, target or host the
// HTTP/1.1 request to the app cannot carry as they are. An HTTP/2
// request's come from its pseudo-header fields, which x/net checks for
// control characters only: a space there would make the line the app
// reads another request, or none it can parse (and the instance would be
// taken out of rotation for the client's request). A fragment is refused
// as the front refuses it over HTTP/1.1; so is an HTTP/2 request without
// :authority or Host (RFC 9113 §8.3.1), which would otherwise reach the
// app with the app's own name as its Host. (HTTP/1.0 needs no Host.)
func requestLine(r *http.Request) *cause.Error {
	switch {
	case !http1.ValidToken(r.Method):
		return cause.New(cause.BadRequest, "", "the method is not a token", nil)
	case !http1.ValidTarget(r.RequestURI):
		return cause.New(cause.BadRequest, "", "the request target holds white space, a control character or '#'", nil)
	case r.Host == "" && r.ProtoMajor == 2:
		return cause.New(cause.BadRequest, "", "no :authority or Host", nil)
	}
	return nil
}

// rewrite prepares the outgoing request: the member is chosen per attempt
// in RoundTrip, which sets the URL's host.
func rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = st.app.name
	pr.Out.Host = pr.In.Host
	forwardedHTTP(pr, st)
	pr.Out.Header.Set("X-Request-Id", st.requestID)
	for k := range pr.Out.Header {
		if strings.IndexByte(k, '_') >= 0 {
			// As the front drops them (see http1.RequestHead): one could
			// pass for a header gatehouse sets.
			delete(pr.Out.Header, k)
		}
	}
}

// errorHandler is ReverseProxy's: it answers for a failed forward.
func (g *Gateway) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if st.upgrade != nil {
		// ReverseProxy refused the app's 101 (a switch nobody asked for,
		// another protocol) and leaves the body, which holds the member
		// and the connection, to us.
		st.upgrade.Close()
	}
	g.fail(w, r, st, err)
}

// clientFault reports whether c is the client's fault, after which the
// connection is not reused: its request was not read to its end.
func clientFault(c cause.Cause) bool {
	switch c {
	case cause.BadRequest, cause.ClientTimeout, cause.RequestTooLarge, cause.HeadersTooLarge, cause.UnsupportedProtocol:
		return true
	}
	return false
}

// responseWriter records what was sent to the client, and gives the
// final answer its X-Request-Id (requestID, when set): once, whatever the
// app echoed, and set as the head is written, since ReverseProxy clears
// the header map after passing on a 1xx.
type responseWriter struct {
	http.ResponseWriter
	requestID string
	status    int
	bytes     int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.requestID != "" {
			w.Header()["X-Request-Id"] = []string{w.requestID}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack, which
// streaming and WebSocket upgrades need.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// copyBuffers lends response copy buffers: without a BufferPool
// ReverseProxy allocates 32 KiB for every response.
var copyBuffers = &bufferPool{size: 32 << 10}

// smallCopyBuffers copy bodies of known length up to their size: most
// answers are small, and a 32 KiB buffer for each in flight was a tenth
// of the heap under load.
var smallCopyBuffers = &bufferPool{size: 4 << 10}

type bufferPool struct {
	p    sync.Pool
	size int
}

type copyBuffer struct{ b []byte }

func (bp *bufferPool) Get() []byte {
	if c, ok := bp.p.Get().(*copyBuffer); ok {
		b := c.b
		c.b = nil
		bufHolders.Put(c)
		return b
	}
	return make([]byte, bp.size)
}

// Put keeps the buffer; its holder comes from a second pool so that
// putting one back does not allocate.
func (bp *bufferPool) Put(b []byte) {
	c, _ := bufHolders.Get().(*copyBuffer)
	if c == nil {
		c = new(copyBuffer)
	}
	c.b = b
	bp.p.Put(c)
}

var bufHolders sync.Pool
