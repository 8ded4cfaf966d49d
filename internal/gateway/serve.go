package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/http1"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/trust"
)

// Serve serves one exchange, whatever protocol it came in: admits it
// (the front's refusals, routing, limits, the upgrade it asks for),
// forwards it (forward.go), answers with the app's response or tunnels
// the protocol the app switched to (tunnel.go), and logs it (finish).
func (g *Gateway) Serve(x *front.Exchange) {
	start := time.Now()
	st := getState()
	defer putState(st)
	r := x.Req
	st.x = x
	g.peer(st, x, r.Header)
	g.name(st, x.RequestID)
	x.W.SetRequestID(st.requestID)
	rw := &st.rw
	*rw = responseWriter{ResponseWriter: x.W}
	if a := g.admit(x, rw, st); a != nil {
		g.forwardAndAnswer(x, a, rw, st, start)
	}
	// Logged before the last flush, as net/http's ServeHTTP is: a client
	// that has its answer finds the request in the access log.
	g.finish(rw.status, rw.bytes, r, st, start)
}

// The peer is who gatehouse got the connection from: the socket's peer,
// or the client a PROXY protocol header named. A peer that is not in
// trusted_proxies (every peer, by default) is the client: what it sent
// in X-Forwarded-* is replaced with what gatehouse sees. A trusted peer
// is a proxy in front: its X-Forwarded-For is kept and the peer
// appended, its X-Forwarded-Proto and -Host are kept when they are plain
// (see trust.ValidProto, trust.ValidHost), and the client (in the access
// log) is the one its chain names, read strictly from right to left
// (trust.Proxies.Client).
//
// peer notes whether the exchange's peer (x.IP) is a trusted proxy and,
// if so, the client its X-Forwarded-For names. With no trusted_proxies it
// does nothing: the access log's client is the peer. Nor is a peer
// trusted whose PROXY header said it does not know the client.
func (g *Gateway) peer(st *reqState, x *front.Exchange, h http.Header) {
	if g.trust == nil || x.ClientUnknown || !g.trust.Peer(x.IP) {
		return
	}
	st.trusted = true
	st.client = g.trust.Client(h["X-Forwarded-For"], x.IP)
}

// name gives the request its id: the client's X-Request-Id, else a new one.
func (g *Gateway) name(st *reqState, clientID string) {
	st.requestID = clientID
	if st.requestID == "" || len(st.requestID) > 200 {
		st.requestID = g.ids.next(&st.ids)
	}
}

// forwardAndAnswer sends the request to the app and answers the client
// with what came back.
func (g *Gateway) forwardAndAnswer(x *front.Exchange, a *appProxy, rw *responseWriter, st *reqState, start time.Time) {
	r := x.Req
	outbound(x, st)
	resp, err := a.forward(r, st)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		if switchedTo(resp.Header, x.Upgrade) {
			g.tunnel(x, a, rw, st, resp)
			return
		}
		st.upgraded = false
		resp.Body.Close()
		err = errUnaskedSwitch
	}
	if err == nil && st.answeredAt.Sub(start) > lateCheck && x.Gone() {
		// The client left while the app worked: its answer is not
		// written, and the request is logged client_closed. (A failure is
		// still classified by fail, so that finish can tell an upstream
		// timeout from a client that gave up.)
		resp.Body.Close()
		return
	}
	if err != nil {
		g.fail(rw, r, st, err)
		return
	}
	copyResponse(x, rw, resp)
}

// errUnaskedSwitch: the app answered 101 to a request that asked for no
// upgrade, or switched to another protocol than the one asked for.
var errUnaskedSwitch = errors.New("the app switched protocols when no such upgrade was requested")

// switchedTo reports whether the app's 101 switched to a protocol the
// client asked for (its Upgrade field, asked).
func switchedTo(h http.Header, asked string) bool {
	to := http1.TrimOWS(h.Get("Upgrade"))
	if asked == "" || to == "" {
		return false
	}
	for p := range strings.SplitSeq(asked, ",") {
		if http1.EqualFold(http1.TrimOWS(p), to) {
			return true
		}
	}
	return false
}

// lateCheck is how long a request may take before the client is checked
// for having left, once, before its answer is written. Quicker requests
// skip the syscall; a client gone within them is found by the write.
const lateCheck = time.Millisecond

// outbound turns the client's request into the app's: hop-by-hop fields
// removed (TE: trailers kept), Forwarded and Expect removed (the front
// answers 100-continue itself), X-Forwarded-* set (see forwarded), the
// request id set, and an admitted upgrade asked for again. The header map
// is the exchange's, reused.
func outbound(x *front.Exchange, st *reqState) {
	h := x.Req.Header
	for _, k := range x.ConnTokens {
		delete(h, textproto.CanonicalMIMEHeaderKey(k))
	}
	trailers := false
	for _, v := range h["Te"] {
		trailers = trailers || http1.HasToken(v, "trailers")
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if trailers {
		h["Te"] = x.One("trailers")
	}
	delete(h, "Forwarded")
	delete(h, "Expect")
	forwarded(x, st)
	h["X-Request-Id"] = x.One(st.requestID)
	if x.Upgrade != "" {
		h["Connection"] = x.One("Upgrade")
		h["Upgrade"] = x.One(x.Upgrade)
	}
}

// forwarded sets the X-Forwarded-* fields and X-Real-IP of the request
// to the app, in the exchange's header map, and drops the origin fields
// (originField) an untrusted client sent. The scheme is the connection's.
func forwarded(x *front.Exchange, st *reqState) {
	h := x.Req.Header
	proto := "http"
	if secureRequest(x.Req) {
		proto = "https"
	}
	if !st.trusted {
		for k := range h {
			if originField(k) {
				delete(h, k)
			}
		}
		h["X-Forwarded-For"] = x.One(x.IP)
		h["X-Forwarded-Host"] = x.One(x.Req.Host)
		h["X-Forwarded-Proto"] = x.One(proto)
		h["X-Real-Ip"] = h["X-Forwarded-For"]
		return
	}
	h["X-Real-Ip"] = x.One(x.IP)
	if st.client != "" {
		h["X-Real-Ip"] = x.One(st.client)
	}
	h["X-Forwarded-For"] = x.One(trust.AppendFor(h["X-Forwarded-For"], x.IP))
	if !trust.ValidHost(h["X-Forwarded-Host"]) {
		h["X-Forwarded-Host"] = x.One(x.Req.Host)
	}
	if !trust.ValidProto(h["X-Forwarded-Proto"]) {
		h["X-Forwarded-Proto"] = x.One(proto)
	}
}

// originField reports whether k is one of the fields through which
// frameworks learn where a request came from or how (Rack reads
// X-Forwarded-Ssl before X-Forwarded-Proto; ASP.NET behind ARR reads
// X-ARR-SSL): set by a client that is no trusted proxy, one would pass a
// plain-HTTP request for HTTPS, or the client for another address. A
// switch, not a map: most requests carry a few fields, and each is
// checked.
func originField(k string) bool {
	switch k {
	case "X-Forwarded-Ssl", "X-Forwarded-Port", "X-Forwarded-Scheme", "X-Url-Scheme", "Front-End-Https", "X-Arr-Ssl",
		"X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ip", "X-Forwarded-Prefix", "X-Original-Url",
		"X-Original-Host", "X-Rewrite-Url":
		return true
	}
	return false
}

// hopHeaders are the hop-by-hop headers a proxy does not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// copyResponse writes the app's response to the client: streamed
// responses (unknown length, event streams) are flushed after every read,
// others once at the end. A body that breaks is cut short on the client's
// side too (the connection closes), and classified by its reader.
func copyResponse(x *front.Exchange, rw *responseWriter, resp *http.Response) {
	defer resp.Body.Close()
	w := x.W
	removeHopByHop(resp.Header)
	w.UseHeader(resp.Header)
	if resp.ContentLength < 0 {
		// Only a chunked answer has trailers; a plain one is the pooled
		// request state's, which is gone when the writer ends.
		w.SetTrailer(&resp.Trailer)
	}
	rw.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0 || isEventStream(resp.Header)
	if stream {
		// The head goes out now: an event
		// stream's client must not wait for the first event to know it is
		// open. A client leaving the stream is watched for, and ends it
		// (see responseBody).
		w.Flush()
		x.Watch()
	}
	pool := copyBuffers
	if resp.ContentLength >= 0 && resp.ContentLength <= int64(smallCopyBuffers.size) {
		pool = smallCopyBuffers
	}
	buf := pool.Get()
	defer pool.Put(buf)
	for reads := 0; ; reads++ {
		if reads == 1 && !stream {
			// A body longer than one read may stall in the middle: from
			// now on a client leaving lets the instance go (streams were
			// watched from the start).
			x.Watch()
			if b, ok := resp.Body.(*responseBody); ok {
				b.watch(x.Req.Context())
			}
		}
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				if !errors.Is(werr, front.ErrClientWrite) {
					w.Abort()
				}
				return
			}
			if stream {
				w.Flush()
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			w.Abort()
			return
		}
	}
}

// removeHopByHop removes the hop-by-hop headers of a response, and those
// its Connection header names.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(sf))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}

// fail answers for a failed request. Every error of the forward is a
// *cause.Error; anything else (an app that switched protocols unasked)
// is classified as a bad response.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, st *reqState, err error) {
	var ce *cause.Error
	if !errors.As(err, &ce) {
		c := cause.Classify(cause.Attempt{Err: err, Progress: cause.Progress{GotConn: true, WroteRequest: true, GotFirstByte: true},
			ClientGone: r.Context().Err() != nil})
		ce = cause.New(c, st.instance, "", err)
	}
	st.fail = ce
	if clientFault(ce.Cause) {
		st.x.CloseAfter()
	}
	writeError(w, r, st.requestID, ce)
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

// finish writes the access log entry.
func (g *Gateway) finish(status int, bytes int64, r *http.Request, st *reqState, start time.Time) {
	if g.access == nil && g.observe == nil {
		return
	}
	e := accessEntries.Get().(*telemetry.AccessEntry)
	defer accessEntries.Put(e)
	*e = telemetry.AccessEntry{
		Time: start, RequestID: st.requestID, Instance: st.instance, Method: r.Method, Host: r.Host,
		Path: r.URL.Path, Status: status, Bytes: bytes, Duration: time.Since(start), Upstream: st.upstream,
		Held: st.held, Attempts: st.attempts, ConnReused: st.reused, Client: st.client, RetriedCauses: st.retried,
	}
	if e.Client == "" {
		e.Client = clientIP(r.RemoteAddr)
	}
	if st.app != nil {
		e.App = st.app.name
	}
	if st.upgraded && e.Status == 0 {
		e.Status = http.StatusSwitchingProtocols
	}
	switch {
	case r.Context().Err() != nil && (st.fail == nil || st.fail.Cause != cause.UpstreamTimeout && !clientFault(st.fail.Cause)):
		// (net/http ends the context on a failed read of the body too:
		// a body too slow is client_timeout, not a client gone.)
		e.Cause, e.Status = string(cause.ClientClosed), cause.StatusClientClosed
	case st.fail != nil:
		e.Cause, e.Detail = string(st.fail.Cause), st.fail.Detail
		if e.Status == 0 {
			e.Status = st.fail.Status()
		}
	case st.truncated:
		e.Cause = string(cause.ResponseTruncated)
	case status >= 500:
		e.Cause = string(cause.AppError)
	}
	if g.access != nil {
		g.access.Log(e)
	}
	if g.observe != nil {
		g.observe(e)
	}
}

var accessEntries = sync.Pool{New: func() any { return new(telemetry.AccessEntry) }}

func clientIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// responseWriter records what was sent to the client: the status and
// how many bytes of body.
type responseWriter struct {
	front.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
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
