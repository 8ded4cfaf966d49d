package gateway

import (
	"context"
	"net/http"
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
	// requestURI is the client's request target, sent on unchanged.
	requestURI string
	idBuf      [40]byte

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
	// upgrade is the 101 response's body while ReverseProxy may still
	// refuse the switch; errorHandler closes it then.
	upgrade *upgradeBody

	// resp is the app's answer when readResponse parsed it itself; its
	// header map and value store are kept across uses of the state.
	resp       http.Response
	respHeader http.Header
	respVals   []string
	respBody   lengthBody

	// progress of the current attempt, filled by trace.
	progress cause.Progress
	idleTime time.Duration
	wroteAt  time.Time
}

type stateKey struct{}

var statePool = sync.Pool{New: func() any { return &reqState{} }}

func getState() *reqState {
	st := statePool.Get().(*reqState)
	st.tried = st.triedBuf[:0]
	st.retried = st.retryBuf[:0]
	return st
}

func putState(st *reqState) {
	clear(st.triedBuf[:])
	h, vals := st.respHeader, st.respVals
	clear(h)
	clear(vals)
	*st = reqState{respHeader: h, respVals: vals[:0]}
	statePool.Put(st)
}

// resetProgress starts an attempt with no progress.
func (st *reqState) resetProgress() {
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
