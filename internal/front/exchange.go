package front

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/http1"
)

// Exchange is one request on a front connection and its answer, as the
// Handler sees it. It is reused for the connection's next request: the
// handler keeps nothing of it after ServeFront returns.
type Exchange struct {
	c *conn
	// Req is the request. Its context ends when the client goes away
	// (found by Watch or Gone) and when the connection ends.
	Req *http.Request
	// Head is the parsed head: the names the Connection field listed,
	// the fields dropped.
	Head *http1.RequestHead
	// W answers the client.
	W *Writer
	// RequestID is the client's X-Request-Id, if it sent one.
	RequestID string
	// IP is the client's address without the port: the peer's, or the
	// one a PROXY protocol header named.
	IP string
	// Reject, when set, is why the front refused the request: the
	// handler answers with it (unless Answered) and logs it, and the
	// connection closes after.
	Reject *cause.Error
	// Answered: the front already answered a refused request.
	Answered bool

	vals []string // backing store of One
}

// begin prepares the exchange for the request just read.
func (x *Exchange) begin() {
	x.Reject, x.Answered = nil, false
	x.vals = x.vals[:0]
	x.W.reset()
}

// One is a one-value header slice backed by the connection's store, for
// the fields the handler sets without allocating.
func (x *Exchange) One(v string) []string {
	x.vals = append(x.vals, v)
	n := len(x.vals)
	return x.vals[n-1 : n : n]
}

// Watch starts watching the client for going away, for a request about to
// wait long (held for an instance, or a stream): a read of the connection
// runs until the request ends, and cancels Req's context if the client
// closes. It must be called on the handler's goroutine. A byte the client
// sends meanwhile is kept for the next request.
func (x *Exchange) Watch() { x.c.watch.start() }

// Gone reports whether the client went away, with a look at its socket
// that does not block; a client found gone cancels Req's context.
func (x *Exchange) Gone() bool { return x.c.watch.check() }

// CloseAfter makes the connection close after this answer.
func (x *Exchange) CloseAfter() { x.c.closeAfter = true }

// SetBodyTimeout bounds each further read of this request's body by d
// instead of Options.BodyTimeout (an app's own limit).
func (x *Exchange) SetBodyTimeout(d time.Duration) { x.c.bodyTimeout = d }
