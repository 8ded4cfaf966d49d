package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
	"github.com/gatehouse/gatehouse/internal/tracing"
	"github.com/gatehouse/gatehouse/internal/tracing/otlptest"
)

// The OTLP protocols gatehouse exports in, each to its endpoint on the
// receiver.
var tracingProtocols = []struct {
	name     string
	endpoint func(r *otlptest.Receiver) string
}{
	{config.TracingGRPC, (*otlptest.Receiver).GRPCAddr},
	{config.TracingHTTP, (*otlptest.Receiver).HTTPURL},
}

// traced sets cfg's tracing: block to export over protocol to endpoint.
func traced(cfg *config.Config, protocol, endpoint string) {
	cfg.Tracing = config.NewTracing()
	cfg.Tracing.Protocol, cfg.Tracing.Endpoint = protocol, endpoint
}

// A client's traceparent, sampled, and the trace and span it names.
const (
	clientTrace      = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan       = "00f067aa0ba902b7"
	clientParent     = "00-" + clientTrace + "-" + clientSpan + "-01"
	clientTraceState = "vendor=abc,other=x"
)

// A GET whose first instance crashes under it is retried on the other,
// and the trace says so: the request's span, under the client's; under
// it an attempt span for each instance, the first failed with
// upstream_reset, the second a retry for that reason; and under the
// second, the app's own span, for gatehouse passed the app a
// traceparent naming that attempt. The crashed instance's span never
// leaves it. Spans are flushed by gatehouse's stop.
func TestTraceOfRequestRetriedAfterCrash(t *testing.T) {
	t.Parallel()
	for _, p := range tracingProtocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			rcv := otlptest.Start(t)
			cfg, _ := harness.FaultApp(t, 2, "-otlp-http", rcv.HTTPURL())
			traced(cfg, p.name, p.endpoint(rcv))
			g := harness.Start(t, cfg)
			waitReady(t, g, 2)
			c := newClient(t, g, 10*time.Second)
			marker := filepath.Join(t.TempDir(), "crashed")
			r := c.do(req{path: "/crash-once?file=" + marker, header: map[string]string{"Traceparent": clientParent, "Tracestate": clientTraceState}})
			if r.status != http.StatusOK || !strings.Contains(r.body, "survived") {
				t.Fatalf("%v; want 200 from the second instance", r)
			}
			e, ok := accessFor(t, g, r.id)
			if !ok {
				t.Fatalf("no access entry for %s", r.id)
			}
			if e.TraceID != clientTrace || e.Attempts != 2 || !cmp.Equal(e.RetriedCauses, []string{"upstream_reset"}) {
				t.Errorf("access entry: trace_id %q, %d attempts, retried %v; want %s, 2, [upstream_reset]", e.TraceID, e.Attempts, e.RetriedCauses, clientTrace)
			}
			g.Stop(t)
			if rcv.Received(p.name) == 0 {
				t.Errorf("nothing received over %s", p.name)
			}
			spans := rcv.WaitFor(t, 10*time.Second, "gatehouse's 3 spans and the app's", func(s []otlptest.Span) bool {
				return len(rcv.Trace(clientTrace)) >= 4
			})
			trace := rcv.Trace(clientTrace)
			if len(trace) != 4 {
				t.Fatalf("trace %s has %d spans, want 4:\n%s", clientTrace, len(trace), otlptest.Describe(spans))
			}
			var reqSpan, app otlptest.Span
			var attempts []otlptest.Span
			for _, s := range trace {
				switch {
				case s.Service == "faultapp":
					app = s
				case s.Kind == "server":
					reqSpan = s
				case s.Kind == "client":
					attempts = append(attempts, s)
				}
			}
			if len(attempts) != 2 {
				t.Fatalf("%d attempt spans, want 2:\n%s", len(attempts), otlptest.Describe(trace))
			}
			parents := map[string]string{clientSpan: "client", reqSpan.SpanID: "request", attempts[0].SpanID: "attempt 1", attempts[1].SpanID: "attempt 2"}
			got := []string{
				describeSpan(reqSpan, parents, "gatehouse.cause", "http.response.status_code", "http.route", "gatehouse.app", "gatehouse.attempts", "gatehouse.retried_causes", "gatehouse.request_id"),
				describeSpan(attempts[0], parents, "gatehouse.attempt", "gatehouse.cause", "gatehouse.retry_reason", "http.response.status_code"),
				describeSpan(attempts[1], parents, "gatehouse.attempt", "gatehouse.cause", "gatehouse.retry_reason", "http.response.status_code"),
				describeSpan(app, parents, "http.response.status_code"),
			}
			want := []string{
				fmt.Sprintf("gatehouse server %q parent=client status=: gatehouse.cause= http.response.status_code=200 http.route=/ gatehouse.app=web gatehouse.attempts=2 gatehouse.retried_causes=upstream_reset gatehouse.request_id=%s", "GET /", r.id),
				fmt.Sprintf("gatehouse client %q parent=request status=error: gatehouse.attempt=1 gatehouse.cause=upstream_reset gatehouse.retry_reason= http.response.status_code=", "GET "+attempts[0].Attrs["gatehouse.instance"]),
				fmt.Sprintf("gatehouse client %q parent=request status=: gatehouse.attempt=2 gatehouse.cause= gatehouse.retry_reason=upstream_reset http.response.status_code=200", "GET "+attempts[1].Attrs["gatehouse.instance"]),
				"faultapp server \"faultapp GET /crash-once\" parent=attempt 2 status=: http.response.status_code=200",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the trace (-want +got):\n%s\nspans:\n%s", diff, otlptest.Describe(trace))
			}
			if attempts[0].Attrs["gatehouse.instance"] == attempts[1].Attrs["gatehouse.instance"] {
				t.Errorf("both attempts on %s", attempts[0].Attrs["gatehouse.instance"])
			}
			if !cmp.Equal(attempts[0].Events, []string{"exception"}) {
				t.Errorf("failed attempt's events %v, want [exception]", attempts[0].Events)
			}
		})
	}
}

// describeSpan is a span's service, kind, name, parent (by its name in
// parents; "" for none) and status, and the attributes keys, in order,
// for comparing spans whose ids differ by run.
func describeSpan(s otlptest.Span, parents map[string]string, keys ...string) string {
	var b strings.Builder
	parent := parents[s.ParentID]
	if parent == "" && s.ParentID != "" {
		parent = "unknown " + s.ParentID
	}
	fmt.Fprintf(&b, "%s %s %q parent=%s status=%s:", s.Service, s.Kind, s.Name, parent, s.Status)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, s.Attrs[k])
	}
	return b.String()
}

// Requests gatehouse answers itself get their span too, with the cause:
// one held until hold_timeout for an instance that never becomes ready
// (503 no_ready_instance, an error), one no route takes (404 no_route).
// Neither has an attempt span: no instance was asked.
func TestTraceOfRequestsGatehouseAnswers(t *testing.T) {
	t.Parallel()
	rcv := otlptest.Start(t)
	cfg, app := harness.FaultApp(t, 1, "-health-status", "500")
	app.Routes = config.PlainRoutes("/app/")
	app.HoldTimeout = config.Duration(300 * time.Millisecond)
	traced(cfg, config.TracingGRPC, rcv.GRPCAddr())
	g := harness.Start(t, cfg)
	c := newClient(t, g, 10*time.Second)
	type answer struct {
		Status int
		Cause  string
	}
	tests := []struct {
		path string
		want answer
		span string
	}{
		{"/app/x", answer{503, "no_ready_instance"}, `gatehouse server "GET /app/" parent= status=error: gatehouse.cause=no_ready_instance http.response.status_code=503 error.type=no_ready_instance gatehouse.attempts=0`},
		{"/elsewhere", answer{404, "no_route"}, `gatehouse server "GET" parent= status=: gatehouse.cause=no_route http.response.status_code=404 error.type= gatehouse.attempts=0`},
	}
	ids := map[string]string{}
	for _, tt := range tests {
		r := c.get(tt.path)
		if diff := cmp.Diff(tt.want, answer{r.status, r.cause}); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", tt.path, diff)
		}
		ids[tt.path] = r.id
	}
	g.Stop(t)
	spans := rcv.WaitFor(t, 10*time.Second, "a span per request", func(s []otlptest.Span) bool { return len(s) >= len(tests) })
	for _, tt := range tests {
		var found []string
		for _, s := range spans {
			if s.Attrs["gatehouse.request_id"] == ids[tt.path] {
				found = append(found, describeSpan(s, nil, "gatehouse.cause", "http.response.status_code", "error.type", "gatehouse.attempts"))
			}
		}
		if diff := cmp.Diff([]string{tt.span}, found); diff != "" {
			t.Errorf("GET %s: spans (-want +got):\n%s", tt.path, diff)
		}
	}
}

// A collector that is down (nothing listens on the endpoint) never
// holds a request up: enough requests to fill a batch, then the queue,
// while the exports fail (each retried for up to tracing.ExportTimeout)
// all complete within a bound far below that; the failures are counted;
// and gatehouse's stop, which flushes, is bounded by
// tracing.FlushTimeout.
func TestTracingCollectorDownDoesNotSlowRequests(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{config.TracingGRPC, config.TracingHTTP} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			endpoint := otlptest.ClosedPort(t)
			if protocol == config.TracingHTTP {
				endpoint = "http://" + endpoint
			}
			cfg, _ := harness.FaultApp(t, 1)
			traced(cfg, protocol, endpoint)
			g := harness.Start(t, cfg)
			waitReady(t, g, 1)
			c := newClient(t, g, 10*time.Second)
			// Two spans a request: past a batch, then past the queue
			// while the first batch's export is being retried. A request
			// that waited for an export would wait out the exporter's
			// retries against the closed port (up to ExportTimeout,
			// 10 s); the bound is well under that, and over the stalls
			// of a busy machine (1.9 s seen on CI, both protocols at once).
			const bound = 3 * time.Second
			n := tracing.QueueSize/2 + 600
			var slowest time.Duration
			for i := range n {
				r := c.do(req{path: "/", noID: true})
				if r.err != nil || r.status != 200 {
					t.Fatalf("request %d: %v", i, r)
				}
				slowest = max(slowest, r.duration)
			}
			if slowest >= bound {
				t.Errorf("slowest of %d requests took %v, want < %v (an export waited for?)", n, slowest, bound)
			}
			waitUntil(tracing.ExportTimeout+10*time.Second, func() bool { return g.Srv.Tracing().Stats().FailedExports > 0 })
			st := g.Srv.Tracing().Stats()
			if st.FailedExports == 0 || st.Exported != 0 {
				t.Errorf("stats %+v; want failed exports and none exported", st)
			}
			// An operator sees it in /metrics.
			resp, err := http.Get(g.AdminURL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var failed int64 = -1
			for line := range strings.Lines(string(body)) {
				if v, ok := strings.CutPrefix(line, "gatehouse_trace_spans_failed_total "); ok {
					fmt.Sscan(v, &failed)
				}
			}
			if failed < st.Failed || failed == 0 {
				t.Errorf("/metrics says %d spans failed, want at least the %d the exporter counted", failed, st.Failed)
			}
			start := time.Now()
			g.Stop(t)
			if d := time.Since(start); d > tracing.FlushTimeout+5*time.Second {
				t.Errorf("stop took %v with the collector down; the flush is bounded by %v", d, tracing.FlushTimeout)
			}
			t.Logf("%d requests, slowest %v; %+v", n, slowest, st)
		})
	}
}

// What the app is sent as traceparent and tracestate, and the trace_id
// the access log names. Tracing off, both reach the app as the client
// sent them, valid or not, and the access log names the client's trace
// when its traceparent is valid. Tracing on, gatehouse replaces them: a
// valid one's trace goes on, with the attempt's span as the parent and
// the tracestate kept; an invalid one (and its tracestate) is dropped
// for a new trace. An unsampled parent stays unsampled, and its spans
// are not exported.
func TestTraceparentSentToTheApp(t *testing.T) {
	t.Parallel()
	const invalid = "00-" + clientTrace + "-0000000000000000-01" // span id all zeros
	unsampled := "00-" + clientTrace[:31] + "9-" + clientSpan + "-00"
	type sent struct{ parent, state string }
	type seen = appTrace
	tests := []struct {
		name    string
		tracing bool
		sent    sent
		want    seen
	}{
		{"off, valid", false, sent{clientParent, clientTraceState}, seen{"as sent", "as sent", "as sent", clientTraceState, "client"}},
		{"off, invalid", false, sent{invalid, clientTraceState}, seen{"as sent", "as sent", "as sent", clientTraceState, ""}},
		{"off, none", false, sent{}, seen{"none", "none", "none", "", ""}},
		{"on, valid", true, sent{clientParent, clientTraceState}, seen{"client", "attempt", "01", clientTraceState, "client"}},
		{"on, invalid", true, sent{invalid, clientTraceState}, seen{"new", "attempt", "01", "", "new"}},
		{"on, none", true, sent{}, seen{"new", "attempt", "01", "", "new"}},
		{"on, unsampled", true, sent{unsampled, ""}, seen{"client", "attempt", "00", "", "client"}},
	}
	rcv := otlptest.Start(t)
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("tracing %v", on), func(t *testing.T) {
			t.Parallel()
			cfg, _ := harness.FaultApp(t, 1)
			if on {
				traced(cfg, config.TracingGRPC, rcv.GRPCAddr())
			}
			g := harness.Start(t, cfg)
			waitReady(t, g, 1)
			c := newClient(t, g, 10*time.Second)
			for _, tt := range tests {
				if tt.tracing != on {
					continue
				}
				h := map[string]string{}
				if tt.sent.parent != "" {
					h["Traceparent"], h["Tracestate"] = tt.sent.parent, tt.sent.state
				}
				r := c.do(req{path: "/headers", header: h})
				if r.status != 200 {
					t.Fatalf("%s: %v", tt.name, r)
				}
				var got http.Header
				if err := json.Unmarshal([]byte(r.body), &got); err != nil {
					t.Fatal(err)
				}
				e, _ := accessFor(t, g, r.id)
				sentTrace := ""
				if len(tt.sent.parent) == 55 {
					sentTrace = tt.sent.parent[3:35]
				}
				if diff := cmp.Diff(tt.want, classify(got.Get("Traceparent"), tt.sent.parent, got.Get("Tracestate"), e.TraceID, sentTrace)); diff != "" {
					t.Errorf("%s: (-want +got):\n%s\napp got traceparent %q tracestate %q; access trace_id %q", tt.name, diff,
						got.Get("Traceparent"), got.Get("Tracestate"), e.TraceID)
				}
			}
			if !on {
				return
			}
			g.Stop(t)
			rcv.WaitFor(t, 10*time.Second, "the sampled requests' spans", func(s []otlptest.Span) bool { return len(s) >= 2*3 })
			if n := len(rcv.Trace(unsampled[3:35])); n != 0 {
				t.Errorf("%d spans exported of an unsampled trace", n)
			}
		})
	}
}

// appTrace is what the app was sent, against what the client sent:
// trace is whether its traceparent's trace is the client's ("client"),
// a new one ("new"), or the client's field is what it got ("as sent");
// span whether its parent is gatehouse's ("attempt"); flags its flags;
// state its tracestate; accessTrace whether the access log's trace_id
// is the client's trace ("client") or the new one ("new").
type appTrace struct {
	Trace, Span, Flags, State, AccessTrace string
}

// classify describes the traceparent got and the tracestate state the
// app got, and the access log's trace id, against the traceparent the
// client sent and the trace id in it (sentTrace).
func classify(got, sent, state, accessTrace, sentTrace string) appTrace {
	s := appTrace{State: state}
	switch {
	case got == "":
		s.Trace, s.Span, s.Flags = "none", "none", "none"
	case got == sent:
		s.Trace, s.Span, s.Flags = "as sent", "as sent", "as sent"
	case len(got) != 55:
		s.Trace = "malformed: " + got
	default:
		s.Trace = "new"
		if got[3:35] == sentTrace {
			s.Trace = "client"
		}
		s.Span = "attempt"
		if len(sent) == 55 && got[36:52] == sent[36:52] {
			s.Span = "client's"
		}
		s.Flags = got[53:]
	}
	switch {
	case accessTrace == "":
	case accessTrace == sentTrace:
		s.AccessTrace = "client"
	case len(got) == 55 && accessTrace == got[3:35]:
		s.AccessTrace = "new"
	default:
		s.AccessTrace = "unrelated: " + accessTrace
	}
	return s
}

// A method HTTP does not define, which a client may make up at will, is
// put in spans as OpenTelemetry's HTTP conventions say: the spans named
// HTTP, their http.request.method _OTHER and the method itself in
// http.request.method_original, so that made-up methods do not each
// make a span name (and a series of any metric made of the spans). A
// method HTTP defines names the spans itself.
func TestSpansOfAMethodHTTPDoesNotDefine(t *testing.T) {
	t.Parallel()
	rcv := otlptest.Start(t)
	cfg, _ := harness.FaultApp(t, 1)
	traced(cfg, config.TracingGRPC, rcv.GRPCAddr())
	g := harness.Start(t, cfg)
	waitReady(t, g, 1)
	c := newClient(t, g, 10*time.Second)
	ids := map[string]string{}
	for _, method := range []string{"MADEUP1234", http.MethodPatch} {
		r := c.do(req{method: method, path: "/"})
		if r.status != http.StatusOK {
			t.Fatalf("%s /: %v, want 200", method, r)
		}
		ids[method] = r.id
	}
	g.Stop(t)
	spans := rcv.WaitFor(t, 10*time.Second, "a request span and an attempt span per request", func(s []otlptest.Span) bool { return len(s) >= 4 })
	tests := []struct {
		method string
		want   []string
	}{
		{"MADEUP1234", []string{
			`gatehouse client "HTTP web-1" parent=request status=: http.request.method=_OTHER http.request.method_original=MADEUP1234`,
			`gatehouse server "HTTP /" parent= status=: http.request.method=_OTHER http.request.method_original=MADEUP1234`,
		}},
		{http.MethodPatch, []string{
			`gatehouse client "PATCH web-1" parent=request status=: http.request.method=PATCH http.request.method_original=`,
			`gatehouse server "PATCH /" parent= status=: http.request.method=PATCH http.request.method_original=`,
		}},
	}
	for _, tt := range tests {
		var reqSpan otlptest.Span
		for _, s := range spans {
			if s.Attrs["gatehouse.request_id"] == ids[tt.method] {
				reqSpan = s
			}
		}
		var got []string
		for _, s := range rcv.Trace(reqSpan.TraceID) {
			got = append(got, describeSpan(s, map[string]string{reqSpan.SpanID: "request"}, "http.request.method", "http.request.method_original"))
		}
		slices.Sort(got)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s /: spans (-want +got):\n%s\nspans:\n%s", tt.method, diff, otlptest.Describe(spans))
		}
	}
}
