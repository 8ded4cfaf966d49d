package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// forward sends req to one of the app's members, trying another when an
// attempt fails in a way that is safe to retry, and holding the request
// while no member is ready. Every error it returns is a *cause.Error.
//
// An attempt the app never saw (connect_refused, connect_timeout,
// upstream_tls, stale_connection) is retried for any method. An attempt cut off after
// it was sent (upstream_reset) is retried only for an idempotent method
// or a request with Idempotency-Key (cause.Retry), and only while the
// request is not a likely query of death (poisoned). A request whose
// instance died under it alone (excused says no) is retried only on
// another instance ready at that moment, never held for a restart of the
// one it may have killed. When every instance died at once (killed from
// outside, or with other requests), the retry finds none ready and is
// held like any request (within hold_timeout and what is left of
// request_timeout) until a replacement is ready. A POST the app already
// had is never retried: the app may have acted on it. All of it within
// max_attempts.
func (a *appProxy) forward(req *http.Request, st *reqState) (*http.Response, error) {
	cfg := a.cfg.Load()
	stripSessionCookie(req.Header)
	replay, err := prepareBody(req, int64(cfg.RetryBodyLimit))
	if err != nil {
		return nil, cause.New(clientCause(err), "", "reading the request body: "+err.Error(), err)
	}
	if cfg.Affinity {
		a.readPin(req.Header, cfg.AffinityCookie, st)
	}
	deadline := time.Time{}
	// readyOnly: the last attempt was cut off by a process that died of
	// it, alone: its retry goes to another instance ready now, or
	// nowhere, never waiting for the restart of the one it killed.
	var readyOnly func() *cause.Error
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
			if m = a.pool.Pick(st.tried); m == nil {
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
		resp, c, err := a.attempt(req, m, st, now, deadline, cfg)
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
		// poisoned last: it may wait a moment to learn whether the
		// instance died.
		retry := c.Retry().Allows(req.Method, req.Header.Get("Idempotency-Key") != "") && replay.rewind(req) &&
			st.attempts < cfg.MaxAttempts && req.Context().Err() == nil && time.Now().Before(deadline) && !poisoned(st, c, m)
		if !retry {
			return nil, a.attemptError(c, m, err)
		}
		readyOnly = nil
		if c == cause.UpstreamReset && !excused(m, st.sentAt[len(st.sentAt)-1]) {
			failed, failErr := m, err
			readyOnly = func() *cause.Error { return a.attemptError(c, failed, failErr) }
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
		if m := a.pool.Pick(st.tried); m != nil {
			return m, 0, nil
		}
	}
	st.watch()
	return a.pool.Acquire(ctx, hold, st.tried)
}

// attempt sends req to m once, starting at start. On success the
// response body releases m when it is done.
func (a *appProxy) attempt(req *http.Request, m *pool.Member, st *reqState, start, deadline time.Time, cfg *config.App) (*http.Response, cause.Cause, error) {
	u := a.upstream(m)
	try := &st.try
	try.Deadline, try.Timeout, try.RequestURI, try.HeadLimit, try.Client = deadline, cfg.RequestTimeout.D(), st.requestURI, int64(cfg.Limits.ResponseHead), st
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
		if c == cause.StaleConnection && try.IdleTime > 0 {
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
//     least one of them died with another request cut off on it at about
//     the same time, or was dead before the request was sent (excused). A request that crashes whichever
//     instance serves it kills them one by one, alone; two instances
//     killed at once under load cut off several requests each;
//   - after resets on three instances it is poisoned in any case: resets
//     that keep following one request to fresh instances are its own.
//
// So a GET that every instance died under at once is held and served by
// a replacement, and a GET that crashes instances reaches two at most
// (three under load that hides it).
// st.retried[i] is the cause of the failed attempt on st.tried[i].
func poisoned(st *reqState, c cause.Cause, m *pool.Member) bool {
	if c != cause.UpstreamReset {
		return false
	}
	prev := -1
	for i, r := range st.retried {
		if r != string(cause.UpstreamReset) || st.tried[i] == m || prev >= 0 && st.tried[i] == st.tried[prev] {
			continue
		}
		if prev >= 0 {
			return true // m is the third instance
		}
		prev = i
	}
	if prev < 0 {
		return false
	}
	// The earlier instance's exit is long known; m's is checked only when
	// the earlier one does not excuse the request.
	last := len(st.tried) - 1
	return !excused(st.tried[prev], st.sentAt[prev]) && !excused(m, st.sentAt[last])
}

// excused reports whether m's process, which cut off an attempt sent at
// sentAt, died of something else than that request: it was killed from
// outside (SIGKILL, SIGTERM, SIGINT: an operator, an orchestrator, the OOM
// killer), it was dead before the request reached it, or it cut off at
// least one other request around its exit (Member.CutOffs). A request
// crashes a process with an error, a panic or a fault, not with those.
// (A request that drives an app out of memory is excused too; the cap of
// three instances still holds it.) A reset without an exit (the app
// closed the connection and lives on) is not excused: the request may be
// what it refused.
func excused(m *pool.Member, sentAt time.Time) bool {
	e := m.ExitFor(m.PID(), exitWait)
	if e == nil {
		return false
	}
	if killedFromOutside[e.Signal] || e.At.Before(sentAt) || m.CutOffs(e.At) >= 2 {
		return true
	}
	// The other requests on a killed process see its sockets close at
	// the same moment; give their goroutines a moment to record it.
	if d := time.Until(e.At.Add(cutSettle)); d > 0 {
		time.Sleep(d)
	}
	return m.CutOffs(e.At) >= 2
}

// killedFromOutside are the signals a process dies of when something
// other than its requests ends it.
var killedFromOutside = map[string]bool{"SIGKILL": true, "SIGTERM": true, "SIGINT": true, "SIGHUP": true, "SIGQUIT": true}

// cutSettle is how long after an exit its cut-offs are taken as counted:
// shorter than the supervisor's exit settle, so that a request that then
// fails is still counted in the exit's event.
const cutSettle = 50 * time.Millisecond

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

// acquireError turns a failure to get a member into a cause, saying what
// gatehouse saw of the app's instances.
func (a *appProxy) acquireError(ctx context.Context, err error, hold time.Duration) *cause.Error {
	switch {
	case errors.Is(err, pool.ErrQueueFull):
		e := cause.Errorf(cause.QueueFull, "", err, "%d requests already waiting for an instance of %s%s", a.pool.Waiting(), a.name, a.busyNote())
		if _, busy := a.pool.Saturated(); busy {
			e.Hint = cause.BusyHint
		}
		return e
	case errors.Is(err, pool.ErrHoldTimeout):
		if ready, busy := a.pool.Saturated(); busy {
			// Instances are up but busy: overload, not a start or a crash.
			return cause.Errorf(cause.InstancesBusy, "", err, "no instance of %s had a free slot within hold_timeout %s: %s %s %d, %d requests waiting",
				a.name, hold, plural(ready, "instance", "instances"), cause.Busy, a.pool.MaxInflight(), a.pool.Waiting())
		}
		return cause.Errorf(cause.NoReadyInstance, "", err, "no instance of %s became ready within hold_timeout %s: %s", a.name, hold, a.pool.Describe())
	default:
		return cause.New(cause.ClientClosed, "", "client went away while held", ctx.Err())
	}
}

// busyNote adds to a queue_full detail that the instances are busy at
// max_inflight, when they are.
func (a *appProxy) busyNote() string {
	if ready, busy := a.pool.Saturated(); busy {
		return fmt.Sprintf("; %s %s %d", plural(ready, "instance", "instances"), cause.Busy, a.pool.MaxInflight())
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// attemptError names the failure of the last attempt, and ties it to the
// instance's exit when the process died under the request.
func (a *appProxy) attemptError(c cause.Cause, m *pool.Member, err error) *cause.Error {
	if c == cause.ClientClosed || c == cause.ClientTimeout || c == cause.BadRequest || c == cause.RequestTooLarge {
		return cause.New(c, "", "reading the request body: "+err.Error(), err)
	}
	detail := attemptDetail(c, m, err)
	if c == cause.UpstreamReset || c == cause.ConnectRefused || c == cause.BadResponse {
		if exit := m.ExitFor(m.PID(), exitWait); exit != nil {
			exit.Failed.Add(1)
			detail += fmt.Sprintf("; instance %s (pid %d) %s", m.ID, exit.PID, exit.Detail)
		}
	}
	return cause.New(c, m.ID, detail, err)
}

// exitWait is how long a failed request waits to learn that its instance
// died: the reset is seen a moment before the supervisor reaps the process.
const exitWait = 250 * time.Millisecond

func attemptDetail(c cause.Cause, m *pool.Member, err error) string {
	switch c {
	case cause.ConnectRefused:
		return "connection refused on " + m.Addr + "; is the app listening on its PORT?"
	case cause.ConnectTimeout:
		if upstreamtls.Classify(err) != upstreamtls.None {
			return "TLS handshake with " + m.Addr + " timed out after " + upstream.ConnectTimeout.String()
		}
		return "connect to " + m.Addr + " timed out after " + upstream.ConnectTimeout.String()
	case cause.UpstreamTLS:
		return "TLS with " + m.Addr + ": " + upstreamtls.Describe(err)
	case cause.StaleConnection:
		return "the app closed an idle keep-alive connection as it was reused"
	case cause.UpstreamReset:
		return "connection to " + m.Addr + " closed before response headers"
	case cause.UpstreamTimeout:
		return "no response headers from " + m.Addr + " within request_timeout"
	case cause.BadResponse:
		switch {
		case errors.Is(err, upstream.ErrHeadTooLarge):
			return "the response head from " + m.Addr + " is larger than limits.response_head"
		case errors.Is(err, upstream.ErrBadStatus), errors.Is(err, upstream.ErrTooManyInterim):
			return "the answer from " + m.Addr + " is not valid HTTP: " + err.Error()
		}
		return "the answer from " + m.Addr + " is not HTTP"
	}
	return c.Hint()
}
