package otlp_test

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/gatehouse/gatehouse/internal/otlp"
)

// roundTripFunc lets the official exporter's request be kept rather
// than sent.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// officialRequest is what OpenTelemetry's own OTLP/HTTP exporter sends
// for spans: the oracle the encoder is held to.
func officialRequest(t testing.TB, spans []sdktrace.ReadOnlySpan) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	var body []byte
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		body = b
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-protobuf"}},
			Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
	})}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithHTTPClient(client),
		otlptracehttp.WithEndpoint("127.0.0.1:4318"), otlptracehttp.WithInsecure(), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatalf("the official exporter: %v", err)
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	return &req
}

// ours decodes what AppendRequest writes, as a receiver would.
func ours(t testing.TB, spans []sdktrace.ReadOnlySpan) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(otlp.AppendRequest(nil, spans), &req); err != nil {
		t.Fatalf("a receiver cannot read the request: %v", err)
	}
	return &req
}

// normalized puts what is in no set order (the official exporter's
// resources and scopes come out of a map) into one, and leaves out
// links' trace state, which the official exporter does not send.
func normalized(req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceRequest {
	req = proto.CloneOf(req)
	key := func(m proto.Message) string {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		return string(b)
	}
	slices.SortStableFunc(req.ResourceSpans, func(a, b *tracepb.ResourceSpans) int {
		return cmp.Compare(key(a.GetResource()), key(b.GetResource()))
	})
	for _, rs := range req.ResourceSpans {
		slices.SortStableFunc(rs.ScopeSpans, func(a, b *tracepb.ScopeSpans) int {
			return cmp.Compare(key(a.GetScope()), key(b.GetScope()))
		})
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				for _, l := range sp.Links {
					l.TraceState = ""
				}
			}
		}
	}
	return req
}

func requireSameAsOfficial(t testing.TB, input, sanitized []sdktrace.ReadOnlySpan) {
	t.Helper()
	want := normalized(officialRequest(t, sanitized))
	got := normalized(ours(t, input))
	if diff := gocmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("the request differs from the official exporter's (-official +ours):\n%s", diff)
	}
}

var (
	traceA = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanA  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	spanB  = trace.SpanID{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
)

func spanContext(tid trace.TraceID, sid trace.SpanID, remote bool, state string) trace.SpanContext {
	ts, _ := trace.ParseTraceState(state)
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: remote})
}

func TestRequestIsTheOfficialExportersRequest(t *testing.T) {
	start := time.Date(2026, 12, 5, 14, 0, 0, 123456789, time.UTC)
	gatehouse := resource.NewSchemaless(attribute.String("service.name", "gatehouse"), attribute.Int("pid", 42))
	other := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "other"))
	scope := instrumentation.Scope{Name: "github.com/gatehouse/gatehouse/internal/gateway", Version: "v1", SchemaURL: "https://example.com/s",
		Attributes: attribute.NewSet(attribute.Bool("scoped", true))}
	tests := []struct {
		name  string
		spans tracetest.SpanStubs
	}{
		{"a server span with a remote parent", tracetest.SpanStubs{{
			Name: "GET /", SpanKind: trace.SpanKindServer, StartTime: start, EndTime: start.Add(1500 * time.Microsecond),
			SpanContext: spanContext(traceA, spanB, false, "vendor=1,other=x"), Parent: spanContext(traceA, spanA, true, ""),
			Attributes: []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 502)},
			Status:     sdktrace.Status{Code: codes.Error, Description: "upstream_reset"},
			Resource:   gatehouse, InstrumentationScope: scope,
		}}},
		{"every attribute type, events, links and dropped counts", tracetest.SpanStubs{{
			Name: "attempt", SpanKind: trace.SpanKindClient, StartTime: start, EndTime: start.Add(time.Millisecond),
			SpanContext: spanContext(traceA, spanA, false, ""),
			Attributes: []attribute.KeyValue{
				attribute.Bool("t", true), attribute.Bool("f", false), attribute.Int64("zero", 0), attribute.Int64("neg", -7),
				attribute.Float64("pi", math.Pi), attribute.Float64("fzero", 0), attribute.String("empty", ""),
				attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, 0, -1}),
				attribute.Float64Slice("fs", []float64{0.5, 0}), attribute.StringSlice("ss", []string{"a", ""}),
				attribute.ByteSlice("raw", []byte{0, 1, 0xff}), attribute.ByteSlice("noraw", nil),
				attribute.Slice("mixed", attribute.IntValue(1), attribute.StringValue("x"), attribute.SliceValue(attribute.BoolValue(true))),
				attribute.Map("map", attribute.String("k", "v"), attribute.Map("inner", attribute.Int("n", 1))),
				{Key: "nothing"},
			},
			Events: []sdktrace.Event{{Name: "exception", Time: start.Add(10 * time.Microsecond),
				Attributes: []attribute.KeyValue{attribute.String("exception.message", "boom")}, DroppedAttributeCount: 2}},
			Links: []sdktrace.Link{{SpanContext: spanContext(traceA, spanB, true, "k=v"),
				Attributes: []attribute.KeyValue{attribute.String("why", "retry")}, DroppedAttributeCount: 1}},
			DroppedAttributes: 3, DroppedEvents: 4, DroppedLinks: 5,
			Status:   sdktrace.Status{Code: codes.Ok},
			Resource: gatehouse, InstrumentationScope: scope,
		}}},
		{"spans of two resources and two scopes", tracetest.SpanStubs{
			{Name: "a", SpanContext: spanContext(traceA, spanA, false, ""), StartTime: start, EndTime: start, Resource: gatehouse, InstrumentationScope: scope},
			{Name: "b", SpanContext: spanContext(traceA, spanB, false, ""), StartTime: start, EndTime: start, Resource: other, InstrumentationScope: scope},
			{Name: "c", SpanContext: spanContext(traceA, spanB, false, ""), StartTime: start, EndTime: start, Resource: gatehouse,
				InstrumentationScope: instrumentation.Scope{Name: "second"}},
			{Name: "d", SpanContext: spanContext(traceA, spanA, false, ""), StartTime: start, EndTime: start, Resource: gatehouse, InstrumentationScope: scope},
		}},
		{"times before 1970 and no resource", tracetest.SpanStubs{{
			Name: "old", SpanContext: spanContext(traceA, spanA, false, ""), StartTime: time.Unix(-5, 0), EndTime: time.Time{},
			SpanKind: trace.SpanKind(99),
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := tt.spans.Snapshots()
			requireSameAsOfficial(t, spans, spans)
		})
	}
}

// A string that is not UTF-8 (a client's bytes, in an attribute) is
// sent with its bad bytes replaced: protobuf's strings must be UTF-8,
// and a receiver would refuse the whole batch over it. The official
// exporter fails such a batch; what is compared is its request for the
// same spans with the replacement made first.
func TestStringsThatAreNotUTF8AreMadeValid(t *testing.T) {
	bad := "caf\xe9 \xff"
	stub := func(s string) tracetest.SpanStubs {
		return tracetest.SpanStubs{{
			Name: s, SpanContext: spanContext(traceA, spanA, false, ""), StartTime: time.Unix(1, 0), EndTime: time.Unix(2, 0),
			Attributes: []attribute.KeyValue{attribute.String("user_agent."+s, s), attribute.StringSlice("list", []string{s})},
			Status:     sdktrace.Status{Code: codes.Error, Description: s},
		}}
	}
	requireSameAsOfficial(t, stub(bad).Snapshots(), stub(strings.ToValidUTF8(bad, "\uFFFD")).Snapshots())
}

// FuzzRequestIsTheOfficialExportersRequest builds spans of every shape
// from the fuzzer's bytes and holds the request written for them to the
// official exporter's.
func FuzzRequestIsTheOfficialExportersRequest(f *testing.F) {
	f.Add([]byte("\x02\x05hello\x03\x01\x00\x07\x02ab"))
	f.Add([]byte("\x01\x09\x09\x09\x09\x09\x09\x08\x08\x08\xff\xfe\x00"))
	f.Add(bytes.Repeat([]byte{0x0a, 0x0b, 0x03}, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &spanGen{b: data}
		raw, clean := g.spans()
		requireSameAsOfficial(t, raw, clean)
	})
}

// spanGen makes spans from bytes, twice over: as given, and with their
// strings made valid UTF-8 (what the official exporter is given).
type spanGen struct{ b []byte }

func (g *spanGen) next() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *spanGen) str() string {
	n := min(int(g.next()%8), len(g.b))
	s := string(g.b[:n])
	g.b = g.b[n:]
	return s
}

func (g *spanGen) int() int64 { return int64(int8(g.next())) * int64(g.next()+1) * 1e6 }

func (g *spanGen) float() float64 {
	v := float64(g.int()) / 7
	if g.next()%5 == 0 {
		v = math.Inf(1)
	}
	return v
}

// value returns the same value twice, the second with valid strings.
func (g *spanGen) value(depth int) (attribute.Value, attribute.Value) {
	clean := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	switch k := g.next() % 13; {
	case k == 0:
		v := attribute.BoolValue(g.next()%2 == 0)
		return v, v
	case k == 1:
		v := attribute.Int64Value(g.int())
		return v, v
	case k == 2:
		v := attribute.Float64Value(g.float())
		return v, v
	case k == 3:
		s := g.str()
		return attribute.StringValue(s), attribute.StringValue(clean(s))
	case k == 4:
		v := attribute.BoolSliceValue([]bool{g.next()%2 == 0, g.next()%2 == 0})
		return v, v
	case k == 5:
		v := attribute.Int64SliceValue([]int64{g.int(), g.int()})
		return v, v
	case k == 6:
		v := attribute.Float64SliceValue([]float64{g.float()})
		return v, v
	case k == 7:
		a, b := g.str(), g.str()
		return attribute.StringSliceValue([]string{a, b}), attribute.StringSliceValue([]string{clean(a), clean(b)})
	case k == 8:
		v := attribute.ByteSliceValue([]byte(g.str()))
		return v, v
	case k == 9 && depth < 4:
		var raw, cl []attribute.Value
		for range g.next() % 3 {
			r, c := g.value(depth + 1)
			raw, cl = append(raw, r), append(cl, c)
		}
		return attribute.SliceValue(raw...), attribute.SliceValue(cl...)
	case k == 10 && depth < 4:
		var raw, cl []attribute.KeyValue
		for range g.next() % 3 {
			// A map's keys are sorted, so bad bytes in them would
			// sort the two maps differently: valid ones only.
			key := attribute.Key(clean(g.str()))
			r, c := g.value(depth + 1)
			raw, cl = append(raw, attribute.KeyValue{Key: key, Value: r}), append(cl, attribute.KeyValue{Key: key, Value: c})
		}
		return attribute.MapValue(raw...), attribute.MapValue(cl...)
	}
	return attribute.Value{}, attribute.Value{}
}

func (g *spanGen) attrs() ([]attribute.KeyValue, []attribute.KeyValue) {
	var raw, cl []attribute.KeyValue
	for i := range g.next() % 4 {
		key := string(rune('a'+i)) + g.str()
		r, c := g.value(0)
		raw = append(raw, attribute.KeyValue{Key: attribute.Key(key), Value: r})
		cl = append(cl, attribute.KeyValue{Key: attribute.Key(strings.ToValidUTF8(key, "\uFFFD")), Value: c})
	}
	return raw, cl
}

func (g *spanGen) spans() (raw, clean []sdktrace.ReadOnlySpan) {
	resources := []*resource.Resource{
		resource.NewSchemaless(attribute.String("service.name", "gatehouse")),
		resource.NewSchemaless(attribute.String("service.name", "other")),
	}
	scopes := []instrumentation.Scope{{Name: "gateway"}, {Name: "other", Version: "2"}}
	for i := range 1 + g.next()%3 {
		name := g.str()
		var tid trace.TraceID
		var sid trace.SpanID
		tid[0], sid[0] = 1, byte(i+1)
		a, ac := g.attrs()
		s := tracetest.SpanStub{
			Name: name, SpanKind: trace.SpanKind(g.next() % 7),
			SpanContext: spanContext(tid, sid, false, ""),
			StartTime:   time.Unix(0, g.int()+1e18), EndTime: time.Unix(0, g.int()+1e18),
			Attributes: a, DroppedAttributes: int(g.next() % 3),
			Resource: resources[g.next()%2], InstrumentationScope: scopes[g.next()%2],
		}
		if g.next()%2 == 0 {
			s.Parent = spanContext(tid, trace.SpanID{9}, g.next()%2 == 0, "")
		}
		desc := g.str()
		s.Status = sdktrace.Status{Code: codes.Code(g.next() % 3), Description: desc}
		c := s
		c.Name, c.Attributes = strings.ToValidUTF8(name, "\uFFFD"), ac
		c.Status.Description = strings.ToValidUTF8(desc, "\uFFFD")
		if g.next()%2 == 0 {
			ea, eac := g.attrs()
			ev := sdktrace.Event{Name: "ev", Time: time.Unix(3, 0), Attributes: ea}
			s.Events = []sdktrace.Event{ev}
			ev.Attributes = eac
			c.Events = []sdktrace.Event{ev}
		}
		raw, clean = append(raw, s.Snapshot()), append(clean, c.Snapshot())
	}
	return raw, clean
}
