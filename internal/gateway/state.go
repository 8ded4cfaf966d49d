package gateway

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/pool"
)

// reqState is what the gateway learns about one request across its
// attempts. It is pooled: the hot path allocates none per request.
type reqState struct {
	app       *appProxy
	requestID string
	idBuf     [40]byte

	attempts int
	instance string
	tried    []*pool.Member
	triedBuf [4]*pool.Member
	retried  []string
	retryBuf [4]string
	reused   bool
	upstream time.Duration
	held     time.Duration

	// fail is the final gateway failure, when gatehouse answered.
	fail *cause.Error
	// truncated: the app's body ended early.
	truncated bool
	// upgraded: the app switched protocols (101), so the exchange went on
	// over the hijacked connection.
	upgraded bool

	// progress of the current attempt, filled by trace.
	progress  cause.Progress
	idleTime  time.Duration
	wroteAt   time.Time
	firstByte time.Time
	// trace is rebuilt from hooks for every attempt: WithClientTrace
	// composes any trace already in the context (ReverseProxy's, for 1xx
	// responses) into it in place, so a reused trace would grow a chain of
	// every earlier request's hooks.
	trace httptrace.ClientTrace
	hooks httptrace.ClientTrace
}

type stateKey struct{}

var statePool = sync.Pool{New: func() any {
	st := &reqState{}
	st.hooks = httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			st.progress.GotConn, st.progress.Reused, st.idleTime = true, i.Reused, i.IdleTime
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				st.progress.WroteRequest = true
				st.wroteAt = time.Now()
			}
		},
		GotFirstResponseByte: func() { st.progress.GotFirstByte = true },
	}
	return st
}}

func getState() *reqState {
	st := statePool.Get().(*reqState)
	st.tried = st.triedBuf[:0]
	st.retried = st.retryBuf[:0]
	return st
}

func putState(st *reqState) {
	hooks := st.hooks
	clear(st.triedBuf[:])
	*st = reqState{hooks: hooks}
	statePool.Put(st)
}

// resetProgress starts an attempt: no progress, and a trace with only this
// state's own hooks.
func (st *reqState) resetProgress() {
	st.trace = st.hooks
	st.progress = cause.Progress{}
	st.idleTime = 0
	st.wroteAt = time.Time{}
}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// responseWriter records what was sent to the client.
type responseWriter struct {
	http.ResponseWriter
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

// Unwrap lets http.ResponseController reach Flush and Hijack, which
// streaming and WebSocket upgrades need.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
