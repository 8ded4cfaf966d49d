// Package otlptest is an OTLP trace receiver for tests: a real gRPC
// server of the collector's TraceService and an HTTP handler of
// /v1/traces taking protobuf, both on loopback (plain, or TLS with
// StartTLS), keeping every span either one receives. It can be told to
// refuse the next exports (FailGRPC, FailGRPCWithRetryInfo, FailHTTP)
// or to take them only in part (PartialSuccess), and it keeps what it
// saw of the last request over each transport (LastRequest).
package otlptest

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // takes grpc-encoding: gzip
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
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

	tls bool

	mu    sync.Mutex
	spans []Span
	// via counts the export requests kept per transport, calls those
	// received, kept or refused.
	via, calls map[string]int
	// last is the last request received per transport.
	last map[string]Request
	// fail is the refusal the next requests over a transport get.
	fail map[string]*failure
	// partial is the partial success the next exports taken get.
	partial *partial
}

// partial is a partial success still to be answered n times.
type partial struct {
	n        int
	rejected int64
	message  string
}

// Request is what the receiver saw of one export request, kept or
// refused.
type Request struct {
	// Header is the request's HTTP header (over HTTP) or its gRPC
	// metadata (over gRPC), each key lower-cased.
	Header map[string][]string
	// Gzip says whether the request's body came gzip-compressed
	// (Content-Encoding over HTTP, grpc-encoding over gRPC).
	Gzip bool
}

// failure is a refusal still to be given n times.
type failure struct {
	n          int
	code       codes.Code
	status     int
	retryAfter string
	// retryInfo, when not zero, is the delay of a google.rpc.RetryInfo
	// in a gRPC refusal's details.
	retryInfo time.Duration
}

// Start starts a receiver; it stops when the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	return start(t, nil)
}

// StartTLS starts a receiver whose two servers speak TLS with config
// (its certificate, and ClientAuth and ClientCAs for mutual TLS); it
// stops when the test ends. HTTPURL is then an https:// URL, and
// GRPCAddr is reached at "https://" + GRPCAddr.
func StartTLS(t testing.TB, config *tls.Config) *Receiver {
	t.Helper()
	if config == nil {
		t.Fatal("otlptest: StartTLS without a TLS config")
	}
	return start(t, config)
}

func start(t testing.TB, config *tls.Config) *Receiver {
	t.Helper()
	r := &Receiver{via: map[string]int{}, calls: map[string]int{}, last: map[string]Request{}, fail: map[string]*failure{}, tls: config != nil}
	var err error
	if r.grpcLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if r.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		r.grpcLn.Close()
		t.Fatal(err)
	}
	opts := []grpc.ServerOption{grpc.StatsHandler(callStats{})}
	if config != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(config)))
	}
	r.grpc = grpc.NewServer(opts...)
	coltracepb.RegisterTraceServiceServer(r.grpc, traceService{r: r})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveHTTP)
	r.http = &http.Server{Handler: mux, TLSConfig: config}
	r.done.Go(func() { r.grpc.Serve(r.grpcLn) })
	if config != nil {
		r.done.Go(func() { r.http.ServeTLS(r.httpLn, "", "") })
	} else {
		r.done.Go(func() { r.http.Serve(r.httpLn) })
	}
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

// HTTPURL is the HTTP server's base URL (spans go to /v1/traces under
// it): https:// when the receiver was started with StartTLS.
func (r *Receiver) HTTPURL() string {
	if r.tls {
		return "https://" + r.httpLn.Addr().String()
	}
	return "http://" + r.httpLn.Addr().String()
}

// Received reports how many export requests came over transport
// ("grpc" or "http") and were kept.
func (r *Receiver) Received(transport string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.via[transport]
}

// Calls reports how many export requests came over transport ("grpc"
// or "http"), kept or refused.
func (r *Receiver) Calls(transport string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[transport]
}

// LastRequest returns what the receiver saw of the last export request
// over transport ("grpc" or "http"), false when none came.
func (r *Receiver) LastRequest(transport string) (Request, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	req, ok := r.last[transport]
	return req, ok
}

// FailGRPC makes the next n gRPC exports fail with status code (and
// nothing of them kept); n <= 0 stops failing them.
func (r *Receiver) FailGRPC(n int, code codes.Code) {
	r.setFail("grpc", &failure{n: n, code: code})
}

// FailGRPCWithRetryInfo makes the next n gRPC exports fail with status
// code whose details (grpc-status-details-bin) hold a
// google.rpc.RetryInfo of delay, as a receiver that says when to try
// again answers; n <= 0 stops failing them.
func (r *Receiver) FailGRPCWithRetryInfo(n int, code codes.Code, delay time.Duration) {
	r.setFail("grpc", &failure{n: n, code: code, retryInfo: delay})
}

// FailHTTP makes the next n HTTP exports answer HTTP status (and
// nothing of them kept), with a Retry-After header of retryAfter when
// it is not ""; n <= 0 stops failing them. The answer's body is a
// google.rpc.Status in protobuf, as OTLP/HTTP's receivers send it.
func (r *Receiver) FailHTTP(n, status int, retryAfter string) {
	r.setFail("http", &failure{n: n, status: status, retryAfter: retryAfter})
}

// PartialSuccess makes the next n exports taken, over either transport,
// answer an ExportTraceServiceResponse whose partial_success says
// rejected spans were refused, with message (the spans are kept all the
// same); n <= 0 stops it. Zero and "" answer a partial_success that is
// there but empty.
func (r *Receiver) PartialSuccess(n int, rejected int64, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 {
		r.partial = nil
		return
	}
	r.partial = &partial{n: n, rejected: rejected, message: message}
}

// answer is the response to an export taken: the partial success
// PartialSuccess asked for, if any is still due.
func (r *Receiver) answer() *coltracepb.ExportTraceServiceResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.partial
	if p == nil {
		return &coltracepb.ExportTraceServiceResponse{}
	}
	if p.n--; p.n <= 0 {
		r.partial = nil
	}
	return &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{
		RejectedSpans: p.rejected, ErrorMessage: p.message,
	}}
}

func (r *Receiver) setFail(transport string, f *failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.n <= 0 {
		delete(r.fail, transport)
		return
	}
	r.fail[transport] = f
}

// call counts a request over transport and keeps what was seen of it;
// it returns the refusal the request is to get, nil when none.
func (r *Receiver) call(transport string, req Request) *failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[transport]++
	r.last[transport] = req
	f := r.fail[transport]
	if f == nil {
		return nil
	}
	if f.n--; f.n <= 0 {
		delete(r.fail, transport)
	}
	c := *f
	return &c
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

func (s traceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	seen := Request{Header: map[string][]string{}}
	for k, v := range md {
		seen.Header[strings.ToLower(k)] = append([]string(nil), v...)
	}
	if c, ok := ctx.Value(callKey{}).(*callInfo); ok {
		seen.Gzip = c.compression == "gzip"
	}
	if f := s.r.call("grpc", seen); f != nil {
		st := status.New(f.code, "otlptest: refused")
		if f.retryInfo != 0 {
			var err error
			if st, err = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(f.retryInfo)}); err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
		}
		return nil, st.Err()
	}
	s.r.keep("grpc", req)
	return s.r.answer(), nil
}

// callStats is a gRPC stats handler that passes on to the call's
// handler what only the transport knows: the request's compression.
type callStats struct{}

type callKey struct{}

type callInfo struct{ compression string }

func (callStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, callKey{}, &callInfo{})
}

func (callStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if in, ok := s.(*stats.InHeader); ok {
		if c, ok := ctx.Value(callKey{}).(*callInfo); ok {
			c.compression = in.Compression
		}
	}
}

func (callStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (callStats) HandleConn(context.Context, stats.ConnStats) {}

func (r *Receiver) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	seen := Request{Header: map[string][]string{}}
	for k, v := range hr.Header {
		seen.Header[strings.ToLower(k)] = append([]string(nil), v...)
	}
	encoding := strings.ToLower(strings.TrimSpace(hr.Header.Get("Content-Encoding")))
	seen.Gzip = encoding == "gzip"
	if f := r.call("http", seen); f != nil {
		refuse(w, f)
		return
	}
	if ct := hr.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = hr.Body
	switch encoding {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(hr.Body)
		if err != nil {
			http.Error(w, "gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	default:
		http.Error(w, "unknown Content-Encoding "+encoding, http.StatusUnsupportedMediaType)
		return
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.keep("http", &req)
	out, err := proto.Marshal(r.answer())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// refuse answers an HTTP export as f says, with a google.rpc.Status.
func refuse(w http.ResponseWriter, f *failure) {
	out, err := proto.Marshal(status.New(codes.Unknown, "otlptest: refused with "+strconv.Itoa(f.status)).Proto())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(f.status)
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
