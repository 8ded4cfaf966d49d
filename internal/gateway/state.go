package gateway

import (
	"net/http"
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
	// as a tunnel.
	upgraded bool

	// rw records what the answer was.
	rw responseWriter
	// body is the response body of a plain answer (see newResponseBody).
	body responseBody

	// try is the exchange with the current member; its response storage
	// is kept across uses of the state.
	try upstream.Attempt
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
	clear(st.triedBuf[:])
	try, ids := st.try, st.ids
	try.Reset()
	*st = reqState{try: try, ids: ids}
	statePool.Put(st)
}

// Gone reports whether the request's client went away.
func (st *reqState) Gone() bool { return st.x.Gone() }

// Interim passes the app's 1xx answer on to the client.
func (st *reqState) Interim(code int, h http.Header) { st.x.W.WriteInterim(code, h) }

// watch starts watching the client before the request may wait long.
func (st *reqState) watch() { st.x.Watch() }

var _ upstream.Client = (*reqState)(nil)
