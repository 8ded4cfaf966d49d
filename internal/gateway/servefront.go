package gateway

import (
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/http1"
)

// ServeFront serves a request the front read itself: routes it, forwards
// it, copies the answer, logs it. The outbound headers and the copy of the
// response are done in place, the way ReverseProxy with Rewrite does them
// (see outbound and copyResponse); the retry loop, the classifier and the
// error pages are the same code as for ServeHTTP.
func (g *Gateway) ServeFront(x *front.Exchange) {
	start := time.Now()
	st := getState()
	defer putState(st)
	r := x.Req
	st.x, st.ctx = x, r.Context()
	g.peer(st, x.IP, r.Header)
	g.name(st, x.RequestID)
	x.W.SetRequestID(st.requestID)
	rw := &st.rw
	*rw = responseWriter{ResponseWriter: x.W}
	switch {
	case x.Reject != nil:
		st.fail = x.Reject
		if !x.Answered {
			writeError(rw, r, st.requestID, x.Reject)
		}
	default:
		if a := g.routeFront(x, rw, st); a != nil {
			g.forwardFront(x, a, rw, st, start)
		}
	}
	// Logged before the last flush, as net/http's ServeHTTP is: a client
	// that has its answer finds the request in the access log.
	g.finish(rw.status, rw.bytes, r, st, start)
}

// routeFront routes the request and applies the app's body limit; nil once
// the client has been answered.
func (g *Gateway) routeFront(x *front.Exchange, rw *responseWriter, st *reqState) *appProxy {
	r := x.Req
	a, cleaned, fail := g.route(r.Host, r.URL.Path, r.RequestURI, st)
	if cleaned {
		r.URL.Path, r.URL.RawPath = st.cleanPath, ""
	}
	if fail == nil {
		fail = a.limitBody(r, rw, st)
	}
	if fail != nil {
		g.fail(rw, r, st, fail)
		return nil
	}
	return a
}

// errUnaskedSwitch: the app answered 101 to a request that asked for no
// upgrade (upgrades go to net/http).
var errUnaskedSwitch = errors.New("the app switched protocols when no upgrade was requested")

func (g *Gateway) forwardFront(x *front.Exchange, a *appProxy, rw *responseWriter, st *reqState, start time.Time) {
	r := x.Req
	outbound(x, st)
	resp, err := a.forward(r, st)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		st.upgraded = false
		st.upgrade.Close()
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

// lateCheck is how long a request may take before the client is checked
// for having left, once, before its answer is written. Quicker requests
// skip the syscall; a client gone within them is found by the write.
const lateCheck = time.Millisecond

// outbound turns the client's request into the app's, as rewrite does
// for ReverseProxy: hop-by-hop headers removed (TE: trailers kept),
// Forwarded removed, X-Forwarded-* set (see forwardedFront), and the
// request id set. The header map is the connection's, reused.
func outbound(x *front.Exchange, st *reqState) {
	h := x.Req.Header
	for _, k := range x.Head.ConnTokens {
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
	forwardedFront(x, st)
	h["X-Request-Id"] = x.One(st.requestID)
}

// hopHeaders are the hop-by-hop headers a proxy does not forward, the
// same list as ReverseProxy's.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

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
		// The head goes out now, as ReverseProxy sends it: an event
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

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}

// fail answers for a failed request. Every error of the forward is a
// *cause.Error; anything else came from ReverseProxy itself (a failed
// upgrade, a broken client) and is classified as a bad response.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, st *reqState, err error) {
	var ce *cause.Error
	if !errors.As(err, &ce) {
		c := cause.Classify(cause.Attempt{Err: err, Progress: cause.Progress{GotConn: true, WroteRequest: true, GotFirstByte: true},
			ClientGone: r.Context().Err() != nil})
		ce = cause.New(c, st.instance, "", err)
	}
	st.fail = ce
	if clientFault(ce.Cause) {
		switch {
		case st.x != nil:
			st.x.CloseAfter()
		case r.ProtoMajor == 1:
			w.Header().Set("Connection", "close")
		}
		// An HTTP/2 stream's fault is its own: the connection's framing
		// is intact, and x/net would take "Connection: close" as GOAWAY
		// for every stream on it.
	}
	writeError(w, r, st.requestID, ce)
}
