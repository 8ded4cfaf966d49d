package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

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
	case errors.Is(err, pool.ErrCannotStart):
		// Not held for hold_timeout: no instance of the app can start.
		why := a.pool.CannotStart()
		if why == "" {
			why = "its command cannot be run"
		}
		return cause.Errorf(cause.NoReadyInstance, "", err, "no instance of %s can start: %s", a.name, why)
	case errors.Is(err, pool.ErrHoldTimeout):
		if ready, busy := a.pool.Saturated(); busy {
			// Instances are up but busy: overload, not a start or a crash.
			return cause.Errorf(cause.InstancesBusy, "", err, "no instance of %s had a free slot within hold_timeout %s: %s %s %d, %d requests waiting",
				a.name, hold, plural(ready, "instance", "instances"), cause.Busy, a.pool.MaxInflight(), a.pool.Waiting())
		}
		e := cause.Errorf(cause.NoReadyInstance, "", err, "no instance of %s became ready within hold_timeout %s: %s", a.name, hold, a.pool.Describe())
		// What the supervisor knows for certain (a port mismatch, with
		// its fix) says more than the cause's generic hint.
		e.Hint = a.pool.Problem()
		return e
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
// instance's exit when the process died under the request. It does not
// wait for the exit: one already recorded is named now, in the answer
// too; else the access entry waits for it (st.dying, lateExits). pid is
// the process the attempt was sent to: by the time a slow goroutine
// classifies the failure, the supervisor may have started the next one.
func (a *appProxy) attemptError(st *reqState, c cause.Cause, m *pool.Member, pid int, err error) *cause.Error {
	if c == cause.ClientClosed || c == cause.ClientTimeout || c == cause.BadRequest || c == cause.RequestTooLarge {
		return cause.New(c, "", "reading the request body: "+err.Error(), err)
	}
	detail := attemptDetail(c, m, err)
	if pid != 0 && (c == cause.UpstreamReset || c == cause.ConnectRefused || c == cause.BadResponse) {
		if exit := m.ExitOf(pid); exit != nil {
			exit.Failed.Add(1)
			detail += exitNote(m, exit)
		} else {
			st.dying, st.dyingPID = m, pid
		}
	}
	return cause.New(c, m.ID, detail, err)
}

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
