package front

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/spool"
)

// Handler serves the exchanges a Server reads, whatever their protocol:
// an HTTP/1.1 (or 1.0) request on a front connection, an HTTP/2 stream.
// It answers a request the front refused too (Exchange.Reject), so that
// it is logged.
type Handler interface {
	Serve(x *Exchange)
}

// Exchange is one request and its answer, as the Handler sees it, the
// same for every protocol. It is reused for the connection's (or
// stream's) next request: the handler keeps nothing of it after Serve
// returns.
type Exchange struct {
	// Req is the request. Its context ends when the client goes away
	// (found by Watch or Gone, or an HTTP/2 stream's reset) and when the
	// connection ends. Req.TLS is the connection's handshake, whatever
	// the request says of its scheme.
	Req *http.Request
	// W answers the client.
	W ResponseWriter
	// ConnTokens are the other field names the request's Connection
	// field listed: hop-by-hop fields a proxy removes.
	ConnTokens []string
	// Upgrade is the Upgrade field of a request that asked to switch
	// protocols (Connection: upgrade, HTTP/1.1 only); "" for any other.
	Upgrade string
	// RequestID is the client's X-Request-Id, if it sent one.
	RequestID string
	// IP is the client's address without the port: the peer's, or the
	// one a PROXY protocol header named.
	IP string
	// ClientUnknown: a PROXY protocol header said the load balancer does
	// not know the client (UNKNOWN); IP is the balancer's, but nothing
	// the client says of its origin is the balancer's word.
	ClientUnknown bool
	// Reject, when set, is why the front refused the request: the
	// handler answers with it (unless Answered) and logs it, and the
	// connection (HTTP/1) closes after.
	Reject *cause.Error
	// Answered: the front already answered a refused request.
	Answered bool
	// Buffered is the connection's memory budget for bodies held ahead
	// of their reader (Options.ConnectionBuffer): an HTTP/2
	// connection's streams share one.
	Buffered *spool.Budget

	side side
	vals []string // backing store of One
}

// side is what an exchange's protocol does for it: an HTTP/1 connection
// (conn) or an HTTP/2 stream (stream).
type side interface {
	startWatch()
	isGone() bool
	closeAfterAnswer()
	limitBodyReads(d time.Duration)
	takeOver() (net.Conn, []byte, error)
}

// ResponseWriter answers an exchange. Beyond http.ResponseWriter it
// takes a forwarded answer's own header map (UseHeader), its trailers,
// interim answers, and an answer cut short (Abort). The answer's
// protocol, framing and hop-by-hop fields are the writer's.
type ResponseWriter interface {
	http.ResponseWriter
	// SetRequestID makes the answer carry X-Request-Id: id, once,
	// whatever the header map says.
	SetRequestID(id string)
	// UseHeader makes h the header map WriteHeader writes.
	UseHeader(h http.Header)
	// SetTrailer names where the trailer fields sent after the body are:
	// read when the answer ends, since a body reader fills them (and may
	// replace the map) only at its end.
	SetTrailer(t *http.Header)
	// WriteInterim sends a 1xx answer other than 100 and 101 (103 Early
	// Hints) at once, before the final one.
	WriteInterim(code int, h http.Header)
	// Flush sends what is buffered.
	Flush()
	// Abort ends an answer cut short: the client must see the answer
	// break, not complete.
	Abort()
}

// ErrClientWrite: the client's connection broke while its answer was
// written.
var ErrClientWrite = errors.New("writing the response to the client")

// ErrBodyTooLong is a body longer than its Content-Length said.
var ErrBodyTooLong = errors.New("response body longer than its Content-Length")

// ErrNoTunnel: the exchange cannot carry another protocol (an HTTP/2
// stream, or an answer that was not a switch of protocols).
var ErrNoTunnel = errors.New("the connection cannot be switched to another protocol")

// begin prepares the exchange for the request just read.
func (x *Exchange) begin() {
	x.Reject, x.Answered = nil, false
	x.Upgrade, x.ConnTokens = "", nil
	x.vals = x.vals[:0]
}

// One is a one-value header slice backed by the exchange's store, for
// the fields the handler sets without allocating.
func (x *Exchange) One(v string) []string {
	x.vals = append(x.vals, v)
	n := len(x.vals)
	return x.vals[n-1 : n : n]
}

// Watch starts watching the client for going away, for a request about to
// wait long (held for an instance, or a stream): on HTTP/1 a read of the
// connection runs until the request ends, and cancels Req's context if
// the client closes. It must be called on the handler's goroutine. A byte
// the client sends meanwhile is kept for the next request.
func (x *Exchange) Watch() { x.side.startWatch() }

// Gone reports whether the client went away, with a look that does not
// block; a client found gone cancels Req's context.
func (x *Exchange) Gone() bool { return x.side.isGone() }

// CloseAfter makes an HTTP/1 connection close after this answer (the
// request was not read to its end). An HTTP/2 stream's fault is its own:
// the connection serves on.
func (x *Exchange) CloseAfter() { x.side.closeAfterAnswer() }

// SetBodyTimeout bounds each further read of this request's body by d
// instead of Options.BodyTimeout (an app's own limit).
func (x *Exchange) SetBodyTimeout(d time.Duration) { x.side.limitBodyReads(d) }

// Tunnel hands over the connection of an exchange whose 101 answer was
// written, to carry the protocol it switched to: the connection, and the
// bytes the client already sent past its request. The caller closes the
// connection; the front serves nothing more on it. ErrNoTunnel on an
// HTTP/2 stream.
func (x *Exchange) Tunnel() (net.Conn, []byte, error) { return x.side.takeOver() }
