package otlp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/gatehouse/gatehouse/internal/otlp"
	"github.com/gatehouse/gatehouse/internal/tracing/otlptest"
)

// spansWithLongPaths are n spans, each with a url.path of size bytes,
// as a client's long request line makes them.
func spansWithLongPaths(n, size int) []sdktrace.ReadOnlySpan {
	res := resource.NewSchemaless(attribute.String("service.name", "gatehouse-test"))
	path := "/" + strings.Repeat("p", size-1)
	stubs := make(tracetest.SpanStubs, n)
	for i := range stubs {
		sid := trace.SpanID{0xfe, byte(i >> 16), byte(i >> 8), byte(i)}
		stubs[i] = tracetest.SpanStub{
			Name:        "GET",
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: testTrace, SpanID: sid, TraceFlags: trace.FlagsSampled}),
			StartTime:   t0, EndTime: t0.Add(time.Millisecond),
			Attributes: []attribute.KeyValue{attribute.Int("i", i), attribute.String("url.path", path)},
			Resource:   res, InstrumentationScope: stubScope,
		}
	}
	return stubs.Snapshots()
}

// TestBatchPastTheMessageLimitIsSentInParts: a batch whose request
// would pass 4 MiB, the most a gRPC receiver takes by default (the
// OpenTelemetry Collector's too), goes as several requests, each taken,
// rather than as one the receiver refuses whole.
func TestBatchPastTheMessageLimitIsSentInParts(t *testing.T) {
	const n = 40
	spans := spansWithLongPaths(n, 128<<10) // 5 MiB in all
	for _, tr := range transports {
		for _, compression := range []string{"none", "gzip"} {
			t.Run(tr.name+"/"+compression, func(t *testing.T) {
				r := otlptest.Start(t)
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r),
					Getenv: environ(map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": compression})})
				if _, err := export(x, time.Minute, spans); err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				if got := len(r.Spans()); got != n {
					t.Errorf("the receiver has %d spans, want %d", got, n)
				}
				if got := r.Received(tr.name); got < 2 {
					t.Errorf("the receiver took %d requests, want the batch in several", got)
				}
			})
		}
	}
}

// TestBatchInPartsWithAPartRefused: of a batch sent in parts, the spans
// of a part the receiver refuses are counted as not taken, with the
// refusal, and the other parts are taken.
func TestBatchInPartsWithAPartRefused(t *testing.T) {
	const n = 40
	spans := spansWithLongPaths(n, 128<<10) // 5 MiB: two parts of 20
	r := otlptest.Start(t)
	r.FailGRPC(1, codes.InvalidArgument)
	x := newExporter(t, otlp.Options{Protocol: otlp.GRPC, Endpoint: r.GRPCAddr()})
	_, err := export(x, time.Minute, spans)
	var pe *otlp.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("ExportSpans: %v (%T), want a *otlp.PartialError", err, err)
	}
	if pe.Rejected != n/2 {
		t.Errorf("ExportSpans: %v, want %d spans not taken", err, n/2)
	}
	var se *otlp.StatusError
	if !errors.As(err, &se) || se.GRPCCode != int(codes.InvalidArgument) {
		t.Errorf("ExportSpans: %v, want it to hold the INVALID_ARGUMENT refusal", err)
	}
	if got := len(r.Spans()); got != n/2 {
		t.Errorf("the receiver has %d spans, want %d", got, n/2)
	}
}
