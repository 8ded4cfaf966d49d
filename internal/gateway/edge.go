package gateway

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/compress"
	"github.com/gatehouse/gatehouse/internal/edge"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/spool"
)

// The edge rules of a route (package edge) sit on the request path
// between routing and forwarding: admitEdge after the route is chosen,
// the app's target and header fields in outbound, a static route in
// place of the forward, and the answer's header fields and compression
// in responseWriter, which every answer goes through.

// admitEdge applies the route's rules before the app is asked. answered:
// a rule answered the client (a redirect, the auth service's denial).
func (g *Gateway) admitEdge(x *front.Exchange, rw *responseWriter, st *reqState, e *edge.Route) (answered bool, fail *cause.Error) {
	q := &st.ask
	q.Req = x.Req
	q.ClientIP = st.client
	if q.ClientIP == "" {
		q.ClientIP = x.IP
	}
	q.Scheme = forwardedProto(x, st)
	q.Host = forwardedHost(x, st)
	q.RequestID = st.requestID
	q.RawPath, q.Query, _ = strings.Cut(st.requestURI, "?")
	rw.edge, rw.ask = e, q
	if answered, fail = e.Admit(x.Req.Context(), rw, q); answered || fail != nil {
		return answered, fail
	}
	if e.RewritesPath() {
		if p, changed := e.Target(q); changed {
			st.appPath = p
			st.requestURI = p
			if q.Query != "" || strings.HasSuffix(x.Req.RequestURI, "?") {
				st.requestURI += "?" + q.Query
			}
		}
	}
	return false, nil
}

// serveStatic answers from the route's directory instead of the app.
func (g *Gateway) serveStatic(x *front.Exchange, rw *responseWriter, st *reqState) {
	p := st.ask.RawPath
	if st.appPath != "" {
		p = st.appPath
	}
	if dec, err := url.PathUnescape(p); err == nil {
		p = dec
	}
	// The app is sent "/" for a prefix stripped to nothing (/assets on
	// the route /assets/); static takes "" for that, the root without its
	// slash, and redirects it to the slash form, so that the index's
	// relative links resolve beneath the prefix.
	if p == "/" && !strings.HasSuffix(x.Req.URL.Path, "/") {
		p = ""
	}
	st.ask.Rule = "static"
	res := st.edge.Static.Serve(rw, x.Req, p)
	if res.Encoding != "" {
		rw.encName = res.Encoding
	}
}

// startEncoding decides, as the head is written, whether the answer is
// compressed, and if so edits its header fields and starts the encoder.
// A 304 or 206 is not, but says what the 200 it stands for would say.
func (w *responseWriter) startEncoding(code int) {
	c := w.edge.Compress
	if c == nil {
		return
	}
	h := w.ResponseWriter.Header()
	r := w.ask.Req
	switch code {
	case http.StatusNotModified:
		// A static route types a file by its path's extension, which then
		// tells the 304's type; an app's path says nothing certain of it
		// (a .php page is HTML).
		var typedBy string
		if w.edge.Static != nil {
			typedBy = r.URL.Path
		}
		c.PrepareNotModified(h, typedBy, r.Header["Accept-Encoding"], r.Header["If-None-Match"])
		return
	case http.StatusPartialContent:
		c.PreparePartial(h)
		return
	}
	length := int64(-1)
	if cl := h["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil {
			length = n
		}
	}
	if !c.Applies(code, r.Method, h, length) {
		return
	}
	compress.AddVary(h)
	enc := c.Negotiate(r.Header["Accept-Encoding"])
	if enc == "" {
		return
	}
	compress.Prepare(h, enc)
	w.encName = enc
	if r.Method != http.MethodHead { // a HEAD's head says what a GET's would; it has no body to encode
		w.enc = c.NewWriter(enc, (*sentBody)(w))
		w.plainLen, w.plainIn = length, 0
	}
}

// sentBody is the writer under an encoder: it counts what reaches the
// client.
type sentBody responseWriter

func (s *sentBody) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *sentBody) Flush() { s.ResponseWriter.Flush() }

// Flush sends what has been written, through the encoder if there is one.
func (w *responseWriter) Flush() {
	if w.enc != nil {
		w.enc.Flush()
		return
	}
	w.ResponseWriter.Flush()
}

// Abort cuts the answer short (see front.ResponseWriter): an encoder's
// stream is left unfinished.
func (w *responseWriter) Abort() {
	if w.enc != nil {
		w.enc.Release()
		w.enc = nil
	}
	w.ResponseWriter.Abort()
}

// end finishes an encoded answer's stream. One shorter than the length
// it declared before encoding (a static file that shrank while it was
// sent) is cut short instead, as the front cuts a plain one: finished, it
// would look whole to the client and to caches.
func (w *responseWriter) end() {
	if w.enc != nil && w.plainLen >= 0 && w.plainIn < w.plainLen {
		w.Abort()
		return
	}
	if w.enc != nil {
		w.enc.Close()
		w.enc.Release()
		w.enc = nil
	}
}

var _ io.Writer = (*sentBody)(nil)

// ReadFrom writes a body read from r (a static file): through the front
// writer's own ReadFrom, which sends a file by sendfile on a plain
// connection, unless the body is being compressed. Like that one, it
// stops at the Content-Length declared (before encoding, for a
// compressed body): a file that grew since it was stat'ed would otherwise
// overrun it (the HTTP/2 writer refuses the write that does, and with it
// the end of the body).
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc == nil {
		if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
			n, err := rf.ReadFrom(r)
			w.bytes += n
			return n, err
		}
		if cl := w.ResponseWriter.Header()["Content-Length"]; len(cl) == 1 {
			if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil {
				r = &io.LimitedReader{R: r, N: max(n-w.bytes, 0)}
			}
		}
	} else if w.plainLen >= 0 {
		r = &io.LimitedReader{R: r, N: max(w.plainLen-w.plainIn, 0)}
	}
	buf := spool.Buffer(32 << 10)
	defer spool.Release(buf)
	return io.CopyBuffer(struct{ io.Writer }{w}, r, buf)
}
