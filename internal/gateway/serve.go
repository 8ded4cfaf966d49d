package gateway

import (
	"errors"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/http1"
)

// Serve serves one exchange, whatever protocol it came in: admits it
// (the front's refusals, routing, limits, the upgrade it asks for),
// forwards it (forward.go), answers with the app's response or tunnels
// the protocol the app switched to (answer.go), and logs it (finish).
func (g *Gateway) Serve(x *front.Exchange) {
	start := time.Now()
	st := getState()
	defer putState(st)
	r := x.Req
	st.x = x
	g.peer(st, x.IP, r.Header)
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

// admit decides whether the exchange goes to an app, and which: nil once
// the client has been answered (a request the front refused, OPTIONS *,
// no route, a body over the limit, an upgrade the app does not take).
func (g *Gateway) admit(x *front.Exchange, rw *responseWriter, st *reqState) *appProxy {
	r := x.Req
	switch {
	case x.Reject != nil:
		st.fail = x.Reject
		if !x.Answered {
			writeError(rw, r, st.requestID, x.Reject)
		}
		return nil
	case r.RequestURI == "*":
		answerOptions(rw)
		return nil
	}
	a, cleaned, fail := g.route(r.Host, r.URL.Path, r.RequestURI, st)
	if cleaned {
		r.URL.Path, r.URL.RawPath = st.cleanPath, ""
	}
	if fail == nil {
		fail = a.limitBody(r, rw, st)
	}
	if fail == nil && x.Upgrade != "" {
		fail = a.allowUpgrade(x.Upgrade)
	}
	if fail != nil {
		g.fail(rw, r, st, fail)
		return nil
	}
	return a
}

// answerOptions answers OPTIONS * (RFC 9110 §9.3.7), a question about
// the server, not any app's resource: what net/http answers.
func answerOptions(rw *responseWriter) {
	h := rw.Header()
	h["Allow"] = allowed
	h["Content-Length"] = zeroLength
	rw.WriteHeader(http.StatusOK)
}

var (
	allowed    = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
	zeroLength = []string{"0"}
)

// allowUpgrade refuses an upgrade to a protocol the app's upgrades: does
// not list; every protocol the client names must be listed.
func (a *appProxy) allowUpgrade(protos string) *cause.Error {
	cfg := a.cfg.Load()
	for p := range strings.SplitSeq(protos, ",") {
		if p = http1.TrimOWS(p); !cfg.AllowsUpgrade(p) {
			return cause.Errorf(cause.UpgradeRefused, "", nil, "the upgrade to %q is not forwarded to %s (its upgrades: %s)",
				p, a.name, strings.Join(cfg.Upgrades, ", "))
		}
	}
	return nil
}

// errUnaskedSwitch: the app answered 101 to a request that asked for no
// upgrade, or switched to another protocol than the one asked for.
var errUnaskedSwitch = errors.New("the app switched protocols when no such upgrade was requested")

// forwardAndAnswer sends the request to the app and answers the client
// with what came back.
func (g *Gateway) forwardAndAnswer(x *front.Exchange, a *appProxy, rw *responseWriter, st *reqState, start time.Time) {
	r := x.Req
	outbound(x, st)
	resp, err := a.forward(r, st)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		if switchedTo(resp.Header, x.Upgrade) {
			g.tunnel(x, a, rw, resp)
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

// hopHeaders are the hop-by-hop headers a proxy does not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

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
