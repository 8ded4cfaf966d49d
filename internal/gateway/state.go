package gateway

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// reqState is what the gateway learns about one request across its
// attempts. It is pooled: the hot path allocates none per request.
type reqState struct {
	app       *appProxy
	requestID string
	// requestURI is the target sent to the app: the client's origin-form
	// target unchanged, or its path cleaned of dot segments.
	requestURI string
	// cleanPath is the decoded path routed by, when dot segments were
	// removed from the client's.
	cleanPath string
	// ids is the block request ids are cut from (see requestIDs.next);
	// kept across uses of the state.
	ids []byte
	// trusted: the peer is a trusted proxy, whose X-Forwarded-* are kept.
	trusted bool
	// client is the client's address a trusted peer's X-Forwarded-For
	// names; "" when it is the peer's own (see peer).
	client string

	// x is the front exchange the request came on; nil for a request
	// served by net/http, whose context is ctx.
	x   *front.Exchange
	ctx context.Context

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
	sentAtBuf [4]time.Time
	retried   []string
	retryBuf  [4]string
	reused    bool
	upstream  time.Duration
	// answeredAt is when the last attempt returned.
	answeredAt time.Time
	held       time.Duration

	// fail is the final gateway failure, when gatehouse answered.
	fail *cause.Error
	// truncated: the app's body ended early.
	truncated bool
	// upgraded: the app switched protocols (101), so the exchange went on
	// over the hijacked connection.
	upgraded bool
	// upgrade is the 101 response's body while ReverseProxy may still
	// refuse the switch; errorHandler closes it then.
	upgrade *upgradeBody

	// rw records what a front request's answer was.
	rw responseWriter
	// body is a front request's response body (see newResponseBody).
	body responseBody

	// try is the exchange with the current member; its response storage
	// is kept across uses of the state.
	try upstream.Attempt
}

type stateKey struct{}

var statePool = sync.Pool{New: func() any { return &reqState{} }}

func getState() *reqState {
	st := statePool.Get().(*reqState)
	st.tried = st.triedBuf[:0]
	st.sentAt = st.sentAtBuf[:0]
	st.retried = st.retryBuf[:0]
	return st
}

func putState(st *reqState) {
	clear(st.triedBuf[:])
	try, ids := st.try, st.ids
	try.Reset()
	*st = reqState{try: try, ids: ids}
	statePool.Put(st)
}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// Gone reports whether the request's client went away: for a front
// exchange a look at its socket, else its context.
func (st *reqState) Gone() bool {
	if st.x != nil {
		return st.x.Gone()
	}
	return st.ctx.Err() != nil
}

// Interim passes the app's 1xx answer on to the client: on the front
// directly, through ReverseProxy's trace hook for net/http.
func (st *reqState) Interim(code int, h http.Header) {
	if st.x != nil {
		st.x.W.WriteInterim(code, h)
		return
	}
	if trace := httptrace.ContextClientTrace(st.ctx); trace != nil && trace.Got1xxResponse != nil {
		trace.Got1xxResponse(code, textproto.MIMEHeader(h))
	}
}

// watch starts watching the client before the request may wait long.
func (st *reqState) watch() {
	if st.x != nil {
		st.x.Watch()
	}
}

var _ upstream.Client = (*reqState)(nil)
