package gateway

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Tracer starts the spans of requests and of their attempts on
// instances, as OpenTelemetry's trace.Tracer does; internal/tracing's
// Provider is one. A nil Tracer (tracing off) costs a request a nil
// check, and the client's traceparent reaches the app as it came.
type Tracer interface {
	Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span)
}

// Span attributes gatehouse adds to OpenTelemetry's HTTP ones.
const (
	attrApp           = "gatehouse.app"
	attrRoute         = "gatehouse.route"
	attrRequestID     = "gatehouse.request_id"
	attrCause         = "gatehouse.cause"
	attrDetail        = "gatehouse.cause.detail"
	attrHeld          = "gatehouse.held_ms"
	attrAttempts      = "gatehouse.attempts"
	attrRetriedCauses = "gatehouse.retried_causes"
	attrRule          = "gatehouse.rule"
	attrInstance      = "gatehouse.instance"
	attrPID           = "gatehouse.instance.pid"
	attrAttempt       = "gatehouse.attempt"
	attrRetryReason   = "gatehouse.retry_reason"
)

// startTrace starts the request's SERVER span, at start: a child of the
// span the client's traceparent names, or the root of a new trace when
// it names none (or names one invalidly). Its name and most attributes
// are set at its end (endTrace), once the route and the answer are known.
func (g *Gateway) startTrace(st *reqState, r *http.Request, start time.Time) {
	parent := context.Background()
	sc, clientID := remoteParent(r.Header)
	if sc.IsValid() {
		parent = trace.ContextWithRemoteSpanContext(parent, sc)
	}
	method, _ := spanMethod(r.Method)
	st.traceCtx, st.span = g.tracer.Start(parent, spanName(method),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	st.traceID = clientID
	if st.traceID == "" {
		st.traceID = st.span.SpanContext().TraceID().String()
	}
}

// endTrace ends the request's span (and its last attempt's) with what
// the access entry e says of it.
func (g *Gateway) endTrace(st *reqState, r *http.Request, e *telemetry.AccessEntry) {
	if st.attemptSpan != nil {
		if st.truncated {
			st.attemptSpan.SetAttributes(attribute.String(attrCause, string(cause.ResponseTruncated)))
			st.attemptSpan.SetStatus(codes.Error, string(cause.ResponseTruncated))
		}
		st.attemptSpan.End()
	}
	sp := st.span
	if !sp.IsRecording() {
		sp.End()
		return
	}
	method, known := spanMethod(r.Method)
	name := spanName(method)
	attrs := make([]attribute.KeyValue, 0, 16)
	if !known {
		attrs = append(attrs, attribute.String("http.request.method_original", r.Method))
	}
	attrs = append(attrs,
		attribute.String("http.request.method", method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", r.Host),
		attribute.String(attrRequestID, st.requestID),
		attribute.Int(attrAttempts, st.attempts),
	)
	if e.Status != 0 {
		attrs = append(attrs, attribute.Int("http.response.status_code", e.Status))
	}
	if e.App != "" {
		attrs = append(attrs, attribute.String(attrApp, e.App))
	}
	if rt := st.route; rt != nil {
		name += " " + rt.Prefix
		attrs = append(attrs, attribute.String("http.route", rt.Prefix), attribute.String(attrRoute, rt.Host+rt.Prefix))
	}
	if e.Cause != "" {
		attrs = append(attrs, attribute.String(attrCause, e.Cause))
	}
	if e.Detail != "" {
		attrs = append(attrs, attribute.String(attrDetail, e.Detail))
	}
	if e.Held > 0 {
		attrs = append(attrs, attribute.Float64(attrHeld, float64(e.Held.Microseconds())/1000))
	}
	if len(e.RetriedCauses) > 0 {
		attrs = append(attrs, attribute.StringSlice(attrRetriedCauses, e.RetriedCauses))
	}
	if e.Rule != "" {
		attrs = append(attrs, attribute.String(attrRule, e.Rule))
	}
	if e.Status >= 500 {
		attrs = append(attrs, attribute.String("error.type", e.Cause))
		sp.SetStatus(codes.Error, e.Cause)
	}
	sp.SetName(name)
	sp.SetAttributes(attrs...)
	sp.End()
}

// startAttempt starts the CLIENT span of the attempt on m, beginning at
// start, under the request's span, and sets the traceparent (and
// tracestate) the app is sent to name it, replacing what the client
// sent.
func (a *appProxy) startAttempt(req *http.Request, m *pool.Member, st *reqState, start time.Time) trace.Span {
	method, known := spanMethod(req.Method)
	_, sp := a.tracer.Start(st.traceCtx, spanName(method)+" "+m.ID,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start))
	sc := sp.SpanContext()
	h := req.Header
	h["Traceparent"] = st.x.One(traceparent(sc))
	if ts := sc.TraceState().String(); ts != "" {
		h["Tracestate"] = st.x.One(ts)
	} else {
		delete(h, "Tracestate")
	}
	if !sp.IsRecording() {
		return sp
	}
	attrs := make([]attribute.KeyValue, 0, 11)
	if !known {
		attrs = append(attrs, attribute.String("http.request.method_original", req.Method))
	}
	attrs = append(attrs,
		attribute.String("http.request.method", method),
		attribute.String(attrInstance, m.ID),
		attribute.Int(attrAttempt, st.attempts),
	)
	if host, port, err := net.SplitHostPort(m.Addr); err == nil {
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	}
	if pid := m.PID(); pid != 0 {
		attrs = append(attrs, attribute.Int(attrPID, pid))
	}
	if n := len(st.retried); n > 0 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", st.attempts-1),
			attribute.String(attrRetryReason, st.retried[n-1]))
	}
	sp.SetAttributes(attrs...)
	return sp
}

// attemptFailed ends the span of an attempt that failed with cause c.
func attemptFailed(sp trace.Span, c cause.Cause, err error) {
	if sp.IsRecording() {
		sp.SetAttributes(attribute.String(attrCause, string(c)), attribute.String("error.type", string(c)))
		sp.RecordError(err)
		sp.SetStatus(codes.Error, string(c))
	}
	sp.End()
}

// attemptAnswered notes the app's status on the span of the attempt that
// got an answer; the span ends with the request (endTrace), once the
// answer has been copied.
func attemptAnswered(sp trace.Span, status int) {
	if !sp.IsRecording() {
		return
	}
	sp.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		sp.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
		sp.SetStatus(codes.Error, "")
	}
}

// spanMethod is a request's method as OpenTelemetry's HTTP conventions
// put it in a span's http.request.method: one HTTP defines as it is,
// any other "_OTHER" (its own kept in http.request.method_original).
// A client may send any token as a method: each would otherwise be a
// span name of its own, and a series in any metric made of the spans.
func spanMethod(m string) (method string, known bool) {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m, true
	}
	return "_OTHER", false
}

// spanName is the name a span's method gives it: the method, or "HTTP"
// for one of "_OTHER", as the conventions say.
func spanName(method string) string {
	if method == "_OTHER" {
		return "HTTP"
	}
	return method
}

// traceparent is the W3C traceparent field naming sc.
func traceparent(sc trace.SpanContext) string {
	const hexDigits = "0123456789abcdef"
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	for i, c := range tid {
		b[3+2*i], b[4+2*i] = hexDigits[c>>4], hexDigits[c&15]
	}
	b[35] = '-'
	for i, c := range sid {
		b[36+2*i], b[37+2*i] = hexDigits[c>>4], hexDigits[c&15]
	}
	b[52] = '-'
	f := byte(sc.TraceFlags())
	b[53], b[54] = hexDigits[f>>4], hexDigits[f&15]
	return string(b[:])
}

// remoteParent is the span the client's traceparent (and tracestate)
// names, and its trace id as the client wrote it; invalid (and "") when
// there is no traceparent or it is not valid (W3C Trace Context: a
// tracestate without a valid traceparent is ignored, and so is a
// tracestate that is itself invalid).
func remoteParent(h http.Header) (trace.SpanContext, string) {
	tp := h["Traceparent"]
	if len(tp) != 1 {
		return trace.SpanContext{}, ""
	}
	tid, sid, flags, ok := parseTraceparent(tp[0])
	if !ok {
		return trace.SpanContext{}, ""
	}
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags), Remote: true}
	if ts := h["Tracestate"]; len(ts) > 0 {
		if s, err := trace.ParseTraceState(strings.Join(ts, ",")); err == nil {
			cfg.TraceState = s
		}
	}
	return trace.NewSpanContext(cfg), tp[0][3:35]
}

// clientTraceID is the trace id of the client's traceparent, "" when it
// sent none or an invalid one: the access log's trace_id when tracing is
// off, which is the trace the app's own spans join, for the traceparent
// reaches it unchanged. It allocates nothing: the id is a part of the
// field's value.
func clientTraceID(h http.Header) string {
	tp := h["Traceparent"]
	if len(tp) != 1 {
		return ""
	}
	if _, _, _, ok := parseTraceparent(tp[0]); !ok {
		return ""
	}
	return tp[0][3:35]
}

// parseTraceparent parses a W3C traceparent field: version-traceid-
// parentid-flags, in lower-case hex. Version ff is invalid; version 00
// is exactly 55 characters; a later version may have more after a dash,
// which is ignored. An id of all zeros is invalid. Of the flags only
// sampled (01) is kept, the one version 00 defines.
func parseTraceparent(v string) (tid trace.TraceID, sid trace.SpanID, flags byte, ok bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return tid, sid, 0, false
	}
	ver, ok1 := hexByte(v[0], v[1])
	f, ok2 := hexByte(v[53], v[54])
	if !ok1 || !ok2 || ver == 0xff || ver == 0 && len(v) != 55 || len(v) > 55 && v[55] != '-' {
		return tid, sid, 0, false
	}
	for i := range tid {
		b, ok := hexByte(v[3+2*i], v[4+2*i])
		if !ok {
			return tid, sid, 0, false
		}
		tid[i] = b
	}
	for i := range sid {
		b, ok := hexByte(v[36+2*i], v[37+2*i])
		if !ok {
			return tid, sid, 0, false
		}
		sid[i] = b
	}
	if !tid.IsValid() || !sid.IsValid() {
		return tid, sid, 0, false
	}
	return tid, sid, f & byte(trace.FlagsSampled), true
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexDigit(hi)
	l, ok2 := hexDigit(lo)
	return h<<4 | l, ok1 && ok2
}

// hexDigit is a lower-case hex digit's value: W3C Trace Context allows
// no upper case.
func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
