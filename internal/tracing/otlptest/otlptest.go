// Package otlptest is an OTLP trace receiver for tests: a real gRPC
// server of the collector's TraceService and an HTTP handler of
// /v1/traces taking protobuf, both on loopback, keeping every span
// either one receives.
package otlptest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is a received span, flattened for comparisons.
type Span struct {
	Service  string // the resource's service.name
	TraceID  string
	SpanID   string
	ParentID string // "" for a root
	Name     string
	Kind     string // "server", "client", …
	// Attrs are the attributes, each value in its text form (a list's
	// elements joined with ",").
	Attrs map[string]string
	// Status is "ok", "error" or "" (unset).
	Status string
	// Start and End are the span's times.
	Start, End time.Time
	// Events are the names of its events ("exception").
	Events []string
}

// Receiver receives spans over both OTLP transports.
type Receiver struct {
	grpcLn net.Listener
	grpc   *grpc.Server
	httpLn net.Listener
	http   *http.Server
	done   sync.WaitGroup

	mu    sync.Mutex
	spans []Span
	// via counts the export requests received per transport.
	via map[string]int
}

// Start starts a receiver; it stops when the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{via: map[string]int{}}
	var err error
	if r.grpcLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if r.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	r.grpc = grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(r.grpc, traceService{r: r})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveHTTP)
	r.http = &http.Server{Handler: mux}
	r.done.Go(func() { r.grpc.Serve(r.grpcLn) })
	r.done.Go(func() { r.http.Serve(r.httpLn) })
	t.Cleanup(r.Close)
	return r
}

// Close stops both servers and waits for them.
func (r *Receiver) Close() {
	r.grpc.Stop()
	r.http.Close()
	r.done.Wait()
}

// GRPCAddr is the gRPC server's host:port.
func (r *Receiver) GRPCAddr() string { return r.grpcLn.Addr().String() }

// HTTPURL is the HTTP server's base URL (spans go to /v1/traces under it).
func (r *Receiver) HTTPURL() string { return "http://" + r.httpLn.Addr().String() }

// Received reports how many export requests came over transport
// ("grpc" or "http").
func (r *Receiver) Received(transport string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.via[transport]
}

// Spans returns the spans received so far, ordered by start time.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Span(nil), r.spans...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Trace returns the spans of trace id, ordered by start time.
func (r *Receiver) Trace(id string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == id {
			out = append(out, s)
		}
	}
	return out
}

// WaitFor polls until cond holds of the spans received, failing the test
// after timeout.
func (r *Receiver) WaitFor(t testing.TB, timeout time.Duration, what string, cond func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		spans := r.Spans()
		if cond(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; received:\n%s", timeout, what, Describe(spans))
		}
		<-tick.C
	}
}

// Describe lists spans one a line, for a failure message.
func Describe(spans []Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s %s/%s parent %q %q %s status %q %v\n", s.Service, s.TraceID, s.SpanID, s.ParentID, s.Name, s.Kind, s.Status, s.Attrs)
	}
	return b.String()
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s traceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.r.keep("grpc", req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	if ct := hr.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.keep("http", &req)
	out, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (r *Receiver) keep(transport string, req *coltracepb.ExportTraceServiceRequest) {
	var spans []Span
	for _, rs := range req.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				spans = append(spans, flatten(service, sp))
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.via[transport]++
	r.spans = append(r.spans, spans...)
}

func flatten(service string, sp *tracepb.Span) Span {
	s := Span{
		Service: service, TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
		ParentID: hex.EncodeToString(sp.GetParentSpanId()), Name: sp.GetName(), Attrs: attrs(sp.GetAttributes()),
		Start: time.Unix(0, int64(sp.GetStartTimeUnixNano())), End: time.Unix(0, int64(sp.GetEndTimeUnixNano())),
	}
	s.Kind = strings.ToLower(strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_"))
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		s.Status = "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		s.Status = "error"
	}
	for _, e := range sp.GetEvents() {
		s.Events = append(s.Events, e.GetName())
	}
	return s
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.GetKey()] = text(kv.GetValue())
	}
	return m
}

func text(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, text(e))
		}
		return strings.Join(parts, ",")
	}
	return ""
}

// ClosedPort returns a loopback address nothing listens on: a port
// taken from the kernel and let go. (Another test may be given it
// later; a receiver-down test only needs it dead for a while.)
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	return addr
}
