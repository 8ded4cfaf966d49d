package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/compress"
	"github.com/gatehouse/gatehouse/internal/edge"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/http1"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/routing"
	"github.com/gatehouse/gatehouse/internal/spool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Serve serves one exchange, whatever protocol it came in: admits it
// (the front's refusals, routing, limits, the upgrade it asks for),
// forwards it (forward.go), answers with the app's response or tunnels
// the protocol the app switched to (tunnel.go), and logs it (finish).
func (g *Gateway) Serve(x *front.Exchange) {
	start := time.Now()
	st := getState()
	defer putState(st)
	st.start = start
	r := x.Req
	st.x = x
	g.peer(st, x, r.Header)
	g.name(st, x.RequestID)
	x.W.SetRequestID(st.requestID)
	if g.tracer != nil {
		g.startTrace(st, r, start)
	}
	rw := &st.rw
	*rw = responseWriter{ResponseWriter: x.W}
	if a := g.admit(x, rw, st); a != nil {
		if st.edge != nil && st.edge.Static != nil {
			g.serveStatic(x, rw, st)
		} else {
			g.forwardAndAnswer(x, a, rw, st, start)
		}
	}
	rw.end()
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

// lateCheck is how long a request may take before the client is checked
// for having left, once, before its answer is written. Quicker requests
// skip the syscall; a client gone within them is found by the write, or
// logged as answered. Under load most requests queue for a millisecond
// or more, so a bound that low put a syscall on nearly every one; a
// client that leaves within 50 ms is rare, and longer requests are still
// checked before their answer (and every 250 ms while they wait for
// the app: upstream's clientCheck).
const lateCheck = 50 * time.Millisecond

var accessEntries = sync.Pool{New: func() any { return new(telemetry.AccessEntry) }}

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
	if fail == nil && st.edge != nil {
		var answered bool
		if answered, fail = g.admitEdge(x, rw, st, st.edge); answered {
			return nil
		}
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

// route finds the app for host and target (the request's origin-form
// target) and notes in st what is sent on: the target as it came, or its
// path cleaned of dot segments, which is also what the route is chosen by
// (so "/public/../admin" is routed as "/admin", the path the app will
// serve). cleaned: st.cleanPath holds the decoded clean path. A path whose
// meaning is ambiguous is refused; a path no route takes gets no_route.
func (g *Gateway) route(host, path, target string, st *reqState) (a *appProxy, cleaned bool, fail *cause.Error) {
	rawPath, query, hasQuery := strings.Cut(target, "?")
	clean, changed, err := http1.CleanPath(rawPath)
	if err != nil {
		return nil, false, cause.New(cause.BadRequest, "", err.Error(), err)
	}
	st.requestURI = target
	if changed {
		if path, err = url.PathUnescape(clean); err != nil {
			return nil, false, cause.New(cause.BadRequest, "", "malformed path escape", err)
		}
		st.cleanPath = path
		st.requestURI = clean
		if hasQuery {
			st.requestURI += "?" + query
		}
	}
	rt := g.router.Load().Match(host, path)
	if rt == nil {
		return nil, false, cause.New(cause.NoRoute, "", "no route for "+host+path, nil)
	}
	a = rt.Value.app
	st.app, st.edge, st.route = a, rt.Value.edge, rt
	a.pool.TouchAt(st.start)
	return a, changed, nil
}

// limitBody applies the app's request body limits: a body declared larger
// is refused before anything is sent, one of unknown length is cut at the
// limit as it streams, and each read waits at most the app's body_timeout.
func (a *appProxy) limitBody(r *http.Request, w http.ResponseWriter, st *reqState) *cause.Error {
	l := a.cfg.Load().Limits
	if d := l.BodyTimeout.D(); d > 0 {
		st.x.SetBodyTimeout(d)
	}
	limit := int64(l.RequestBody)
	switch {
	case limit <= 0 || r.Body == nil || r.Body == http.NoBody:
	case r.ContentLength > limit:
		return cause.Errorf(cause.RequestTooLarge, "", nil, "request body of %d bytes is larger than limits.request_body (%d)", r.ContentLength, limit)
	case r.ContentLength < 0:
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return nil
}

// router maps host and path prefix to an app and the route's rules (see
// routing.Table.Match for which route a request takes).
type router = routing.Table[target]

// route is one of the router's routes.
type route = routing.Route[target]

// target is where a route leads.
type target struct {
	app *appProxy
	// edge is the route's rules; nil when it only routes.
	edge *edge.Route
}

// closeRouter lets go of what the routes' rules hold open; nil closes
// nothing.
func closeRouter(r *router) {
	if r != nil {
		closeRoutes(r.Routes(), nil)
	}
}

// closeRoutes lets go of what the rules of routes hold open, but those
// of kept.
func closeRoutes(routes []route, kept map[*edge.Route]bool) {
	for _, rt := range routes {
		if e := rt.Value.edge; e != nil && !kept[e] {
			e.Close()
		}
	}
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

// finish writes the access log entry. The entry of a request whose
// instance's process may have died under it waits for the exit, apart
// from the answer, which has gone (lateExits).
func (g *Gateway) finish(status int, bytes int64, r *http.Request, st *reqState, start time.Time) {
	if g.access == nil && g.observe == nil && st.dying == nil && st.span == nil {
		return
	}
	e := accessEntries.Get().(*telemetry.AccessEntry)
	defer accessEntries.Put(e)
	*e = telemetry.AccessEntry{
		Time: start, RequestID: st.requestID, Instance: st.instance, Method: r.Method, Host: r.Host,
		Path: r.URL.Path, Status: status, Bytes: bytes, Duration: time.Since(start), Upstream: st.upstream,
		Held: st.held, Attempts: st.attempts, ConnReused: st.reused, Client: st.client, RetriedCauses: st.retried,
		AppPath: st.appPath, Rule: st.ask.Rule, User: st.ask.User, Encoding: st.rw.encName, TraceID: st.traceID,
	}
	if e.TraceID == "" {
		e.TraceID = clientTraceID(r.Header)
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
	late := false
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
		late = st.dying != nil
	case st.truncated:
		e.Cause = string(cause.ResponseTruncated)
	case status >= 500:
		e.Cause = string(cause.AppError)
	}
	if st.span != nil {
		g.endTrace(st, r, e)
	}
	if late {
		g.late.add(e, st.dying, st.dyingPID)
		return
	}
	g.emit(e)
}

// emit writes a finished request's entry to the access log and shows it
// to the observer.
func (g *Gateway) emit(e *telemetry.AccessEntry) {
	if g.access != nil {
		g.access.Log(e)
	}
	if g.observe != nil {
		g.observe(e)
	}
}

func clientIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// responseWriter records what was sent to the client: the status and
// how many bytes of body.
// On a route with edge rules it also applies them to the head as it is
// written, and compresses the body (see edge.go).
type responseWriter struct {
	front.ResponseWriter
	status int
	bytes  int64
	// edge is the route's rules (nil: none), ask what they know of the
	// request.
	edge *edge.Route
	ask  *edge.Ask
	// enc compresses the body, with encName; nil: sent as written.
	enc     *compress.Writer
	encName string
	// plainLen is the Content-Length the answer declared before it was
	// encoded (-1: none), plainIn what has gone into the encoder: the
	// front cannot hold an encoded body to a length it no longer sees.
	plainLen, plainIn int64
}

func (w *responseWriter) WriteHeader(code int) {
	switch {
	case w.status == 0 && code >= 200:
		w.status = code
		if w.edge != nil {
			w.edge.EditResponse(w.ResponseWriter.Header(), w.ask)
			w.startEncoding(code)
		}
	case code == http.StatusSwitchingProtocols && w.edge != nil:
		// The app's answer to an upgrade is its last head: the route's
		// header rules (and forward_auth's cookie) go on it as on any
		// answer. It has no body to encode.
		w.edge.EditResponse(w.ResponseWriter.Header(), w.ask)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		n, err := w.enc.Write(b)
		w.plainIn += int64(n)
		return n, err
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

var (
	allowed    = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
	zeroLength = []string{"0"}
)

// reqState is what the gateway learns about one request across its
// attempts. It is pooled: the hot path allocates none per request. What
// it keeps across uses (storage) is outside reqFields, which putState
// clears in place: a cleared copy built on the stack would be a frame of
// kilobytes, which grows a stream goroutine's stack as its request ends.
type reqState struct {
	reqFields

	// ids is the block request ids are cut from (see requestIDs.next).
	ids []byte

	// try is the exchange with the current member; its response storage
	// is kept.
	try upstream.Attempt

	// reqBody holds the request body read ahead of the app (see
	// prepareBody), answer the app's answer read ahead of the client
	// (see holdAnswer); their chunk lists are kept.
	reqBody spool.Spool
	answer  spool.Spool
}

// reqFields are a request's own fields of its reqState.
type reqFields struct {
	// start is when Serve began: the request's one reading of the clock
	// before it is forwarded.
	start time.Time

	app *appProxy
	// route is the route the request took (nil: none yet, or none
	// matched).
	route *route
	// edge is the route's rules (nil: none), ask what they know of the
	// request, appPath the path the app is sent when they changed it.
	edge    *edge.Route
	ask     edge.Ask
	appPath string

	requestID string
	// requestURI is the target sent to the app: the client's origin-form
	// target unchanged, or its path cleaned of dot segments.
	requestURI string
	// cleanPath is the decoded path routed by, when dot segments were
	// removed from the client's.
	cleanPath string
	// trusted: the peer is a trusted proxy, whose X-Forwarded-* are kept.
	trusted bool
	// client is the client's address a trusted peer's X-Forwarded-For
	// names; "" when it is the peer's own (see peer).
	client string

	// x is the exchange the request came in.
	x *front.Exchange

	// pin is the member the client's affinity cookie names, if any;
	// pinPlain and pinSameSite the cookies' values as sent ("" if not).
	pin         *pool.Member
	pinPlain    string
	pinSameSite string

	attempts int
	instance string
	tried    []*pool.Member
	triedBuf [4]*pool.Member
	// sentAt[i] is when the attempt on tried[i] began.
	sentAt    []time.Time
	sentPID   int // the process the last attempt was sent to
	sentAtBuf [4]time.Time
	retried   []string
	retryBuf  [4]string
	// cutBy are the members that cut an attempt off (upstream_reset),
	// which its retries are not sent to.
	cutBy    []*pool.Member
	reused   bool
	upstream time.Duration
	// answeredAt is when the last attempt returned.
	answeredAt time.Time
	held       time.Duration

	// fail is the final gateway failure, when gatehouse answered.
	fail *cause.Error
	// dying is the member whose process (dyingPID) may have died under
	// the failed attempt, its exit not yet recorded: the access entry
	// waits for it (see attemptError).
	dying    *pool.Member
	dyingPID int
	// truncated: the app's body ended early.
	truncated bool
	// upgraded: the app switched protocols (101), so the exchange went on
	// as a tunnel.
	upgraded bool

	// span is the request's span, traceCtx the context that carries it,
	// attemptSpan the span of the attempt whose answer is being copied;
	// nil when tracing is off. traceID is the request's trace id, from
	// its span or, with tracing off, its client's traceparent.
	span        trace.Span
	traceCtx    context.Context
	attemptSpan trace.Span
	traceID     string

	// rw records what the answer was.
	rw responseWriter
	// body is the response body of a plain answer (see newResponseBody).
	body responseBody

	// heldAnswer reads the app's answer held in reqState.answer (see
	// holdAnswer).
	heldAnswer heldBody
}

var statePool = sync.Pool{New: func() any { return &reqState{} }}

func getState() *reqState {
	st := statePool.Get().(*reqState)
	st.tried = st.triedBuf[:0]
	st.sentAt = st.sentAtBuf[:0]
	st.retried = st.retryBuf[:0]
	return st
}

func putState(st *reqState) {
	st.reqBody.Close()
	st.answer.Close()
	st.try.Reset()
	st.reqFields = reqFields{}
	statePool.Put(st)
}

// Gone reports whether the request's client went away.
func (st *reqState) Gone() bool { return st.x.Gone() }

// Interim passes the app's 1xx answer on to the client.
func (st *reqState) Interim(code int, h http.Header) { st.x.W.WriteInterim(code, h) }

// watch starts watching the client before the request may wait long.
func (st *reqState) watch() { st.x.Watch() }

// requestIDs makes request ids unique across restarts of gatehouse: a
// random per-process prefix and a counter.
type requestIDs struct {
	prefix []byte
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	rand.Read(b[:])
	p := make([]byte, 0, 32)
	p = hex.AppendEncode(p, b[:])
	return &requestIDs{prefix: append(p, '-')}
}

// next returns a new id, cut from *slab, which it replaces when it is
// full. An id's bytes are never written again once it is made: the slab
// is only appended to, and a full one is left to the ids that refer to
// it (and the collector) rather than reused. So the string may outlive
// the request (an access entry, an event) like any other.
func (g *requestIDs) next(slab *[]byte) string {
	b := *slab
	if cap(b)-len(b) < maxIDLen {
		b = make([]byte, 0, idSlabSize)
	}
	start := len(b)
	b = append(b, g.prefix...)
	b = appendBase36(b, g.n.Add(1))
	*slab = b
	return unsafe.String(&b[start], len(b)-start)
}

// appendBase36 appends n in base 36, as strconv.AppendUint(b, n, 36)
// does, in a frame of a few words: strconv's 65-byte buffer was where a
// stream goroutine's stack overflowed and was copied, on every stream.
func appendBase36(b []byte, n uint64) []byte {
	digits := 1
	for m := n / 36; m > 0; m /= 36 {
		digits++
	}
	start := len(b)
	for range digits {
		b = append(b, 0)
	}
	for i := start + digits - 1; i >= start; i-- {
		b[i] = base36[n%36]
		n /= 36
	}
	return b
}

const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"

// idSlabSize is the size of the blocks ids are cut from: one allocation
// for about forty requests' ids.
const idSlabSize = 1024

// maxIDLen bounds an id's length: the 13-byte prefix and a base-36
// uint64 (13 digits at most).
const maxIDLen = 13 + 13

var _ upstream.Client = (*reqState)(nil)
