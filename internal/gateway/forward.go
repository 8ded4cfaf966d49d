package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/http1"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/spool"
	"github.com/gatehouse/gatehouse/internal/trust"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// forwardAndAnswer sends the request to the app and answers the client
// with what came back.
func (g *Gateway) forwardAndAnswer(x *front.Exchange, a *appProxy, rw *responseWriter, st *reqState, start time.Time) {
	r := x.Req
	outbound(x, st)
	resp, err := a.forward(r, st)
	// The app has had the request, or will not: a body read ahead of it
	// is let go now, not after an answer a slow client may take long over.
	st.reqBody.Close()
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
	a.holdAnswer(x, st, resp, int64(a.cfg.Load().Limits.ResponseBuffer))
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
	dropFields(h, notForwarded)
	if trailers {
		h["Te"] = x.One("trailers")
	}
	forwarded(x, st)
	h["X-Request-Id"] = x.One(st.requestID)
	if st.edge != nil {
		st.edge.EditRequest(h, &st.ask)
	}
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

// closedWhileIdle reports whether a reset of a request sent on a
// connection idle a second or more, before any answer, may have been the
// app's idle close crossing the request later than the classifier's
// window allows for (a busy machine wakes the reader late): not retried,
// since the app may have read it, but taken as a sign of the app's idle
// timeout, which costs at most some reuse if it was a crash.
func closedWhileIdle(c cause.Cause, try *upstream.Attempt) bool {
	return c == cause.UpstreamReset && try.Progress.Reused && !try.Progress.GotFirstByte && try.IdleTime >= time.Second
}

// forwardedProto is the scheme forwarded tells the app in
// X-Forwarded-Proto: a trusted proxy's when it is plain, else the
// connection's. A route's rules take it too ({scheme}, HSTS, the
// forward_auth question), so that behind a proxy that terminates TLS
// they see the request as the app and the browser do.
func forwardedProto(x *front.Exchange, st *reqState) string {
	if v := x.Req.Header["X-Forwarded-Proto"]; st.trusted && trust.ValidProto(v) {
		return v[0]
	}
	if secureRequest(x.Req) {
		return "https"
	}
	return "http"
}

// forwardedHost is the host forwarded tells the app in X-Forwarded-Host:
// a trusted proxy's when it names one host, else the request's. The
// forward_auth question takes it too, so that the auth service judges
// the host the browser asked for, as the app sees it.
func forwardedHost(x *front.Exchange, st *reqState) string {
	if v := x.Req.Header["X-Forwarded-Host"]; st.trusted && trust.ValidHost(v) {
		return v[0]
	}
	return x.Req.Host
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
		rw.Flush()
		x.Watch()
	}
	if h, ok := resp.Body.(*heldBody); ok && h.whole() {
		// Read whole from the app, which has its slot back: written as
		// held, without a copy.
		if _, err := h.s.WriteTo(rw); err != nil && !errors.Is(err, front.ErrClientWrite) {
			rw.Abort()
		}
		return
	}
	// Most answers are small, and a 32 KiB buffer for each in flight was
	// a tenth of the heap under load: one of known length up to 4 KiB
	// takes a 4 KiB one.
	size := 32 << 10
	if resp.ContentLength >= 0 {
		size = int(min(resp.ContentLength, int64(size)))
	}
	buf := spool.Buffer(size)
	defer spool.Release(buf)
	for reads := 0; ; reads++ {
		if reads == 1 && !stream {
			// A body longer than one read may stall in the middle: from
			// now on a client leaving lets the instance go (streams were
			// watched from the start).
			x.Watch()
			switch b := resp.Body.(type) {
			case *responseBody:
				b.watch(x.Req.Context())
			case *heldBody:
				b.watch(x.Req.Context())
			}
		}
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				if !errors.Is(werr, front.ErrClientWrite) {
					rw.Abort()
				}
				return
			}
			if stream {
				rw.Flush()
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			rw.Abort()
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
	dropFields(h, hopHeaders)
}

// dropFields deletes from h the fields names names. A head holds a
// handful of fields: a walk of them, when they are no more than the
// names, costs less than a delete of each name, which hashes it.
func dropFields(h http.Header, names []string) {
	if len(h) > len(names) {
		for _, k := range names {
			delete(h, k)
		}
		return
	}
	for k := range h {
		if slices.Contains(names, k) {
			delete(h, k)
		}
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}

// forward sends req to one of the app's members, trying another when an
// attempt fails in a way that is safe to retry, and holding the request
// while no member is ready. Every error it returns is a *cause.Error.
//
// An attempt the app never saw (connect_refused, connect_timeout,
// upstream_tls, stale_connection) is retried for any method. An attempt cut off after
// it was sent (upstream_reset) is retried only for an idempotent method
// or a request with Idempotency-Key (cause.Retry), only while the
// request is not a likely query of death (poisoned), and never on an
// instance that cut it off already. A request whose
// instance died under it alone (excused says no) is retried only on
// another instance ready at that moment, never held for a restart of the
// one it may have killed. When every instance died at once (killed from
// outside, or with other requests), the retry finds none ready and is
// held like any request (within hold_timeout and what is left of
// request_timeout) until a replacement is ready. What is known when the
// attempt fails decides (excused); the supervisor is waited on, for at
// most exitWait, only by a retry that finds no instance ready while
// nothing yet explains the death (holdJudged), and by a second reset
// that would fail the request as a query of death on deaths not yet
// recorded (poisonedOnceKnown). A POST the
// app already had is never retried: the app may have acted on it. All of
// it within max_attempts.
func (a *appProxy) forward(req *http.Request, st *reqState) (*http.Response, error) {
	cfg := a.cfg.Load()
	stripSessionCookie(req.Header)
	replay, err := prepareBody(req, st, int64(max(cfg.RetryBodyLimit, cfg.Limits.RequestBuffer)), a.buffers, a.disk)
	if err != nil {
		return nil, cause.New(clientCause(err), "", "reading the request body: "+err.Error(), err)
	}
	if cfg.Affinity {
		a.readPin(req.Header, cfg.AffinityCookie, st)
	}
	deadline := time.Time{}
	// readyOnly: the last attempt was cut off by a process that died of
	// it, alone, as far as is known: its retry goes to another instance
	// ready now, or nowhere, never waiting for the restart of the one it
	// killed. judging: nothing is known yet of that process's death; with
	// no instance ready, the retry is held until its exit tells
	// (holdJudged).
	var readyOnly func() *cause.Error
	var judging *pool.Member
	var judgingSent time.Time
	for {
		hold := cfg.HoldTimeout.D()
		if !deadline.IsZero() {
			// A retry waits for an instance only as long as the request
			// still has: past its deadline the attempt would fail at once
			// and blame the app with a 504.
			hold = min(hold, time.Until(deadline))
		}
		var m *pool.Member
		if readyOnly != nil {
			m = a.pool.PickExcept(st.tried, st.cutBy)
			if m == nil && judging != nil {
				var held time.Duration
				var own bool
				m, held, own, err = a.holdJudged(req.Context(), st, hold, judging, judgingSent)
				st.held += held
				if err != nil && !own {
					return nil, a.acquireError(req.Context(), err, hold)
				}
			}
			if m == nil {
				return nil, readyOnly()
			}
		} else {
			var held time.Duration
			m, held, err = a.acquire(req.Context(), st, hold)
			st.held += held
			if err != nil {
				return nil, a.acquireError(req.Context(), err, hold)
			}
		}
		if err := req.Context().Err(); err != nil {
			// The client left (an HTTP/2 stream reset as it was sent,
			// a rapid-reset flood's way): the app is not asked.
			m.Release()
			return nil, cause.New(cause.ClientClosed, "", "client went away before the request was sent", err)
		}
		now := time.Now() // one reading for the deadline, sentAt and the attempt's start
		if deadline.IsZero() {
			deadline = now.Add(cfg.RequestTimeout.D())
		}
		st.attempts++
		st.tried = append(st.tried, m)
		st.sentAt = append(st.sentAt, now)
		st.instance = m.ID
		st.sentPID = m.PID()
		var span trace.Span
		if st.span != nil {
			span = a.startAttempt(req, m, st, now)
		}
		resp, c, err := a.attempt(req, m, st, now, deadline, cfg)
		if span != nil {
			if err != nil {
				attemptFailed(span, c, err)
			} else {
				attemptAnswered(span, resp.StatusCode)
				st.attemptSpan = span
			}
		}
		if err == nil {
			if cfg.Affinity {
				a.setPin(resp.Header, m, cfg.AffinityCookie, st, secureRequest(req))
			}
			return resp, nil
		}
		if c == cause.UpstreamReset || c == cause.StaleConnection {
			// Evidence for poisoned: how many requests the member's
			// process cut off at once.
			m.CutOff()
		}
		if c == cause.ConnectRefused || c == cause.ConnectTimeout || c == cause.UpstreamReset || c == cause.UpstreamTLS {
			// Out of rotation until a probe, asked for now, passes: a retry
			// must not be sent into a process that is going down.
			m.Eject()
		}
		// Released after the ejection: under max_inflight Release hands
		// the slot to a held request if the member is still routable.
		m.Release()
		retry := c.Retry().Allows(req.Method, req.Header.Get("Idempotency-Key") != "") && replay.rewind(req) &&
			st.attempts < cfg.MaxAttempts && req.Context().Err() == nil && time.Now().Before(deadline)
		waited := false // for the exits poisoned lacked
		if retry {
			var p bool
			p, waited = a.poisonedOnceKnown(req.Context(), st, c, m, deadline)
			// (The client and the deadline again: the wait may have
			// outlasted either.)
			retry = !p && req.Context().Err() == nil && time.Now().Before(deadline)
		}
		if !retry {
			return nil, a.attemptError(st, c, m, st.sentPID, err)
		}
		readyOnly, judging = nil, nil
		if c == cause.UpstreamReset {
			if m.PID() != 0 {
				// Not sent to m again: its process is going down, or it
				// closed on the request; and a probe it passed a moment
				// ago may bring it back into rotation before the
				// supervisor sees it die. An instance's replacement is
				// another member. (An external upstream's member is its
				// address, which may come back.)
				st.cutBy = append(st.cutBy, m)
			}
			sent := st.sentAt[len(st.sentAt)-1]
			if ok, known := excused(m, sent); !ok {
				failed, failedPID, failErr := m, st.sentPID, err
				readyOnly = func() *cause.Error { return a.attemptError(st, c, failed, failedPID, failErr) }
				if !known && !waited {
					// (After poisonedOnceKnown's wait, an exit still
					// unknown has had its time: the reset is the
					// request's own, and not waited for again.)
					judging, judgingSent = m, sent
				}
			}
		}
		st.retried = append(st.retried, string(c))
	}
}

// acquire picks a member, or holds the request until one is ready; a
// request about to wait has its client watched, so that one that leaves
// is let go. A first attempt goes to the member the client is pinned to
// (affinity) while that member is routable.
func (a *appProxy) acquire(ctx context.Context, st *reqState, hold time.Duration) (*pool.Member, time.Duration, error) {
	if st.pin != nil && len(st.tried) == 0 && st.pin.Take() {
		// The member the client's affinity cookie names, ready: its
		// first attempt goes there whatever the others' load.
		return st.pin, 0, nil
	}
	if !a.pool.Unloaded() {
		if m := a.pool.PickExcept(st.tried, st.cutBy); m != nil {
			return m, 0, nil
		}
	}
	st.watch()
	return a.pool.AcquireExcept(ctx, hold, st.tried, st.cutBy)
}

// attempt sends req to m once, starting at start. On success the
// response body releases m when it is done.
func (a *appProxy) attempt(req *http.Request, m *pool.Member, st *reqState, start, deadline time.Time, cfg *config.App) (*http.Response, cause.Cause, error) {
	u := a.upstream(m)
	try := &st.try
	try.Deadline, try.Timeout, try.RequestURI, try.HeadLimit, try.Client = deadline, cfg.RequestTimeout.D(), st.requestURI, int64(cfg.Limits.ResponseHead), st
	try.Start = start
	resp, pc, err := u.RoundTrip(req.Context(), req, try)
	st.answeredAt = time.Now()
	st.upstream = st.answeredAt.Sub(start)
	st.reused = try.Progress.Reused
	if err != nil {
		if upstream.IsClientBodyError(err) {
			return nil, clientCause(err), err
		}
		clientGone := req.Context().Err() != nil
		c := cause.Classify(cause.Attempt{
			Err: err, Progress: try.Progress, TimedOut: !clientGone && upstream.IsDeadline(err) && !time.Now().Before(try.Deadline),
			ClientGone: clientGone, IdleTime: try.IdleTime, SinceWrite: sinceOrZero(try.WroteAt),
		})
		if c == cause.StaleConnection && try.IdleTime > 0 || closedWhileIdle(c, try) {
			// The app closes idle connections sooner than we do: learn it.
			u.LowerIdle(upstream.CloseBefore(try.IdleTime))
		}
		return nil, c, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		st.upgraded = true
	}
	if t := upstream.KeepAliveTimeout(resp.Header); t > 0 {
		u.LowerIdle(upstream.CloseBefore(t))
	}
	resp.Body = newResponseBody(req.Context(), resp, pc, m, st)
	if b, ok := resp.Body.(*responseBody); ok && isEventStream(resp.Header) {
		b.endWith(a.streamsEnd)
	}
	return resp, cause.None, nil
}

func newResponseBody(ctx context.Context, resp *http.Response, pc *upstream.Conn, m *pool.Member, st *reqState) io.ReadCloser {
	var b *responseBody
	if resp.StatusCode != http.StatusSwitchingProtocols && !isEventStream(resp.Header) {
		// A plain answer: copyResponse closes its body before
		// the request's state is put back, and no callback outlives it
		// that touches the body itself (watch's interrupts the
		// connection), so the state's own body serves, unallocated. An
		// upgrade outlives the request, and an event stream's end
		// (endWith) sets ended from another goroutine: theirs are their
		// own.
		b = &st.body
		*b = responseBody{rc: resp.Body, pc: pc, m: m, st: st}
	} else {
		b = &responseBody{rc: resp.Body, pc: pc, m: m, st: st}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now carries another protocol: it is the body,
		// readable and writable, and never goes back to the pool.
		return &upgradeBody{responseBody: b, conn: pc.NetConn(), br: pc.Reader()}
	}
	if resp.Body == http.NoBody {
		b.done(true)
		return b
	}
	if resp.ContentLength < 0 {
		// A stream may be silent for minutes: when the client leaves,
		// the read from the app is interrupted, so that the member and
		// the connection are let go now rather than at the app's next
		// write. (A body of known length arms this only once it takes
		// more than one read: see copyResponse.)
		b.watch(ctx)
	}
	return b
}

// poisoned reports whether the request, just cut off by m
// (upstream_reset), is likely what kills the instances it is sent to (a
// query of death), and so must not be sent to another. A reset is an
// accident, not the request's doing, when m's process died under it
// together with other requests: the instance was killed, or ran out of
// memory, under load, and every request it had was cut off at once. The
// rule, counting each instance once (a member is one process: the
// supervisor makes a new member for every start):
//
//   - the first reset is never the request's fault: it is retried;
//   - after resets on two instances the request is poisoned unless at
//     least one of them is known to have died with another request cut
//     off on it at about the same time, or to have been killed from
//     outside, or dead before the request was sent (excused). A request
//     that crashes whichever instance serves it kills them one by one,
//     alone; two instances killed at once under load cut off several
//     requests each;
//   - after resets on three instances it is poisoned in any case: resets
//     that keep following one request to fresh instances are its own.
//
// unknown lists the instances whose death nothing explains yet because
// their exits are not recorded (excused's known is false): a verdict of
// poisoned that rests on them may change once they are
// (poisonedOnceKnown).
//
// So a GET that every instance died under at once is held and served by
// a replacement, and a GET that crashes instances reaches two at most
// (three under load that hides it).
// st.retried[i] is the cause of the failed attempt on st.tried[i].
func poisoned(st *reqState, c cause.Cause, m *pool.Member) (_ bool, unknown []*pool.Member) {
	if c != cause.UpstreamReset {
		return false, nil
	}
	prev := -1
	for i, r := range st.retried {
		if r != string(cause.UpstreamReset) || st.tried[i] == m || prev >= 0 && st.tried[i] == st.tried[prev] {
			continue
		}
		if prev >= 0 {
			return true, nil // m is the third instance
		}
		prev = i
	}
	if prev < 0 {
		return false, nil
	}
	last := len(st.tried) - 1
	for _, at := range []int{prev, last} {
		ok, known := excused(st.tried[at], st.sentAt[at])
		if ok {
			return false, nil
		}
		if !known {
			unknown = append(unknown, st.tried[at])
		}
	}
	return true, unknown
}

// poisonedOnceKnown is poisoned, judged on the exits of the instances
// it rests on: when resets on two instances make a request poisoned
// while an exit that could excuse it is not yet recorded, it waits for
// those exits and judges again. Every instance killed at once cuts its
// requests off a moment before the supervisor reaps it, and a request
// that reached two of them in that moment would otherwise be failed as a
// query of death, where the exits excuse it and it is held for a
// replacement. The wait lasts at most exitWait, and never past the
// request's deadline or its client's leaving (the client is watched
// from now); waited says it was made, after which an exit still unknown
// has had its time. Only the second reset of a request ever waits: a
// query of death's 502 comes at most exitWait later, and so does that
// of an app that closes the connection on the request on two instances
// and lives on.
func (a *appProxy) poisonedOnceKnown(ctx context.Context, st *reqState, c cause.Cause, m *pool.Member, deadline time.Time) (_, waited bool) {
	p, unknown := poisoned(st, c, m)
	if !p || len(unknown) == 0 {
		return p, false
	}
	st.watch()
	awaitExits(ctx, unknown, min(a.exitWait, time.Until(deadline)))
	p, _ = poisoned(st, c, m)
	return p, true
}

// awaitExits returns once the exits of every member in ms are recorded,
// wait has passed, or ctx is done, whichever comes first.
func awaitExits(ctx context.Context, ms []*pool.Member, wait time.Duration) {
	if wait <= 0 {
		return
	}
	recorded := make(chan struct{}, len(ms))
	for _, m := range ms {
		stop := m.OnExit(m.PID(), func(*pool.Exit) { recorded <- struct{}{} })
		defer stop()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for range ms {
		select {
		case <-recorded:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// excused reports whether m's process, which cut off an attempt sent at
// sentAt, died of something else than that request, from what is known
// now; known is false while nothing is: no other request was cut off on
// m, and the supervisor has not recorded the exit yet. It never waits.
// Another request cut off on m within CutBurst excuses it at once, exit
// or not: the sockets of a process killed under load close together.
// An exit excuses it when it was from outside (SIGKILL, SIGTERM, SIGINT:
// an operator, an orchestrator, the OOM killer) or before the request
// reached the process (see excusedBy). A request crashes a process with
// an error, a panic or a fault, not with those. (A request that drives
// an app out of memory is excused too; the cap of three instances still
// holds it.) A reset with an exit that excuses nothing is the request's
// own; one without an exit (the app closed the connection and lives on)
// is too, once the exit has had time to come (holdJudged): the request
// may be what it refused.
func excused(m *pool.Member, sentAt time.Time) (ok, known bool) {
	if m.CutOffs(time.Now()) >= 2 {
		return true, true
	}
	pid := m.PID()
	if pid == 0 {
		return false, true // an external upstream: no exit will come
	}
	e := m.ExitOf(pid)
	if e == nil {
		return false, false
	}
	return excusedBy(m, e, sentAt), true
}

// excusedBy reports whether exit e of m's process excuses an attempt
// sent at sentAt that it cut off.
func excusedBy(m *pool.Member, e *pool.Exit, sentAt time.Time) bool {
	return killedFromOutside[e.Signal] || e.At.Before(sentAt) || m.CutOffs(e.At) >= 2
}

// killedFromOutside are the signals a process dies of when something
// other than its requests ends it.
var killedFromOutside = map[string]bool{"SIGKILL": true, "SIGTERM": true, "SIGINT": true, "SIGHUP": true, "SIGQUIT": true}

// holdJudged holds the retry of a request cut off by m's process (sent
// at sentAt), whose death nothing explains yet, while no other instance
// is ready: held as any request (acquire), until m's exit says whether
// the request killed the process. If it did, or no exit comes within
// exitWait, the hold ends at once with own set, and the request is not
// sent again: a query of death is not held for the restart of the
// instance it killed. If the exit excuses the request, the hold goes on
// for a replacement. A request waits to hear from the supervisor here,
// where it would wait anyway (for an instance), and in poisonedOnceKnown.
func (a *appProxy) holdJudged(reqCtx context.Context, st *reqState, hold time.Duration, m *pool.Member, sentAt time.Time) (_ *pool.Member, held time.Duration, own bool, err error) {
	ctx, cancel := context.WithCancelCause(reqCtx)
	defer cancel(nil)
	// verdict: 0 while unknown, then verdictExcused or verdictOwn, once.
	var verdict atomic.Int32
	judge := func(v int32) {
		if verdict.CompareAndSwap(0, v) && v == verdictOwn {
			cancel(errOwnDeath)
		}
	}
	stop := time.AfterFunc(a.exitWait, func() { judge(verdictOwn) }).Stop
	defer stop()
	unwatch := m.OnExit(m.PID(), func(e *pool.Exit) {
		if excusedBy(m, e, sentAt) {
			judge(verdictExcused)
		} else {
			judge(verdictOwn)
		}
	})
	defer unwatch()
	st.watch()
	got, held, err := a.pool.AcquireExcept(ctx, hold, st.tried, st.cutBy)
	if err != nil && verdict.Load() != verdictExcused && reqCtx.Err() == nil {
		// Condemned by the exit, or still unexplained at the end of a
		// hold shorter than exitWait: the request's own.
		return nil, held, true, err
	}
	return got, held, false, err
}

const (
	verdictExcused int32 = 1
	verdictOwn     int32 = 2
)

// errOwnDeath ends the hold of a request whose instance died of it.
var errOwnDeath = errors.New("the instance's process died of the request")

// clientCause names a failure to read the client's request body: too slow
// (limits.body_timeout), too large (limits.request_body), cut off (the
// client left), or anything else the body's reader refused, which is
// malformed framing (a bad chunk).
func clientCause(err error) cause.Cause {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return cause.ClientTimeout
	case errors.As(err, &tooLarge):
		return cause.RequestTooLarge
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, context.Canceled),
		errors.Is(err, front.ErrClientWrite): // (the 100 Continue could not be sent)
		return cause.ClientClosed
	}
	return cause.BadRequest
}

func sinceOrZero(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return time.Since(t)
}

// exitWait is how long a retry (holdJudged, poisonedOnceKnown) waits to learn that
// its instance died: the reset is seen a moment before the supervisor
// reaps the process, a few milliseconds on an idle machine, over 250 on
// a busy one, where a GET cut off by an outside SIGKILL was then taken
// for the request's own death and answered 502 rather than held. Only
// an exit still unknown waits this long: a known one judges at once.
const exitWait = time.Second

// replayer rewinds a request body for another attempt.
type replayer struct {
	// held is the body read whole before the app was asked.
	held *spool.Spool
	// counted tracks how much of a streamed body was read; a body that
	// was read at all cannot be sent again.
	counted *countingBody
}

// prepareBody reads a request body of up to limit bytes whole from the
// client before an instance is asked, into the request state's spool
// (memory within the budgets, a temporary file beyond): a slow upload
// then holds no instance, and the request can be replayed on another. A
// larger body streams, after what was read of it, and is replayable only
// while none of it was sent.
func prepareBody(req *http.Request, st *reqState, limit int64, process, disk *spool.Budget) (replayer, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return replayer{}, nil
	}
	if req.ContentLength > limit {
		cb := &countingBody{ReadCloser: req.Body}
		req.Body = cb
		return replayer{counted: cb}, nil
	}
	s := &st.reqBody
	s.Init("", process, st.x.Buffered, disk)
	max := limit + 1
	if req.ContentLength >= 0 {
		max = req.ContentLength
	}
	ended, err := s.Fill(req.Body, max, req.ContentLength)
	switch {
	case err != nil && !errors.Is(err, spool.ErrSpill):
		return replayer{}, err
	case !ended:
		// Larger than the limit, or no room left to spill to: the rest
		// streams after what was read.
		cb := &countingBody{ReadCloser: readCloser{io.MultiReader(s, req.Body), req.Body}}
		req.Body = cb
		return replayer{counted: cb}, nil
	}
	req.Body.Close()
	req.ContentLength = s.Len()
	req.Body = io.NopCloser(s)
	req.GetBody = func() (io.ReadCloser, error) { s.Rewind(); return io.NopCloser(s), nil }
	return replayer{held: s}, nil
}

// rewind prepares req for another attempt; false when its body cannot be
// sent again.
func (r replayer) rewind(req *http.Request) bool {
	switch {
	case r.counted != nil:
		return r.counted.n == 0
	case r.held != nil:
		r.held.Rewind()
	}
	return true
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		// The client's body broke (cut short, bad chunking): the failure
		// is the client's, not the instance's the body was going to.
		err = &upstream.ClientBodyError{Err: err}
	}
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// responseBody hands the connection back once the body has been read to
// its end, releases the member when the response is done, and notes a
// body that ended early.
type responseBody struct {
	rc     io.ReadCloser
	pc     *upstream.Conn
	m      *pool.Member
	st     *reqState
	closed bool
	// unwatch stops the interruption of a streamed body's reads when its
	// client leaves; false when the interruption already happened.
	unwatch func() bool
	// unend stops the end of an event stream at EndStreams; ended is set
	// when that end came.
	unend func() bool
	ended atomic.Bool
}

// endWith makes an event stream end when ctx does, as if the app had
// ended it: the client's response is complete (an event stream may end
// at any event; its client reconnects), the connection to the app is
// dropped.
func (b *responseBody) endWith(ctx context.Context) {
	if b.pc == nil || ctx == nil {
		return
	}
	pc := b.pc
	b.unend = context.AfterFunc(ctx, func() {
		b.ended.Store(true)
		pc.Interrupt()
	})
}

// watch interrupts the body's reads from the app when ctx ends.
func (b *responseBody) watch(ctx context.Context) {
	if b.unwatch != nil || b.pc == nil {
		return
	}
	b.unwatch = context.AfterFunc(ctx, b.pc.Interrupt)
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.pc == nil {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.done(true)
	case err != nil && b.ended.Load():
		b.done(false)
		return n, io.EOF
	case err != nil:
		b.st.truncated = true
		b.done(false)
	}
	return n, err
}

// done ends the exchange's use of the connection: clean when the body was
// read exactly to its end (see package upstream for when that is enough
// to reuse it).
func (b *responseBody) done(clean bool) {
	if b.pc == nil {
		return
	}
	if b.unwatch != nil && !b.unwatch() {
		clean = false // its deadline was moved: the connection is spent
	}
	if b.unend != nil && !b.unend() {
		clean = false
	}
	b.unwatch, b.unend = nil, nil
	b.pc.Finish(clean)
	b.pc = nil
}

func (b *responseBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.done(false)
	b.m.Release()
	return nil
}

// errUnaskedSwitch: the app answered 101 to a request that asked for no
// upgrade, or switched to another protocol than the one asked for.
var errUnaskedSwitch = errors.New("the app switched protocols when no such upgrade was requested")

// hopHeaders are the hop-by-hop headers a proxy does not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// notForwarded are the request's fields the app is not sent: the
// hop-by-hop ones, Forwarded (X-Forwarded-* say it, and a client's
// would be taken for a proxy's) and Expect (the front answers
// 100-continue itself).
var notForwarded = append(slices.Clip(hopHeaders), "Forwarded", "Expect")

// upstream returns the connection pool of member m.
func (a *appProxy) upstream(m *pool.Member) *upstream.Pool {
	for {
		if u, ok := a.upstreams.Load(m); ok {
			return u.(*upstream.Pool)
		}
		cfg := a.cfg.Load()
		u, loaded := a.upstreams.LoadOrStore(m, newUpstream(cfg, m))
		if loaded {
			continue
		}
		if a.cfg.Load() != cfg {
			// A reload swapped the config, and dropped the pools, between
			// the pool's making and its storing: it has the old
			// upstream_tls:. (A swap after this check drops it itself.)
			if a.upstreams.CompareAndDelete(m, u) {
				u.(*upstream.Pool).Close()
			}
			continue
		}
		m.OnRemove(func() {
			if u, ok := a.upstreams.LoadAndDelete(m); ok {
				u.(*upstream.Pool).Close()
			}
		})
		return u.(*upstream.Pool)
	}
}

// newUpstream makes member m's pool for the app's config cfg: of TLS
// connections when it has upstream_tls:, with one client config for the
// pool's lifetime.
func newUpstream(cfg *config.App, m *pool.Member) *upstream.Pool {
	if cfg.UpstreamTLS != nil {
		return upstream.NewTLSPool(m.Addr, cfg.UpstreamIdleTimeout.D(), upstreamtls.Config(cfg.UpstreamTLS, m.Addr))
	}
	return upstream.NewPool(m.Addr, cfg.UpstreamIdleTimeout.D())
}

// holdAnswer lets the app's connection and its instance's slot go as
// soon as the app has sent its answer, whatever the client's speed: a
// client that reads slowly, or not at all, then holds gatehouse's memory
// (or a temporary file), never the app's worker. An answer of known
// length up to limit is read whole before any of it is written; one of
// unknown length is read ahead of the client by up to limit bytes
// (aheadBody), its pieces written as they come. A longer answer, an
// event stream and an upgrade stream as before.
func (a *appProxy) holdAnswer(x *front.Exchange, st *reqState, resp *http.Response, limit int64) {
	b, ok := resp.Body.(*responseBody)
	if !ok || limit <= 0 || resp.ContentLength > limit || resp.ContentLength == 0 || resp.Body == http.NoBody || isEventStream(resp.Header) {
		return
	}
	if resp.ContentLength < 0 {
		resp.Body = newAheadBody(x.Req.Context(), b, limit, a.buffers, x.Buffered)
		return
	}
	s := &st.answer
	s.Init("", a.buffers, x.Buffered, a.disk)
	h := &st.heldAnswer
	h.fill = watchedReads{b: b, x: x}
	ended, err := s.Fill(&h.fill, resp.ContentLength, resp.ContentLength)
	*h = heldBody{s: s, err: err}
	switch {
	case err != nil && !errors.Is(err, spool.ErrSpill):
		// The app's body broke off: what came is written, then the
		// answer is cut short as a streamed one would be (responseBody
		// noted it).
		b.Close()
	case ended:
		b.Close()
		h.err = nil
	default:
		// No room left to spill to: the rest streams from the app, after
		// what was held.
		h.rest, h.err = b, nil
		b.watch(x.Req.Context())
	}
	resp.Body = h
}

// watchedReads reads an answer being held: from its second read on (the
// app sent part of it and may stall in the middle) a client that leaves
// lets the instance go, as copyResponse does for a body it streams. The
// first is not watched: most answers come whole in it.
type watchedReads struct {
	b     *responseBody
	x     *front.Exchange
	reads int
}

func (r *watchedReads) Read(p []byte) (int, error) {
	if r.reads == 1 && r.b.pc != nil {
		r.x.Watch()
		r.b.watch(r.x.Req.Context())
	}
	r.reads++
	return r.b.Read(p)
}

// heldBody is an answer read ahead (holdAnswer): what the spool holds,
// then the rest from the app, or the error the app's body ended with.
type heldBody struct {
	s    *spool.Spool
	rest *responseBody
	err  error
	// fill reads the answer into s.
	fill watchedReads
}

func (h *heldBody) Read(p []byte) (int, error) {
	n, err := h.s.Read(p)
	if err != io.EOF {
		return n, err
	}
	switch {
	case h.rest != nil:
		return h.rest.Read(p)
	case h.err != nil:
		return n, h.err
	}
	return n, io.EOF
}

// whole reports whether the answer is all in the spool.
func (h *heldBody) whole() bool { return h.rest == nil && h.err == nil }

// watch interrupts the reads of the rest from the app when ctx ends.
func (h *heldBody) watch(ctx context.Context) {
	if h.rest != nil {
		h.rest.watch(ctx)
	}
}

// Close lets the rest go; the spool is the request state's, closed with it.
func (h *heldBody) Close() error {
	if h.rest != nil {
		return h.rest.Close()
	}
	return nil
}
