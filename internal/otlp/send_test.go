package otlp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gatehouse/gatehouse/internal/otlp"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/tracing/otlptest"
)

// TestMain fails the package's tests when any leaves a goroutine
// running: the exporters' Shutdown is to close their connections.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// transport is one of the exporter's protocols, and how it reaches an
// otlptest receiver.
type transport struct {
	name     string // otlptest's name for it
	protocol string
	endpoint func(r *otlptest.Receiver) string
}

var (
	grpcTransport = transport{"grpc", otlp.GRPC, (*otlptest.Receiver).GRPCAddr}
	httpTransport = transport{"http", otlp.HTTP, (*otlptest.Receiver).HTTPURL}
	transports    = []transport{grpcTransport, httpTransport}
)

// tlsEndpoint is the endpoint of a receiver started with StartTLS.
func (tr transport) tlsEndpoint(r *otlptest.Receiver) string {
	if tr.protocol == otlp.GRPC {
		return "https://" + r.GRPCAddr()
	}
	return r.HTTPURL()
}

// environ is an Options.Getenv of vars alone: the tests never read the
// process's environment.
func environ(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// newExporter makes an exporter that is shut down when the test ends.
// Its Getenv is environ(nil) unless o says otherwise, and its Backoff
// 10ms.
func newExporter(t *testing.T, o otlp.Options) *otlp.Exporter {
	t.Helper()
	if o.Getenv == nil {
		o.Getenv = environ(nil)
	}
	if o.Backoff == 0 {
		o.Backoff = 10 * time.Millisecond
	}
	x, err := otlp.New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	t.Cleanup(func() { x.Shutdown(context.Background()) })
	return x
}

// export exports spans within timeout and says how long it took.
func export(x *otlp.Exporter, timeout time.Duration, spans []sdktrace.ReadOnlySpan) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := x.ExportSpans(ctx, spans)
	return time.Since(start), err
}

var (
	t0 = time.Unix(1_700_000_000, 123_456_789)

	testTrace  = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	rootSpanID = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	leafSpanID = trace.SpanID{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0x8a}
)

// stubSpans are two spans of one trace, made as the SDK makes them, and
// what the receiver is to make of them.
func stubSpans() ([]sdktrace.ReadOnlySpan, []otlptest.Span) {
	res := resource.NewSchemaless(attribute.String("service.name", "gatehouse-test"), attribute.String("host.name", "h1"))
	root := trace.NewSpanContext(trace.SpanContextConfig{TraceID: testTrace, SpanID: rootSpanID, TraceFlags: trace.FlagsSampled})
	leaf := trace.NewSpanContext(trace.SpanContextConfig{TraceID: testTrace, SpanID: leafSpanID, TraceFlags: trace.FlagsSampled})
	stubs := tracetest.SpanStubs{
		{
			Name: "GET /orders", SpanContext: root, SpanKind: trace.SpanKindServer,
			StartTime: t0, EndTime: t0.Add(20 * time.Millisecond),
			Attributes: []attribute.KeyValue{
				attribute.String("http.request.method", "GET"),
				attribute.Int("http.response.status_code", 200),
				attribute.Bool("gatehouse.retried", true),
				attribute.Float64("gatehouse.weight", 1.5),
				attribute.StringSlice("gatehouse.upstreams", []string{"a", "b"}),
			},
			Events:   []sdktrace.Event{{Name: "retry", Time: t0.Add(5 * time.Millisecond)}},
			Status:   sdktrace.Status{Code: otelcodes.Ok},
			Resource: res, InstrumentationScope: stubScope,
		},
		{
			Name: "attempt", SpanContext: leaf, Parent: root, SpanKind: trace.SpanKindClient,
			StartTime: t0.Add(time.Millisecond), EndTime: t0.Add(4 * time.Millisecond),
			Attributes: []attribute.KeyValue{attribute.String("server.address", "10.0.0.7")},
			Status:     sdktrace.Status{Code: otelcodes.Error, Description: "connection refused"},
			Resource:   res, InstrumentationScope: stubScope,
		},
	}
	want := []otlptest.Span{
		{
			Service: "gatehouse-test", TraceID: testTrace.String(), SpanID: rootSpanID.String(),
			Name: "GET /orders", Kind: "server", Status: "ok",
			Attrs: map[string]string{
				"http.request.method": "GET", "http.response.status_code": "200", "gatehouse.retried": "true",
				"gatehouse.weight": "1.5", "gatehouse.upstreams": "a,b",
			},
			Start: t0, End: t0.Add(20 * time.Millisecond), Events: []string{"retry"},
		},
		{
			Service: "gatehouse-test", TraceID: testTrace.String(), SpanID: leafSpanID.String(), ParentID: rootSpanID.String(),
			Name: "attempt", Kind: "client", Status: "error",
			Attrs: map[string]string{"server.address": "10.0.0.7"},
			Start: t0.Add(time.Millisecond), End: t0.Add(4 * time.Millisecond),
		},
	}
	return stubs.Snapshots(), want
}

var stubScope = instrumentation.Scope{Name: "gatehouse", Version: "test"}

// oneSpan is a span to export when what it holds does not matter.
func oneSpan() []sdktrace.ReadOnlySpan {
	spans, _ := stubSpans()
	return spans[:1]
}

// providerSpans are spans made by a real TracerProvider, and what the
// receiver is to make of them.
func providerSpans(t *testing.T) ([]sdktrace.ReadOnlySpan, []otlptest.Span) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "provider-test"))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tr := tp.Tracer("gatehouse")
	ctx, parent := tr.Start(context.Background(), "request", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("url.path", "/x")))
	_, child := tr.Start(ctx, "upstream", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int64("attempt", 2)))
	child.AddEvent("exception")
	child.SetStatus(otelcodes.Error, "timeout")
	child.End()
	parent.End()
	spans := rec.Ended() // child first: ended first
	if len(spans) != 2 {
		t.Fatalf("the recorder has %d spans, want 2", len(spans))
	}
	c, p := spans[0], spans[1]
	want := []otlptest.Span{
		{
			Service: "provider-test", TraceID: p.SpanContext().TraceID().String(), SpanID: p.SpanContext().SpanID().String(),
			Name: "request", Kind: "server", Attrs: map[string]string{"url.path": "/x"},
			Start: p.StartTime(), End: p.EndTime(),
		},
		{
			Service: "provider-test", TraceID: p.SpanContext().TraceID().String(), SpanID: c.SpanContext().SpanID().String(),
			ParentID: p.SpanContext().SpanID().String(), Name: "upstream", Kind: "client", Status: "error",
			Attrs: map[string]string{"attempt": "2"}, Start: c.StartTime(), End: c.EndTime(), Events: []string{"exception"},
		},
	}
	return spans, want
}

// TestExportReachesReceiver exports real SDK spans over each protocol
// to a real receiver, which is to decode the same names, ids, kinds,
// attributes, statuses, times and events.
func TestExportReachesReceiver(t *testing.T) {
	sources := []struct {
		name  string
		spans func(t *testing.T) ([]sdktrace.ReadOnlySpan, []otlptest.Span)
	}{
		{"span stubs", func(*testing.T) ([]sdktrace.ReadOnlySpan, []otlptest.Span) { return stubSpans() }},
		{"a tracer provider's spans", providerSpans},
	}
	endpoints := []struct {
		name     string
		tr       transport
		endpoint func(r *otlptest.Receiver) string
	}{
		{"grpc host:port", grpcTransport, (*otlptest.Receiver).GRPCAddr},
		{"grpc http:// URL", grpcTransport, func(r *otlptest.Receiver) string { return "http://" + r.GRPCAddr() + "/" }},
		{"http base URL", httpTransport, (*otlptest.Receiver).HTTPURL},
		{"http URL with the path", httpTransport, func(r *otlptest.Receiver) string { return r.HTTPURL() + "/v1/traces" }},
	}
	for _, ep := range endpoints {
		for _, src := range sources {
			t.Run(ep.name+"/"+src.name, func(t *testing.T) {
				r := otlptest.Start(t)
				spans, want := src.spans(t)
				x := newExporter(t, otlp.Options{Protocol: ep.tr.protocol, Endpoint: ep.endpoint(r)})
				if _, err := export(x, 10*time.Second, spans); err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				if diff := cmp.Diff(want, r.Spans(), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("received spans (-want +got):\n%s", diff)
				}
				if got := r.Received(ep.tr.name); got != 1 {
					t.Errorf("the receiver took %d %s requests, want 1", got, ep.tr.name)
				}
			})
		}
	}
}

// manySpans are n spans of one trace, each with a few attributes: a
// request of some hundreds of KB, more than HTTP/2's first flow-control
// window.
func manySpans(n int) []sdktrace.ReadOnlySpan {
	res := resource.NewSchemaless(attribute.String("service.name", "gatehouse-test"))
	stubs := make(tracetest.SpanStubs, n)
	for i := range stubs {
		sid := trace.SpanID{0xff, byte(i >> 16), byte(i >> 8), byte(i)}
		stubs[i] = tracetest.SpanStub{
			Name:        "span " + strings.Repeat("x", i%50),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: testTrace, SpanID: sid, TraceFlags: trace.FlagsSampled}),
			StartTime:   t0.Add(time.Duration(i) * time.Microsecond), EndTime: t0.Add(time.Duration(i+1) * time.Microsecond),
			Attributes: []attribute.KeyValue{
				attribute.Int("i", i), attribute.String("url.full", "https://example.com/"+strings.Repeat("p", 64)),
			},
			Resource: res, InstrumentationScope: stubScope,
		}
	}
	return stubs.Snapshots()
}

// TestLargeBatch: a batch larger than HTTP/2's flow-control window and
// gzip's buffers arrives whole, over each protocol, compressed or not.
func TestLargeBatch(t *testing.T) {
	const n = 3000
	spans := manySpans(n)
	for _, tr := range transports {
		for _, compression := range []string{"none", "gzip"} {
			t.Run(tr.name+"/"+compression, func(t *testing.T) {
				r := otlptest.Start(t)
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r),
					Getenv: environ(map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": compression})})
				if _, err := export(x, 20*time.Second, spans); err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				got := r.Spans()
				if len(got) != n {
					t.Fatalf("the receiver has %d spans, want %d", len(got), n)
				}
				for _, i := range []int{0, n / 2, n - 1} {
					if got[i].Attrs["i"] != fmt.Sprint(i) || got[i].Name != spans[i].Name() {
						t.Errorf("span %d: received %q with i=%q, want %q with i=%d", i, got[i].Name, got[i].Attrs["i"], spans[i].Name(), i)
					}
				}
			})
		}
	}
}

// TestConcurrentExports: exports from several goroutines at once share
// the exporter's connections and all arrive.
func TestConcurrentExports(t *testing.T) {
	const goroutines, each = 8, 5
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			r := otlptest.Start(t)
			r.FailGRPC(3, codes.Unavailable)
			r.FailHTTP(3, http.StatusServiceUnavailable, "")
			x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r)})
			errs := make(chan error, goroutines*each)
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range each {
						_, err := export(x, 20*time.Second, oneSpan())
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("ExportSpans: %v", err)
				}
			}
			if got := r.Received(tr.name); got != goroutines*each {
				t.Errorf("the receiver took %d requests, want %d", got, goroutines*each)
			}
			if got := r.Calls(tr.name); got != goroutines*each+3 {
				t.Errorf("the receiver had %d calls, want %d (3 refused)", got, goroutines*each+3)
			}
		})
	}
}

// TestExportOfNoSpansSendsNothing: an empty batch is no request.
func TestExportOfNoSpansSendsNothing(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			r := otlptest.Start(t)
			x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r)})
			if _, err := export(x, 10*time.Second, nil); err != nil {
				t.Fatalf("ExportSpans(nil): %v", err)
			}
			if n := r.Calls(tr.name); n != 0 {
				t.Errorf("the receiver had %d calls, want 0", n)
			}
		})
	}
}

// TestRetries has the receiver refuse exports, as OTLP's receivers do
// when throttled, unavailable or given a bad request: the exporter is to
// try again what the specification calls retryable, after a backoff or
// the receiver's Retry-After, and give up at once on the rest.
func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		tr         transport
		fail       func(r *otlptest.Receiver)
		wantErr    *otlp.StatusError // nil: the export succeeds
		wantCalls  int
		minElapsed time.Duration
	}{
		{
			name: "grpc UNAVAILABLE once is retried", tr: grpcTransport,
			fail:      func(r *otlptest.Receiver) { r.FailGRPC(1, codes.Unavailable) },
			wantCalls: 2,
		},
		{
			name: "grpc UNAVAILABLE three times is retried with a growing backoff", tr: grpcTransport,
			fail:      func(r *otlptest.Receiver) { r.FailGRPC(3, codes.Unavailable) },
			wantCalls: 4,
		},
		{
			name: "grpc RESOURCE_EXHAUSTED without retry info is not retried", tr: grpcTransport,
			fail:      func(r *otlptest.Receiver) { r.FailGRPC(5, codes.ResourceExhausted) },
			wantErr:   &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 8, Message: "otlptest: refused"},
			wantCalls: 1,
		},
		{
			name: "grpc RESOURCE_EXHAUSTED with retry info is retried after its delay", tr: grpcTransport,
			fail:      func(r *otlptest.Receiver) { r.FailGRPCWithRetryInfo(1, codes.ResourceExhausted, 50*time.Millisecond) },
			wantCalls: 2, minElapsed: 50 * time.Millisecond,
		},
		{
			// Without the RetryInfo, the wait would be the backoff's
			// 10ms.
			name: "grpc UNAVAILABLE with retry info is retried after its delay, not the backoff", tr: grpcTransport,
			fail:      func(r *otlptest.Receiver) { r.FailGRPCWithRetryInfo(1, codes.Unavailable, 300*time.Millisecond) },
			wantCalls: 2, minElapsed: 250 * time.Millisecond,
		},
		{
			name: "grpc INVALID_ARGUMENT with retry info is not retried", tr: grpcTransport,
			fail: func(r *otlptest.Receiver) { r.FailGRPCWithRetryInfo(5, codes.InvalidArgument, 50*time.Millisecond) },
			wantErr: &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 3, Message: "otlptest: refused",
				RetryAfter: 50 * time.Millisecond},
			wantCalls: 1,
		},
		{
			name: "grpc INVALID_ARGUMENT is not retried", tr: grpcTransport,
			fail:      func(r *otlptest.Receiver) { r.FailGRPC(5, codes.InvalidArgument) },
			wantErr:   &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 3, Message: "otlptest: refused"},
			wantCalls: 1,
		},
		{
			name: "http 503 once is retried", tr: httpTransport,
			fail:      func(r *otlptest.Receiver) { r.FailHTTP(1, http.StatusServiceUnavailable, "") },
			wantCalls: 2,
		},
		{
			name: "http 429 is retried after its Retry-After", tr: httpTransport,
			fail:      func(r *otlptest.Receiver) { r.FailHTTP(1, http.StatusTooManyRequests, "1") },
			wantCalls: 2, minElapsed: 900 * time.Millisecond,
		},
		{
			name: "http 400 is not retried", tr: httpTransport,
			fail:      func(r *otlptest.Receiver) { r.FailHTTP(5, http.StatusBadRequest, "") },
			wantErr:   &otlp.StatusError{Protocol: otlp.HTTP, HTTPStatus: 400, Message: "otlptest: refused with 400"},
			wantCalls: 1,
		},
		{
			name: "http 500 is not retried", tr: httpTransport,
			fail:      func(r *otlptest.Receiver) { r.FailHTTP(5, http.StatusInternalServerError, "") },
			wantErr:   &otlp.StatusError{Protocol: otlp.HTTP, HTTPStatus: 500, Message: "otlptest: refused with 500"},
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := otlptest.Start(t)
			tt.fail(r)
			x := newExporter(t, otlp.Options{Protocol: tt.tr.protocol, Endpoint: tt.tr.endpoint(r)})
			elapsed, err := export(x, 20*time.Second, oneSpan())
			if got := r.Calls(tt.tr.name); got != tt.wantCalls {
				t.Errorf("the receiver had %d calls, want %d", got, tt.wantCalls)
			}
			if elapsed < tt.minElapsed {
				t.Errorf("the export took %v, want at least %v", elapsed, tt.minElapsed)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				if got := r.Received(tt.tr.name); got != 1 {
					t.Errorf("the receiver took %d requests, want 1", got)
				}
				return
			}
			se := errorAs(t, err, tt.wantErr)
			if se.Retryable() {
				t.Errorf("%v: Retryable() = true, want false", se)
			}
			if got := r.Received(tt.tr.name); got != 0 {
				t.Errorf("the receiver took %d requests, want 0", got)
			}
		})
	}
}

// TestRetryGivesUpBeforeDeadline: when the export's context would end
// before the next try, the exporter returns the refusal at once rather
// than wait for the deadline.
func TestRetryGivesUpBeforeDeadline(t *testing.T) {
	const timeout = 10 * time.Second
	tests := []struct {
		name    string
		tr      transport
		backoff time.Duration
		fail    func(r *otlptest.Receiver)
		want    *otlp.StatusError
	}{
		{
			name: "grpc UNAVAILABLE with a backoff past the deadline", tr: grpcTransport, backoff: time.Minute,
			fail: func(r *otlptest.Receiver) { r.FailGRPC(100, codes.Unavailable) },
			want: &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 14, Message: "otlptest: refused"},
		},
		{
			name: "grpc RESOURCE_EXHAUSTED with retry info past the deadline", tr: grpcTransport, backoff: 10 * time.Millisecond,
			fail: func(r *otlptest.Receiver) { r.FailGRPCWithRetryInfo(100, codes.ResourceExhausted, 2*time.Minute) },
			want: &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 8, Message: "otlptest: refused", RetryAfter: 2 * time.Minute},
		},
		{
			name: "http 503 with a backoff past the deadline", tr: httpTransport, backoff: time.Minute,
			fail: func(r *otlptest.Receiver) { r.FailHTTP(100, http.StatusServiceUnavailable, "") },
			want: &otlp.StatusError{Protocol: otlp.HTTP, HTTPStatus: 503, Message: "otlptest: refused with 503"},
		},
		{
			name: "http 429 with a Retry-After past the deadline", tr: httpTransport, backoff: 10 * time.Millisecond,
			fail: func(r *otlptest.Receiver) { r.FailHTTP(100, http.StatusTooManyRequests, "120") },
			want: &otlp.StatusError{Protocol: otlp.HTTP, HTTPStatus: 429, Message: "otlptest: refused with 429", RetryAfter: 2 * time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := otlptest.Start(t)
			tt.fail(r)
			x := newExporter(t, otlp.Options{Protocol: tt.tr.protocol, Endpoint: tt.tr.endpoint(r), Backoff: tt.backoff, MaxBackoff: tt.backoff})
			elapsed, err := export(x, timeout, oneSpan())
			se := errorAs(t, err, tt.want)
			if !se.Retryable() {
				t.Errorf("%v: Retryable() = false, want true", se)
			}
			if got := r.Calls(tt.tr.name); got != 1 {
				t.Errorf("the receiver had %d calls, want 1", got)
			}
			if elapsed > timeout/2 {
				t.Errorf("the export took %v of its %v: it waited rather than give up", elapsed, timeout)
			}
		})
	}
}

// refusingServer is a receiver that refuses every export as
// unavailable (gRPC's UNAVAILABLE, HTTP's 503), counting them, and
// closes first when it has answered the first one.
func refusingServer(t *testing.T, protocol string) (endpoint string, calls *atomic.Int64, first <-chan struct{}) {
	t.Helper()
	calls = new(atomic.Int64)
	answered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			defer close(answered)
		}
		if protocol == otlp.GRPC {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "14")
			w.WriteHeader(http.StatusOK)
		} else {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}
		w.(http.Flusher).Flush()
	})
	if protocol == otlp.GRPC {
		s := startRaw(t, func(c net.Conn) { serveHTTP2(c, h) })
		return s.addr(), calls, answered
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, calls, answered
}

// TestRetryWaitEnds: an export waiting to try again stops trying when
// its context ends or the exporter is shut down.
func TestRetryWaitEnds(t *testing.T) {
	tests := []struct {
		name    string
		backoff time.Duration
		// end ends the wait: cancel cancels the export's context.
		end     func(x *otlp.Exporter, cancel context.CancelFunc)
		cancels bool // end cancels the export's context
		// within bounds how long the export may take after end.
		within time.Duration
	}{
		{
			name: "the context cancelled", backoff: time.Minute,
			end:    func(_ *otlp.Exporter, cancel context.CancelFunc) { cancel() },
			within: 5 * time.Second, cancels: true,
		},
		{
			name: "the exporter shut down", backoff: 200 * time.Millisecond,
			end:    func(x *otlp.Exporter, _ context.CancelFunc) { x.Shutdown(context.Background()) },
			within: 5 * time.Second,
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				endpoint, calls, first := refusingServer(t, tr.protocol)
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: endpoint, Backoff: tt.backoff, MaxBackoff: tt.backoff})
				// No deadline: only end ends the export.
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- x.ExportSpans(ctx, oneSpan()) }()
				select {
				case <-first:
				case err := <-done:
					t.Fatalf("ExportSpans returned before the receiver answered: %v", err)
				}
				tt.end(x, cancel)
				ended := time.Now()
				var err error
				select {
				case err = <-done:
				case <-time.After(tt.within):
					t.Fatalf("ExportSpans still runs %v after its wait was to end", tt.within)
				}
				if elapsed := time.Since(ended); elapsed > tt.within {
					t.Errorf("ExportSpans returned %v after its wait was to end", elapsed)
				}
				// The receiver has answered, but the exporter may not
				// have read the answer yet when the wait is ended: then
				// the export ends with its context's error, or that of
				// a connection Shutdown closed.
				var se *otlp.StatusError
				switch {
				case err == nil:
					t.Error("ExportSpans succeeded")
				case errors.As(err, &se) && se.Retryable():
				case tt.cancels && errors.Is(err, context.Canceled):
				case !tt.cancels:
					t.Logf("ExportSpans: %v", err)
				default:
					t.Errorf("ExportSpans: %v (%T), want the receiver's retryable refusal", err, err)
				}
				if n := calls.Load(); n != 1 {
					t.Errorf("the receiver had %d calls, want 1", n)
				}
			})
		}
	}
}

// TestRetryInfoShorterThanTheBackoff: a receiver that asks to be tried
// again sooner than the backoff (a RetryInfo of a nanosecond) is tried
// again after the backoff all the same: a refusal answered at once
// every time is not a loop of calls.
func TestRetryInfoShorterThanTheBackoff(t *testing.T) {
	const (
		backoff = 200 * time.Millisecond
		timeout = time.Second
		// With waits of 100ms to 200ms, doubling, a second holds at
		// most 4 calls; hundreds would be a loop.
		maxCalls = 8
	)
	for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted} {
		t.Run(code.String(), func(t *testing.T) {
			r := otlptest.Start(t)
			r.FailGRPCWithRetryInfo(1_000_000, code, time.Nanosecond)
			x := newExporter(t, otlp.Options{Protocol: otlp.GRPC, Endpoint: r.GRPCAddr(), Backoff: backoff})
			_, err := export(x, timeout, oneSpan())
			if n := r.Calls("grpc"); n < 2 || n > maxCalls {
				t.Errorf("the receiver had %d calls in %v with a backoff of %v, want 2 to %d", n, timeout, backoff, maxCalls)
			}
			want := &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: int(code), Message: "otlptest: refused", RetryAfter: time.Nanosecond}
			if se, ok := errors.AsType[*otlp.StatusError](err); !ok {
				t.Errorf("ExportSpans: %v (%T), want a *otlp.StatusError", err, err)
			} else if diff := cmp.Diff(want, se); diff != "" {
				t.Errorf("the StatusError (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExportEndedDuringARetryReturnsTheRefusal: an export whose context
// ends while a retry is under way (the receiver refused it, then does
// not answer) returns the receiver's refusal, which says more than the
// context's deadline.
func TestExportEndedDuringARetryReturnsTheRefusal(t *testing.T) {
	tests := []struct {
		tr   transport
		want *otlp.StatusError
	}{
		{grpcTransport, &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 14, Message: "busy"}},
		{httpTransport, &otlp.StatusError{Protocol: otlp.HTTP, HTTPStatus: 503, Message: "busy"}},
	}
	for _, tt := range tests {
		t.Run(tt.tr.name, func(t *testing.T) {
			var calls atomic.Int64
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if calls.Add(1) > 1 {
					// Held until the exporter goes away.
					select {
					case <-r.Context().Done():
					case <-release:
					}
					return
				}
				if tt.tr.protocol == otlp.GRPC {
					w.Header().Set("Content-Type", "application/grpc")
					w.Header().Set("Grpc-Status", "14")
					w.Header().Set("Grpc-Message", "busy")
					w.WriteHeader(http.StatusOK)
					return
				}
				http.Error(w, "busy", http.StatusServiceUnavailable)
			})
			var endpoint string
			if tt.tr.protocol == otlp.GRPC {
				endpoint = startRaw(t, func(c net.Conn) { serveHTTP2(c, h) }).addr()
			} else {
				srv := httptest.NewServer(h)
				t.Cleanup(srv.Close)
				endpoint = srv.URL
			}
			t.Cleanup(func() { close(release) }) // before the servers close
			x := newExporter(t, otlp.Options{Protocol: tt.tr.protocol, Endpoint: endpoint})
			_, err := export(x, 500*time.Millisecond, oneSpan())
			errorAs(t, err, tt.want)
			if n := calls.Load(); n != 2 {
				t.Errorf("the receiver had %d calls, want 2 (the refusal, then the retry held)", n)
			}
		})
	}
}

// TestHeadersEqualButForCaseAreRefused: configured headers whose names
// differ only in case are one header (names are not case-sensitive), of
// two values: New refuses them, naming both, rather than send either.
func TestHeadersEqualButForCaseAreRefused(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			_, err := otlp.New(otlp.Options{Protocol: tr.protocol, Endpoint: "http://127.0.0.1:1",
				Headers: map[string]string{"X-Key": "a", "x-key": "b", "x-other": "c"}, Getenv: environ(nil)})
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, name := range []string{`"X-Key"`, `"x-key"`} {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("New: %v, want an error naming %s", err, name)
				}
			}
		})
	}
}

// TestHeaders: the configured headers and OTEL_EXPORTER_OTLP_HEADERS
// reach the receiver, as gRPC metadata or HTTP headers.
func TestHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		env     map[string]string
		// want is the headers the receiver is to see, among others; a
		// nil value is one it is not to see.
		want map[string][]string
	}{
		{
			name:    "the config's and the environment's arrive, the config's winning on a key",
			headers: map[string]string{"X-Config": "c", "x-shared": "from-config"},
			env:     map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x-env=e, X-Shared=from-env"},
			want:    map[string][]string{"x-config": {"c"}, "x-env": {"e"}, "x-shared": {"from-config"}},
		},
		{
			name: "the traces variable wins over the generic one",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_HEADERS":        "x-which=generic,x-generic=g",
				"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-which=traces",
			},
			want: map[string][]string{"x-which": {"traces"}, "x-generic": nil},
		},
		{
			name: "a percent-encoded value arrives decoded",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20t0k%2Cen"},
			want: map[string][]string{"authorization": {"Bearer t0k,en"}},
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				r := otlptest.Start(t)
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r), Headers: tt.headers, Getenv: environ(tt.env)})
				if _, err := export(x, 10*time.Second, oneSpan()); err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				req, ok := r.LastRequest(tr.name)
				if !ok {
					t.Fatal("the receiver saw no request")
				}
				got := map[string][]string{}
				for k := range tt.want {
					got[k] = req.Header[k]
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("headers (-want +got):\n%s\nall: %v", diff, req.Header)
				}
			})
		}
	}
}

// TestBinaryMetadataOverGRPC: a configured header whose name ends in
// -bin is gRPC's binary metadata: any bytes, which a gRPC receiver is to
// see as they were configured.
func TestBinaryMetadataOverGRPC(t *testing.T) {
	tests := []struct {
		name  string
		value string
	}{
		{"bytes that are not text", "\x00\x01\xffab"},
		{"text", "plain"},
		{"two bytes, whose base64 would be padded", "\xfe\xed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := otlptest.Start(t)
			x := newExporter(t, otlp.Options{Protocol: otlp.GRPC, Endpoint: r.GRPCAddr(), Headers: map[string]string{"X-Token-Bin": tt.value}})
			if _, err := export(x, 10*time.Second, oneSpan()); err != nil {
				t.Fatalf("ExportSpans: %v", err)
			}
			req, ok := r.LastRequest("grpc")
			if !ok {
				t.Fatal("the receiver saw no request")
			}
			if diff := cmp.Diff([]string{tt.value}, req.Header["x-token-bin"]); diff != "" {
				t.Errorf("x-token-bin (-want +got):\n%s\nall: %q", diff, req.Header)
			}
		})
	}
}

// TestHeadersThatFrameTheExportAreRefused: a configured header that
// would change the call itself (its content type, its framing, gRPC's
// own) is an error at New, from the config or from the environment; a
// configured User-Agent is sent.
func TestHeadersThatFrameTheExportAreRefused(t *testing.T) {
	for _, h := range []string{"Content-Type", "content-length", "Content-Encoding", "TE", "Upgrade", "Host", "grpc-timeout", "grpc-encoding"} {
		t.Run(h, func(t *testing.T) {
			for _, tr := range transports {
				_, err := otlp.New(otlp.Options{Protocol: tr.protocol, Endpoint: "http://127.0.0.1:1", Headers: map[string]string{h: "x"}, Getenv: environ(nil)})
				if err == nil || !strings.Contains(err.Error(), "frames the export itself") {
					t.Errorf("%s: New with header %s: %v, want it refused", tr.name, h, err)
				}
				env := environ(map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": h + "=x"})
				_, err = otlp.New(otlp.Options{Protocol: tr.protocol, Endpoint: "http://127.0.0.1:1", Getenv: env})
				if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS") {
					t.Errorf("%s: New with OTEL_EXPORTER_OTLP_HEADERS=%s=x: %v, want it refused", tr.name, h, err)
				}
			}
		})
	}
	for _, tr := range transports {
		t.Run("User-Agent over "+tr.name, func(t *testing.T) {
			r := otlptest.Start(t)
			x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r), Headers: map[string]string{"User-Agent": "mine/1.0"}})
			if _, err := export(x, 10*time.Second, oneSpan()); err != nil {
				t.Fatalf("ExportSpans: %v", err)
			}
			req, _ := r.LastRequest(tr.name)
			if ua := strings.Join(req.Header["user-agent"], " "); !strings.Contains(ua, "mine/1.0") {
				t.Errorf("user-agent %q, want the configured one", ua)
			}
		})
	}
}

// TestGzip: OTEL_EXPORTER_OTLP_COMPRESSION=gzip has the body sent
// gzip-compressed (grpc-encoding or Content-Encoding), and the receiver
// decodes the same spans.
func TestGzip(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantGzip bool
	}{
		{"gzip", map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, true},
		{"gzip for traces", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"}, true},
		{"none for traces over gzip", map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none"}, false},
		{"unset", nil, false},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				r := otlptest.Start(t)
				spans, want := stubSpans()
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r), Getenv: environ(tt.env)})
				if _, err := export(x, 10*time.Second, spans); err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				req, ok := r.LastRequest(tr.name)
				if !ok {
					t.Fatal("the receiver saw no request")
				}
				if req.Gzip != tt.wantGzip {
					t.Errorf("the request was gzipped: %v, want %v (headers %v)", req.Gzip, tt.wantGzip, req.Header)
				}
				if diff := cmp.Diff(want, r.Spans(), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("received spans (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// pki is a CA made for a test, and the files OTEL_EXPORTER_OTLP_*
// certificate variables name.
type pki struct {
	ca               *x509.CertPool
	caFile           string
	server           tls.Certificate // for 127.0.0.1 and collector.test
	clientCertFile   string
	clientKeyFile    string
	clientCommonName string
	otherCAFile      string // a CA that signed none of these
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca := testutil.NewCA(t, "otlp-test CA")
	p := &pki{ca: ca.Pool(), caFile: ca.File(t), clientCommonName: "otlp-test-exporter",
		server:      ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1", proxiedHost}}),
		otherCAFile: testutil.NewCA(t, "otlp-test other CA").File(t)}
	p.clientCertFile, p.clientKeyFile = testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{p.clientCommonName}, Client: true}))
	return p
}

// tlsWatch is a receiver's TLS configuration that counts the handshakes
// begun and keeps the client certificate's name.
type tlsWatch struct {
	hellos atomic.Int64
	mu     sync.Mutex
	client string
}

func (w *tlsWatch) config(p *pki, mutual bool) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{p.server},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			w.hellos.Add(1)
			return nil, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				w.mu.Lock()
				w.client = cs.PeerCertificates[0].Subject.CommonName
				w.mu.Unlock()
			}
			return nil
		},
	}
	if mutual {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, p.ca
	}
	return c
}

func (w *tlsWatch) clientName() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.client
}

// TestTLS exports to an https:// endpoint whose certificate is signed by
// the CA OTEL_EXPORTER_OTLP_CERTIFICATE names, with and without a
// client certificate the receiver requires.
func TestTLS(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name       string
		mutual     bool
		env        map[string]string
		wantClient string // the client certificate the receiver is to see
	}{
		{
			name: "the CA from OTEL_EXPORTER_OTLP_CERTIFICATE",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile},
		},
		{
			name: "the CA from OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE over another",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.otherCAFile, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": p.caFile},
		},
		{
			name: "mutual TLS with the client certificate and key", mutual: true,
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_CERTIFICATE":        p.caFile,
				"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": p.clientCertFile,
				"OTEL_EXPORTER_OTLP_CLIENT_KEY":         p.clientKeyFile,
			},
			wantClient: p.clientCommonName,
		},
		{
			name: "mutual TLS with the traces client certificate and key", mutual: true,
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_CERTIFICATE":               p.caFile,
				"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": p.clientCertFile,
				"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY":         p.clientKeyFile,
			},
			wantClient: p.clientCommonName,
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				var w tlsWatch
				r := otlptest.StartTLS(t, w.config(p, tt.mutual))
				spans, want := stubSpans()
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.tlsEndpoint(r), Getenv: environ(tt.env)})
				if _, err := export(x, 10*time.Second, spans); err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				if diff := cmp.Diff(want, r.Spans(), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("received spans (-want +got):\n%s", diff)
				}
				if got := w.clientName(); got != tt.wantClient {
					t.Errorf("the receiver saw client certificate %q, want %q", got, tt.wantClient)
				}
			})
		}
	}
}

// TestTLSOfAnUpperCaseScheme: an endpoint's scheme is read in any case,
// HTTPS:// as https://: the export goes over TLS.
func TestTLSOfAnUpperCaseScheme(t *testing.T) {
	p := newPKI(t)
	env := environ(map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile})
	for _, tr := range transports {
		for _, scheme := range []string{"HTTPS", "Https"} {
			t.Run(tr.name+"/"+scheme, func(t *testing.T) {
				var w tlsWatch
				r := otlptest.StartTLS(t, w.config(p, false))
				endpoint := scheme + "://" + r.GRPCAddr()
				if tr.protocol == otlp.HTTP {
					endpoint = scheme + strings.TrimPrefix(r.HTTPURL(), "https")
				}
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: endpoint, Getenv: env})
				if _, err := export(x, 10*time.Second, oneSpan()); err != nil {
					t.Fatalf("ExportSpans to %s: %v", endpoint, err)
				}
				if n := r.Received(tr.name); n != 1 {
					t.Errorf("the receiver took %d requests, want 1", n)
				}
				if n := w.hellos.Load(); n != 1 {
					t.Errorf("the receiver saw %d TLS handshakes, want 1", n)
				}
			})
		}
	}
}

// TestTLSRefused: a receiver whose certificate the exporter cannot
// verify is not exported to, nor tried again (the next try would fail
// the same way): the export returns well before its deadline.
func TestTLSRefused(t *testing.T) {
	p := newPKI(t)
	const timeout = 10 * time.Second
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"without a CA", nil},
		{"with a CA that did not sign the receiver's certificate", map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.otherCAFile}},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				var w tlsWatch
				r := otlptest.StartTLS(t, w.config(p, false))
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.tlsEndpoint(r), Getenv: environ(tt.env)})
				elapsed, err := export(x, timeout, oneSpan())
				var ce *tls.CertificateVerificationError
				if !errors.As(err, &ce) {
					t.Fatalf("ExportSpans: %v (%T), want a *tls.CertificateVerificationError", err, err)
				}
				if n := w.hellos.Load(); n != 1 {
					t.Errorf("the receiver saw %d TLS handshakes, want 1: the export was retried", n)
				}
				if elapsed > timeout/2 {
					t.Errorf("the export took %v of its %v", elapsed, timeout)
				}
				if n := r.Calls(tr.name); n != 0 {
					t.Errorf("the receiver had %d calls, want 0", n)
				}
			})
		}
	}
}

// TestMutualTLSWithoutClientCertificate: a receiver that requires a
// client certificate the exporter does not have takes nothing, and its
// TLS alert is not tried again (the next handshake would be refused the
// same way): the export returns well before its deadline.
func TestMutualTLSWithoutClientCertificate(t *testing.T) {
	p := newPKI(t)
	// The refusal comes as an alert or, under TLS 1.3, as a reset after
	// the handshake has ended on this side: it is retried, within the
	// export's time.
	const timeout = time.Second
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			var w tlsWatch
			r := otlptest.StartTLS(t, w.config(p, true))
			x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.tlsEndpoint(r),
				Getenv: environ(map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile})})
			if _, err := export(x, timeout, oneSpan()); err == nil {
				t.Fatal("ExportSpans succeeded without the client certificate the receiver requires")
			}
			if n := r.Calls(tr.name); n != 0 {
				t.Errorf("the receiver had %d calls, want 0", n)
			}
		})
	}
}

// rawServer is a TCP server on loopback that does with each connection
// what serve says, for receivers that misbehave. Its connections close
// when serve returns, and all of them when the test ends.
type rawServer struct {
	ln       net.Listener
	wg       sync.WaitGroup
	accepted atomic.Int64

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func startRaw(t *testing.T, serve func(net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startRawOn(t, ln, serve)
}

// startRawOn is startRaw on a listener of the caller's.
func startRawOn(t *testing.T, ln net.Listener, serve func(net.Conn)) *rawServer {
	t.Helper()
	s := &rawServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

// TestUnreachableReceivers: receivers that close the connection, answer
// what is not HTTP, or never answer fail the export by its deadline.
func TestUnreachableReceivers(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name  string
		serve func(net.Conn)
		// wantDeadline says the error is to be the context's.
		wantDeadline bool
	}{
		{name: "closes at once", serve: func(net.Conn) {}},
		{name: "answers garbage", serve: func(c net.Conn) {
			c.Write([]byte("\x00\x00\x12\x07garbage that is no HTTP at all\r\n\r\n"))
		}},
		{name: "answers garbage after reading the request", serve: func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 4096))
			c.Write([]byte("HTTP/9.9 garbage\r\n\x00\x01\x02\r\n\r\n"))
		}},
		{name: "never answers", serve: func(c net.Conn) { io.Copy(io.Discard, c) }, wantDeadline: true},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				s := startRaw(t, tt.serve)
				endpoint := s.addr()
				if tr.protocol == otlp.HTTP {
					endpoint = "http://" + endpoint
				}
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: endpoint})
				elapsed, err := export(x, timeout, oneSpan())
				if err == nil {
					t.Fatal("ExportSpans succeeded")
				}
				if tt.wantDeadline && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("ExportSpans: %v, want the context's deadline", err)
				}
				if elapsed > timeout+3*time.Second {
					t.Errorf("the export took %v, past its %v", elapsed, timeout)
				}
				if s.accepted.Load() == 0 {
					t.Error("the exporter never connected")
				}
			})
		}
	}
}

// grpcAnswer writes an answer to a gRPC call: one empty message, then
// trailers (a nil trailer leaves out the trailers).
func grpcAnswer(w http.ResponseWriter, contentType string, trailer map[string]string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	w.Write([]byte{0, 0, 0, 0, 0})
	for k, v := range trailer {
		w.Header().Set(http.TrailerPrefix+k, v)
	}
}

// statusDetailsBin is a grpc-status-details-bin value: a
// google.rpc.Status of code whose details hold a RetryInfo of delay, in
// base64 of enc.
func statusDetailsBin(t *testing.T, code codes.Code, delay time.Duration, enc *base64.Encoding) string {
	t.Helper()
	st, err := status.New(code, "").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(st.Proto())
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeToString(b)
}

// TestMisbehavingGRPCReceivers: an HTTP/2 server that answers a gRPC
// call in ways gRPC does not fails the export, and one that is not
// retried as it would be answered the same.
func TestMisbehavingGRPCReceivers(t *testing.T) {
	bigBody := make([]byte, 10<<20)
	// grpc-go sends grpc-status-details-bin unpadded; a receiver may
	// pad it.
	paddedDetails := statusDetailsBin(t, codes.InvalidArgument, 250*time.Millisecond, base64.StdEncoding)
	zeroRetryInfo := statusDetailsBin(t, codes.ResourceExhausted, 0, base64.RawStdEncoding)
	if !strings.HasSuffix(paddedDetails, "=") {
		t.Fatalf("grpc-status-details-bin %q has no padding to test", paddedDetails)
	}
	tests := []struct {
		name   string
		handle func(call int, w http.ResponseWriter, r *http.Request)
		// want is the refusal wanted; wantErr says any error that is
		// not a refusal will do; neither, that the export succeeds.
		want      *otlp.StatusError
		wantErr   bool
		wantCalls int
	}{
		{
			name: "well-formed OK",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc", map[string]string{"Grpc-Status": "0"})
			},
			wantCalls: 1,
		},
		{
			name: "trailers-only UNAVAILABLE, then OK",
			handle: func(call int, w http.ResponseWriter, _ *http.Request) {
				if call == 1 {
					w.Header().Set("Content-Type", "application/grpc")
					w.Header().Set("Grpc-Status", "14")
					w.WriteHeader(http.StatusOK)
					return
				}
				grpcAnswer(w, "application/grpc+proto", map[string]string{"Grpc-Status": "0"})
			},
			wantCalls: 2,
		},
		{
			name: "200 without grpc-status",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc", nil)
			},
			wantErr: true, wantCalls: 1,
		},
		{
			name: "grpc-status that is no number",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc", map[string]string{"Grpc-Status": "abc"})
			},
			wantErr: true, wantCalls: 1,
		},
		{
			name: "grpc-status out of range is UNKNOWN",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc", map[string]string{"Grpc-Status": "17"})
			},
			want: &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 2}, wantCalls: 1,
		},
		{
			name: "a content type that is not gRPC's",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "<html>hello</html>")
			},
			wantErr: true, wantCalls: 1,
		},
		{
			name: "a content type of gRPC-Web is not gRPC's",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc-web", map[string]string{"Grpc-Status": "0"})
			},
			wantErr: true, wantCalls: 1,
		},
		{
			name: "a content type of gRPC-Web with its codec is not gRPC's",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc-web+proto", map[string]string{"Grpc-Status": "0"})
			},
			wantErr: true, wantCalls: 1,
		},
		{
			name: "a content type of gRPC with its codec",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc+proto", map[string]string{"Grpc-Status": "0"})
			},
			wantCalls: 1,
		},
		{
			name: "retry info in padded grpc-status-details-bin",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc", map[string]string{"Grpc-Status": "3", "Grpc-Status-Details-Bin": paddedDetails})
			},
			want: &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 3, RetryAfter: 250 * time.Millisecond}, wantCalls: 1,
		},
		{
			name: "a 10 MB answer",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.WriteHeader(http.StatusOK)
				w.Write(bigBody)
			},
			wantErr: true, wantCalls: 1,
		},
		{
			// A RetryInfo says when: RESOURCE_EXHAUSTED may be retried,
			// and at once.
			name: "RESOURCE_EXHAUSTED with a RetryInfo of no delay, then OK",
			handle: func(call int, w http.ResponseWriter, _ *http.Request) {
				if call == 1 {
					grpcAnswer(w, "application/grpc", map[string]string{"Grpc-Status": "8", "Grpc-Status-Details-Bin": zeroRetryInfo})
					return
				}
				grpcAnswer(w, "application/grpc", map[string]string{"Grpc-Status": "0"})
			},
			wantCalls: 2,
		},
		{
			name: "a percent-encoded grpc-message",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				grpcAnswer(w, "application/grpc", map[string]string{"Grpc-Status": "3", "Grpc-Message": "bad%20span%21"})
			},
			want: &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 3, Message: "bad span!"}, wantCalls: 1,
		},
		{
			name: "HTTP 404",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				http.NotFound(w, nil)
			},
			want: &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 404, GRPCCode: 12}, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				tt.handle(int(calls.Add(1)), w, r)
			})
			s := startRaw(t, func(c net.Conn) { serveHTTP2(c, h) })
			x := newExporter(t, otlp.Options{Protocol: otlp.GRPC, Endpoint: s.addr()})
			_, err := export(x, 10*time.Second, oneSpan())
			if got := int(calls.Load()); got != tt.wantCalls {
				t.Errorf("the receiver had %d calls, want %d", got, tt.wantCalls)
			}
			var se *otlp.StatusError
			switch {
			case tt.want != nil:
				errorAs(t, err, tt.want)
			case tt.wantErr:
				if err == nil {
					t.Fatal("ExportSpans succeeded")
				}
				if errors.As(err, &se) {
					t.Errorf("ExportSpans: %v, a refusal: want an answer that is not gRPC's", err)
				}
			default:
				if err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
			}
		})
	}
}

// TestLargeHTTPAnswers: an OTLP/HTTP receiver that answers with a body
// of 10 MB has the export return (what is read of it is bounded).
func TestLargeHTTPAnswers(t *testing.T) {
	bigBody := []byte(strings.Repeat("0123456789abcdef", (10<<20)/16))
	tests := []struct {
		name   string
		status int
		want   *otlp.StatusError // nil: the export succeeds
	}{
		{name: "200", status: http.StatusOK},
		{name: "500", status: http.StatusInternalServerError, want: &otlp.StatusError{Protocol: otlp.HTTP, HTTPStatus: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, calls := httpReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(tt.status)
				w.Write(bigBody)
			})
			x := newExporter(t, otlp.Options{Protocol: otlp.HTTP, Endpoint: url})
			_, err := export(x, 10*time.Second, oneSpan())
			if n := calls.Load(); n != 1 {
				t.Errorf("the receiver had %d calls, want 1", n)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				return
			}
			var se *otlp.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("ExportSpans: %v (%T), want a *otlp.StatusError", err, err)
			}
			if len(se.Message) > 300 {
				t.Errorf("the error's message is %d bytes long, want it cut short", len(se.Message))
			}
			if diff := cmp.Diff(tt.want, se, cmpopts.IgnoreFields(otlp.StatusError{}, "Message")); diff != "" {
				t.Errorf("the StatusError (-want +got):\n%s", diff)
			}
		})
	}
}

// TestShutdown: an exporter that was shut down exports nothing more.
func TestShutdown(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			r := otlptest.Start(t)
			x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r)})
			if _, err := export(x, 10*time.Second, oneSpan()); err != nil {
				t.Fatalf("ExportSpans: %v", err)
			}
			if err := x.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			for _, spans := range [][]sdktrace.ReadOnlySpan{oneSpan(), nil} {
				if _, err := export(x, 10*time.Second, spans); !errors.Is(err, otlp.ErrStopped) {
					t.Errorf("ExportSpans of %d spans after Shutdown: %v, want ErrStopped", len(spans), err)
				}
			}
			if err := x.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown again: %v", err)
			}
			if n := r.Calls(tr.name); n != 1 {
				t.Errorf("the receiver had %d calls, want 1", n)
			}
		})
	}
}

// TestShutdownClosesConnections: once an exporter is shut down, nothing
// of it is left running, though its receiver still is.
func TestShutdownClosesConnections(t *testing.T) {
	p := newPKI(t)
	env := environ(map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile})
	for _, tr := range transports {
		for _, secure := range []bool{false, true} {
			name := tr.name
			if secure {
				name += " TLS"
			}
			t.Run(name, func(t *testing.T) {
				var r *otlptest.Receiver
				endpoint := ""
				if secure {
					var w tlsWatch
					r = otlptest.StartTLS(t, w.config(p, false))
					endpoint = tr.tlsEndpoint(r)
				} else {
					r = otlptest.Start(t)
					endpoint = tr.endpoint(r)
				}
				before := goleak.IgnoreCurrent()
				x, err := otlp.New(otlp.Options{Protocol: tr.protocol, Endpoint: endpoint, Getenv: env, Backoff: 10 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := export(x, 10*time.Second, oneSpan()); err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				if err := x.Shutdown(context.Background()); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				goleak.VerifyNone(t, before)
			})
		}
	}
}

// shutdownCase is an exporter's protocol over a plain or a TLS
// connection; over TLS, both protocols speak HTTP/2.
type shutdownCase struct {
	tr     transport
	secure bool
}

func shutdownCases() []shutdownCase {
	var cases []shutdownCase
	for _, tr := range transports {
		for _, secure := range []bool{false, true} {
			cases = append(cases, shutdownCase{tr, secure})
		}
	}
	return cases
}

func (c shutdownCase) name() string {
	if c.secure {
		return c.tr.name + " TLS"
	}
	return c.tr.name
}

// serverConn is c, after a TLS handshake offering HTTP/2 alone when
// secure; nil when the handshake fails.
func (c shutdownCase) serverConn(p *pki, conn net.Conn) net.Conn {
	if !c.secure {
		return conn
	}
	tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{p.server}, NextProtos: []string{"h2"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil
	}
	return tc
}

// endpoint is the exporter's endpoint of a server at addr, and its
// environment.
func (c shutdownCase) endpoint(p *pki, addr string) (string, func(string) string) {
	switch {
	case c.secure:
		return "https://" + addr, environ(map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile})
	case c.tr.protocol == otlp.HTTP:
		return "http://" + addr, environ(nil)
	}
	return addr, environ(nil)
}

// TestShutdownAfterAbandonedExport: an export abandoned at its deadline
// (the receiver never answered) leaves nothing running once the
// exporter is shut down, though the receiver still holds its end.
func TestShutdownAfterAbandonedExport(t *testing.T) {
	p := newPKI(t)
	for _, c := range shutdownCases() {
		t.Run(c.name(), func(t *testing.T) {
			s := startRaw(t, func(conn net.Conn) {
				if conn = c.serverConn(p, conn); conn != nil {
					io.Copy(io.Discard, conn)
				}
			})
			endpoint, env := c.endpoint(p, s.addr())
			before := goleak.IgnoreCurrent()
			x, err := otlp.New(otlp.Options{Protocol: c.tr.protocol, Endpoint: endpoint, Getenv: env, Backoff: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := export(x, 300*time.Millisecond, oneSpan()); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("ExportSpans: %v, want the context's deadline", err)
			}
			if err := x.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			goleak.VerifyNone(t, before)
		})
	}
}

// TestShutdownDuringExport: an exporter shut down while an export is
// under way leaves nothing running once that export has returned: the
// connection it used is not kept for exports that can no longer come.
func TestShutdownDuringExport(t *testing.T) {
	p := newPKI(t)
	for _, c := range shutdownCases() {
		t.Run(c.name(), func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				once.Do(func() { close(entered) })
				<-release
				if c.tr.protocol == otlp.GRPC {
					grpcAnswer(w, "application/grpc", map[string]string{"Grpc-Status": "0"})
					return
				}
				w.Header().Set("Content-Type", "application/x-protobuf")
			})
			s := startRaw(t, func(conn net.Conn) {
				if conn = c.serverConn(p, conn); conn == nil {
					return
				}
				if c.secure || c.tr.protocol == otlp.GRPC {
					serveHTTP2(conn, h)
					return
				}
				(&http.Server{Handler: h}).Serve(&oneConnListener{c: conn, addr: conn.LocalAddr()})
			})
			endpoint, env := c.endpoint(p, s.addr())
			before := goleak.IgnoreCurrent()
			x, err := otlp.New(otlp.Options{Protocol: c.tr.protocol, Endpoint: endpoint, Getenv: env, Backoff: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := export(x, 10*time.Second, oneSpan())
				done <- err
			}()
			select {
			case <-entered:
			case err := <-done:
				close(release)
				t.Fatalf("ExportSpans returned before the receiver answered: %v", err)
			}
			if err := x.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			close(release)
			if err := <-done; err != nil {
				t.Logf("the export under way at Shutdown: %v", err)
			}
			goleak.VerifyNone(t, before)
		})
	}
}

// serveHTTP2 serves HTTP/2 with prior knowledge on one connection (a
// TLS one that negotiated h2 included) until it closes.
func serveHTTP2(c net.Conn, h http.Handler) {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	(&http.Server{Handler: h, Protocols: p}).Serve(&oneConnListener{c: c, addr: c.LocalAddr()})
}

// oneConnListener is a net.Listener of one connection, to serve HTTP/1
// on a rawServer's connection: Accept hands out c, then blocks until
// the connection is closed.
type oneConnListener struct {
	c    net.Conn
	addr net.Addr
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	c, done := l.c, l.done
	l.c = nil
	l.mu.Unlock()
	if c != nil {
		return &notifyConn{Conn: c, closed: func() { l.Close() }}, nil
	}
	<-done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.mu.Lock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	l.mu.Unlock()
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }

// notifyConn calls closed when it is closed.
type notifyConn struct {
	net.Conn
	closed func()
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.closed()
	return err
}

// errorAs fails t unless err is an error of want's type equal to want,
// and returns it.
func errorAs[T any, PT interface {
	*T
	error
}](t *testing.T, err error, want PT) PT {
	t.Helper()
	var got PT
	if !errors.As(err, &got) {
		t.Fatalf("ExportSpans: %v (%T), want a %T", err, err, want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the %T (-want +got):\n%s", want, diff)
	}
	return got
}

// httpReceiver serves h on loopback as an OTLP/HTTP receiver until the
// test ends, counting the requests (each body read before h runs), and
// returns its URL and the count.
func httpReceiver(t *testing.T, h http.HandlerFunc) (string, *atomic.Int64) {
	t.Helper()
	calls := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(io.Discard, r.Body)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, calls
}
