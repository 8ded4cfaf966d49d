package cause

import (
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// Progress is how far one upstream attempt got, as recorded through
// net/http/httptrace. The zero value means nothing happened yet.
type Progress struct {
	// GotConn: a connection to the instance was obtained.
	GotConn bool
	// Reused: that connection came from the idle pool.
	Reused bool
	// WroteRequest: the whole request was written without error.
	WroteRequest bool
	// WroteSome: the request was not written whole, but some of it
	// reached the app first (an upload cut off as it was sent), which
	// may have read it.
	WroteSome bool
	// GotFirstByte: the first byte of the response arrived.
	GotFirstByte bool
	// TLS13: the connection is TLS 1.3. Its client's handshake ends
	// before the server has checked the client's certificate, so a
	// refusal of that certificate arrives as an alert on the first read,
	// after the request was written but never read.
	TLS13 bool
}

// Attempt describes a failed attempt for Classify.
type Attempt struct {
	Err      error
	Progress Progress
	// TimedOut: gatehouse's own request_timeout fired before headers.
	TimedOut bool
	// ClientGone: the client's request context ended first.
	ClientGone bool
	// IdleTime is how long a reused connection had been idle.
	IdleTime time.Duration
	// SinceWrite is how long after the request was written the attempt
	// failed.
	SinceWrite time.Duration
}

// A reused connection that had idled at least staleMinIdle and failed
// within staleMaxAfterWrite of the request being written was closed by the
// app while idle: the close crossed our request on the wire, and the app
// never read it. A crash lands at a random moment of a request's life and
// almost never in that window on a connection that had been idle.
const (
	staleMinIdle       = 50 * time.Millisecond
	staleMaxAfterWrite = 2 * time.Millisecond
)

// Classify maps a failed attempt to its cause. It is the only function that
// decides a failure's cause; status and retry rule follow from the cause.
func Classify(a Attempt) Cause {
	switch {
	case a.ClientGone:
		return ClientClosed
	case a.TimedOut:
		return UpstreamTimeout
	case !a.Progress.GotConn:
		return classifyDial(a.Err)
	case a.Progress.TLS13 && !a.Progress.Reused && !a.Progress.GotFirstByte && refusedClientCert(a.Err):
		// A TLS 1.3 client's handshake ends before the server has checked
		// its certificate; a server that refuses it says so with an alert
		// on the new connection's first read. It never read the request.
		// Any other alert after the write (and every alert over TLS 1.2,
		// whose handshake is over before the request is sent) may come
		// from a server that read and acted on it: upstream_reset, retried
		// only when the method allows.
		return UpstreamTLS
	case !a.Progress.WroteRequest:
		if a.Progress.Reused && !a.Progress.WroteSome {
			// A pooled connection died under us before the request was
			// out: the app closed it while idle and never saw this request.
			return StaleConnection
		}
		// Cut off as it was sent, after some of it went: the app may
		// have read the head and part of the body, on a reused
		// connection as on a new one, and acted on it.
		return UpstreamReset
	case a.Progress.Reused && !a.Progress.GotFirstByte && a.IdleTime >= staleMinIdle &&
		a.SinceWrite <= staleMaxAfterWrite && IsConnReset(a.Err):
		return StaleConnection
	case a.Progress.GotFirstByte:
		// Bytes came back but did not parse as an HTTP response.
		return BadResponse
	default:
		return UpstreamReset
	}
}

// refusedClientCert reports whether err is an upstream's alert refusing
// the client's certificate.
func refusedClientCert(err error) bool {
	return upstreamtls.Classify(err) == upstreamtls.ClientCertRefused
}

// classifyDial names a failure to get a connection: a connect, or the TLS
// handshake of an upstream with upstream_tls (a handshake too slow is a
// connect_timeout).
func classifyDial(err error) Cause {
	switch {
	case isTimeout(err):
		return ConnectTimeout
	case upstreamtls.Classify(err) != upstreamtls.None:
		return UpstreamTLS
	}
	return ConnectRefused
}

// isTimeout reports whether err or an error it wraps is a timeout, as
// net.Error says. It walks the chain itself: errors.As with a target
// escapes to the heap, and Classify must not allocate.
func isTimeout(err error) bool {
	for err != nil {
		if t, ok := err.(interface{ Timeout() bool }); ok && t.Timeout() {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

// IsConnReset reports whether err is the peer closing or resetting a
// connection, which is how an instance's crash looks from the gateway.
func IsConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)
}
