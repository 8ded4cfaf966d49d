// Package otlp exports spans over OTLP, the OpenTelemetry protocol: the
// SDK's finished spans are written as an ExportTraceServiceRequest
// (protobuf, written field by field) and sent over gRPC (HTTP/2, plain
// or TLS) or HTTP/protobuf, retried with backoff as OTLP's exporter
// specification says, within the export's context. What the caller
// does not set is read from OpenTelemetry's OTEL_EXPORTER_OTLP_*
// environment variables (headers, compression, the CA and client
// certificate).
//
// It is the SDK's exporter interface only: gatehouse's tracer provider
// (package tracing) owns the batching, the sampling and the counting.
// Doing without the official exporters keeps gRPC's runtime out of the
// binary, whose initialisation alone mapped about 1.4 MiB into
// every gatehouse process, tracing on or off.
package otlp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The protocols.
const (
	GRPC = "grpc"
	HTTP = "http"
)

// Options say where and how to export.
type Options struct {
	// Protocol is GRPC or HTTP.
	Protocol string
	// Endpoint is, for GRPC, host:port (plaintext) or an http:// or
	// https:// URL of host:port; for HTTP, an http:// or https:// URL,
	// whose path ("/v1/traces" when it has none) is used as it is.
	Endpoint string
	// Headers are sent with every export, over the environment's.
	Headers map[string]string
	// Backoff is the wait before the first retry (doubling up to
	// MaxBackoff; each wait taken at random from its upper half). Zero
	// means a second; a MaxBackoff below Backoff means 5 seconds, or
	// Backoff if that is more.
	Backoff, MaxBackoff time.Duration
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// Exporter sends spans to one endpoint. It is an sdktrace.SpanExporter.
type Exporter struct {
	send    sender
	gzip    bool
	backoff time.Duration
	maxWait time.Duration

	// stop is closed by Shutdown: a retry's wait ends there.
	stop chan struct{}
	once sync.Once
}

// sender sends one encoded request, once.
type sender interface {
	send(ctx context.Context, body []byte) error
	close()
}

// ErrStopped is returned by an export after Shutdown.
var ErrStopped = errors.New("otlp: exporter stopped")

// New makes an exporter; it connects to nothing until it first exports.
func New(o Options) (*Exporter, error) {
	env, err := readEnv(o.Getenv)
	if err != nil {
		return nil, err
	}
	headers := maps.Clone(env.headers) // names lower-cased
	if headers == nil {
		headers = map[string]string{}
	}
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(o.Headers)) {
		if FramingHeader(k) {
			return nil, fmt.Errorf("otlp: header %q frames the export itself", k)
		}
		lk := strings.ToLower(k)
		if other, ok := seen[lk]; ok {
			return nil, fmt.Errorf("otlp: headers %q and %q are the same header", other, k)
		}
		seen[lk] = k
		headers[lk] = o.Headers[k]
	}
	x := &Exporter{backoff: o.Backoff, maxWait: o.MaxBackoff, gzip: env.gzip, stop: make(chan struct{})}
	if x.backoff <= 0 {
		x.backoff = time.Second
	}
	if x.maxWait < x.backoff {
		x.maxWait = max(5*time.Second, x.backoff)
	}
	switch o.Protocol {
	case HTTP:
		u, err := url.Parse(o.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("otlp: endpoint: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("otlp: endpoint %q: want an http:// or https:// URL", o.Endpoint)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/v1/traces"
		}
		x.send = newHTTPSender(u.String(), headers, env.gzip, env.tls(u.Scheme == "https"), env.proxy)
	case GRPC:
		host, secure, err := grpcTarget(o.Endpoint)
		if err != nil {
			return nil, err
		}
		x.send = newGRPCSender(host, headers, env.gzip, env.tls(secure), env.proxy)
	default:
		return nil, fmt.Errorf("otlp: protocol %q: want %s or %s", o.Protocol, GRPC, HTTP)
	}
	return x, nil
}

// grpcTarget reads a gRPC endpoint: host:port, plaintext, or an http://
// or https:// URL of it, whose path (gRPC's is the method's own) is not
// the receiver's. Without a port it is 443, as in gRPC's libraries.
func grpcTarget(endpoint string) (host string, secure bool, err error) {
	host = endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return "", false, fmt.Errorf("otlp: endpoint: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", false, fmt.Errorf("otlp: endpoint %q: want host:port, or an http:// or https:// URL", endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	if host == "" {
		return "", false, fmt.Errorf("otlp: endpoint %q: no host", endpoint)
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "443")
	}
	return host, secure, nil
}

// maxRequest bounds the message of one export request, before
// compression: a receiver over gRPC takes 4 MiB at most unless told
// otherwise (grpc-go's default, which the OpenTelemetry Collector and
// Jaeger keep), and refuses a larger message whole. Spans carry what
// clients sent (a path, a host, a tracestate), so a batch of them can
// pass it: it is then sent as several requests.
const maxRequest = 4 << 20

// ExportSpans sends spans, retrying what OTLP calls retryable until ctx
// ends (a ctx without a deadline retries until Shutdown); it returns the
// receiver's last refusal, or the last error, when they were not taken.
// Spans whose request would pass maxRequest are sent as several
// requests; when some of those are not taken, the error is a
// *PartialError counting their spans.
func (x *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if x.isStopped() {
		return ErrStopped
	}
	if len(spans) == 0 {
		return nil
	}
	parts := splitRequest(nil, spans)
	if len(parts) == 1 {
		return x.exportRequest(ctx, parts[0].body)
	}
	var out PartialError
	for _, p := range parts {
		err := x.exportRequest(ctx, p.body)
		if err == nil {
			continue
		}
		if pe, ok := errors.AsType[*PartialError](err); ok {
			out.Rejected += min(pe.Rejected, int64(p.spans))
			out.Message = pe.Message
			continue
		}
		out.Rejected += int64(p.spans)
		if out.Err == nil {
			out.Err = err
		}
	}
	if out.Rejected == 0 && out.Message == "" {
		return nil
	}
	return &out
}

// request is an encoded export request, and how many spans it holds.
type request struct {
	body  []byte
	spans int
}

// splitRequest appends to parts the requests of spans: one, or, when
// its message would pass maxRequest, those of each half in turn. A span
// whose request alone passes it is sent alone: the receiver may take
// more, and if not, it is the only span lost.
func splitRequest(parts []request, spans []sdktrace.ReadOnlySpan) []request {
	body := AppendRequest(nil, spans)
	if len(body) <= maxRequest || len(spans) == 1 {
		return append(parts, request{body: body, spans: len(spans)})
	}
	half := len(spans) / 2
	parts = splitRequest(parts, spans[:half])
	return splitRequest(parts, spans[half:])
}

// exportRequest sends one encoded request, retrying as ExportSpans
// says.
func (x *Exporter) exportRequest(ctx context.Context, body []byte) error {
	if x.gzip {
		body = gzipped(body)
	}
	wait := x.backoff
	var refused error // the receiver's last refusal
	for {
		err := x.send.send(ctx, body)
		if err == nil {
			return nil
		}
		// Once ctx has ended, what failed is the export's time, not
		// the receiver; its last refusal says more.
		if ctx.Err() != nil {
			if refused != nil {
				return refused
			}
			return err
		}
		if !retryable(err) {
			return err
		}
		if _, ok := errors.AsType[*StatusError](err); ok {
			refused = err
		}
		// The receiver's delay, when it gives one, but no less than the
		// backoff: a delay of nothing is not a loop.
		d := jitter(wait)
		if after, ok := retryAfter(err); ok {
			d = max(d, after)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-x.stop:
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, x.maxWait)
	}
}

// Shutdown stops the exporter: its connections close (an export under
// way fails), a retry's wait ends, and later exports fail with
// ErrStopped.
func (x *Exporter) Shutdown(context.Context) error {
	x.once.Do(func() {
		close(x.stop)
		x.send.close()
	})
	return nil
}

func (x *Exporter) isStopped() bool {
	select {
	case <-x.stop:
		return true
	default:
		return false
	}
}

// jitter spreads a wait over [d/2, d], so that exporters that failed
// together do not retry together.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// StatusError is an export the receiver answered but did not take.
type StatusError struct {
	// Protocol is GRPC or HTTP.
	Protocol string
	// HTTPStatus is the answer's HTTP status.
	HTTPStatus int
	// GRPCCode is the gRPC status (0 when the answer had none).
	GRPCCode int
	// Message is the receiver's word on it, cut short.
	Message string
	// RetryAfter is how long the receiver asked to be left alone
	// (HTTP's Retry-After, gRPC's RetryInfo), zero when it did not say.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg != "" {
		msg = ": " + msg
	}
	if e.Protocol == GRPC && e.GRPCCode != 0 {
		return fmt.Sprintf("otlp: grpc status %d (%s)%s", e.GRPCCode, grpcCodeName(e.GRPCCode), msg)
	}
	return fmt.Sprintf("otlp: %s status %d%s", e.Protocol, e.HTTPStatus, msg)
}

// Retryable says whether OTLP's specification has the export tried
// again: throttled or unavailable, not refused.
func (e *StatusError) Retryable() bool {
	if e.Protocol == GRPC && e.GRPCCode != 0 {
		switch e.GRPCCode {
		case grpcCanceled, grpcDeadlineExceeded, grpcAborted, grpcOutOfRange, grpcUnavailable, grpcDataLoss:
			return true
		case grpcResourceExhausted:
			// Only when the receiver says when (a RetryInfo).
			return e.RetryAfter > 0
		}
		return false
	}
	switch e.HTTPStatus {
	case 429, 502, 503, 504:
		return true
	}
	return false
}

// retryable says whether err is worth another try: a refusal the
// receiver says is passing, or a connection that failed.
func retryable(err error) bool {
	// A PartialError first: it may wrap a refusal of some of a
	// batch's requests, and the rest were taken.
	var pse *PartialError
	if errors.As(err, &pse) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Retryable()
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return false
	}
	// A receiver's certificate refused here is refused again. (One that
	// refuses this side's is not told apart: under TLS 1.3 its alert may
	// come as a reset, after the handshake has ended here.)
	var ce *tls.CertificateVerificationError
	return !errors.As(err, &ce) && !errors.Is(err, ErrStopped) && !errors.Is(err, http.ErrSchemeMismatch)
}

func retryAfter(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// protocolError is an answer that is not OTLP's, or a request that
// cannot be made: not retried, as the same request would fail again.
type protocolError struct{ err error }

func (e *protocolError) Error() string { return "otlp: " + e.err.Error() }

func (e *protocolError) Unwrap() error { return e.err }
