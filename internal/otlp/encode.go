package otlp

import (
	"math"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the OTLP messages written here
// (opentelemetry/proto/collector/trace/v1, trace/v1, common/v1,
// resource/v1).
const (
	requestResourceSpans = 1

	resourceSpansResource  = 1
	resourceSpansScopes    = 2
	resourceSpansSchemaURL = 3

	resourceAttributes = 1

	scopeSpansScope     = 1
	scopeSpansSpans     = 2
	scopeSpansSchemaURL = 3

	scopeName       = 1
	scopeVersion    = 2
	scopeAttributes = 3

	spanTraceID       = 1
	spanSpanID        = 2
	spanTraceState    = 3
	spanParentSpanID  = 4
	spanName          = 5
	spanKind          = 6
	spanStart         = 7
	spanEnd           = 8
	spanAttributes    = 9
	spanDroppedAttrs  = 10
	spanEvents        = 11
	spanDroppedEvents = 12
	spanLinks         = 13
	spanDroppedLinks  = 14
	spanStatus        = 15
	spanFlags         = 16

	eventTime         = 1
	eventName         = 2
	eventAttributes   = 3
	eventDroppedAttrs = 4

	linkTraceID      = 1
	linkSpanID       = 2
	linkTraceState   = 3
	linkAttributes   = 4
	linkDroppedAttrs = 5
	linkFlags        = 6

	statusMessage = 2
	statusCode    = 3

	keyValueKey   = 1
	keyValueValue = 2

	anyString = 1
	anyBool   = 2
	anyInt    = 3
	anyDouble = 4
	anyArray  = 5
	anyKVList = 6
	anyBytes  = 7

	listValues = 1 // ArrayValue.values and KeyValueList.values
)

// OTLP's status codes and span flags.
const (
	statusOK    = 1
	statusError = 2

	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// maxDepth bounds the nesting of slice and map attribute values written:
// the SDK builds them from the caller's values, and a deeper one is
// written as an empty value rather than recursed into without end.
const maxDepth = 32

// encoder appends protobuf to b. A nested message is opened with open,
// which writes its tag, and closed with close, which puts its length in
// front of its fields once they are known.
type encoder struct{ b []byte }

func (e *encoder) open(num protowire.Number) int {
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	return len(e.b)
}

func (e *encoder) close(start int) {
	n := len(e.b) - start
	size := protowire.SizeVarint(uint64(n))
	e.b = append(e.b, make([]byte, size)...)
	copy(e.b[start+size:], e.b[start:start+n])
	protowire.AppendVarint(e.b[start:start], uint64(n))
}

// bytes writes a string or bytes field, leaving out an empty one as
// proto3 does.
func (e *encoder) bytes(num protowire.Number, v []byte) {
	if len(v) > 0 {
		e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
		e.b = protowire.AppendBytes(e.b, v)
	}
}

// string writes a string field, leaving out an empty one. Its bytes
// are made valid UTF-8, as protobuf's strings must be: an attribute may
// hold what a client sent, and a receiver refuses a whole batch over one
// bad string.
func (e *encoder) string(num protowire.Number, v string) {
	if v != "" {
		e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
		e.b = protowire.AppendString(e.b, validUTF8(v))
	}
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func (e *encoder) varint(num protowire.Number, v uint64) {
	if v != 0 {
		e.b = protowire.AppendTag(e.b, num, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, v)
	}
}

func (e *encoder) fixed64(num protowire.Number, v uint64) {
	if v != 0 {
		e.b = protowire.AppendTag(e.b, num, protowire.Fixed64Type)
		e.b = protowire.AppendFixed64(e.b, v)
	}
}

func (e *encoder) fixed32(num protowire.Number, v uint32) {
	if v != 0 {
		e.b = protowire.AppendTag(e.b, num, protowire.Fixed32Type)
		e.b = protowire.AppendFixed32(e.b, v)
	}
}

// AppendRequest appends an ExportTraceServiceRequest of spans to b: one
// ResourceSpans per resource and, in it, one ScopeSpans per
// instrumentation scope, each in the order the spans first name them.
func AppendRequest(b []byte, spans []sdktrace.ReadOnlySpan) []byte {
	e := encoder{b: b}
	for _, r := range groupSpans(spans) {
		rs := e.open(requestResourceSpans)
		e.resource(r.res)
		for _, s := range r.scopes {
			e.scopeSpans(s)
		}
		if r.res != nil {
			e.string(resourceSpansSchemaURL, r.res.SchemaURL())
		}
		e.close(rs)
	}
	return e.b
}

type resourceGroup struct {
	res    *resource.Resource
	scopes []*scopeGroup
}

type scopeGroup struct {
	scope instrumentation.Scope
	spans []sdktrace.ReadOnlySpan
}

func groupSpans(spans []sdktrace.ReadOnlySpan) []*resourceGroup {
	var out []*resourceGroup
	byRes := map[attribute.Distinct]*resourceGroup{}
	type key struct {
		res   attribute.Distinct
		scope instrumentation.Scope
	}
	byScope := map[key]*scopeGroup{}
	for _, sp := range spans {
		if sp == nil {
			continue
		}
		res := sp.Resource()
		rk := res.Equivalent()
		r := byRes[rk]
		if r == nil {
			r = &resourceGroup{res: res}
			byRes[rk] = r
			out = append(out, r)
		}
		sk := key{rk, sp.InstrumentationScope()}
		s := byScope[sk]
		if s == nil {
			s = &scopeGroup{scope: sk.scope}
			byScope[sk] = s
			r.scopes = append(r.scopes, s)
		}
		s.spans = append(s.spans, sp)
	}
	return out
}

func (e *encoder) resource(res *resource.Resource) {
	if res == nil {
		return
	}
	m := e.open(resourceSpansResource)
	for _, kv := range res.Attributes() {
		e.keyValue(resourceAttributes, kv, 0)
	}
	e.close(m)
}

func (e *encoder) scopeSpans(s *scopeGroup) {
	m := e.open(resourceSpansScopes)
	if s.scope != (instrumentation.Scope{}) {
		sc := e.open(scopeSpansScope)
		e.string(scopeName, s.scope.Name)
		e.string(scopeVersion, s.scope.Version)
		for _, kv := range s.scope.Attributes.ToSlice() {
			e.keyValue(scopeAttributes, kv, 0)
		}
		e.close(sc)
	}
	for _, sp := range s.spans {
		e.span(sp)
	}
	e.string(scopeSpansSchemaURL, s.scope.SchemaURL)
	e.close(m)
}

func (e *encoder) span(sp sdktrace.ReadOnlySpan) {
	m := e.open(scopeSpansSpans)
	sc := sp.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	e.bytes(spanTraceID, tid[:])
	e.bytes(spanSpanID, sid[:])
	e.string(spanTraceState, sc.TraceState().String())
	parent := sp.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		e.bytes(spanParentSpanID, psid[:])
	}
	e.string(spanName, sp.Name())
	e.varint(spanKind, uint64(kind(sp.SpanKind())))
	e.fixed64(spanStart, unixNano(sp.StartTime().UnixNano()))
	e.fixed64(spanEnd, unixNano(sp.EndTime().UnixNano()))
	for _, kv := range sp.Attributes() {
		e.keyValue(spanAttributes, kv, 0)
	}
	e.varint(spanDroppedAttrs, clamp(sp.DroppedAttributes()))
	for _, ev := range sp.Events() {
		ee := e.open(spanEvents)
		e.fixed64(eventTime, unixNano(ev.Time.UnixNano()))
		e.string(eventName, ev.Name)
		for _, kv := range ev.Attributes {
			e.keyValue(eventAttributes, kv, 0)
		}
		e.varint(eventDroppedAttrs, clamp(ev.DroppedAttributeCount))
		e.close(ee)
	}
	e.varint(spanDroppedEvents, clamp(sp.DroppedEvents()))
	for _, l := range sp.Links() {
		e.link(l)
	}
	e.varint(spanDroppedLinks, clamp(sp.DroppedLinks()))
	st := sp.Status()
	ss := e.open(spanStatus)
	e.string(statusMessage, st.Description)
	e.varint(statusCode, statusOf(st.Code))
	e.close(ss)
	e.fixed32(spanFlags, flags(sc.TraceFlags(), parent))
	e.close(m)
}

func (e *encoder) link(l sdktrace.Link) {
	m := e.open(spanLinks)
	tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
	e.bytes(linkTraceID, tid[:])
	e.bytes(linkSpanID, sid[:])
	e.string(linkTraceState, l.SpanContext.TraceState().String())
	for _, kv := range l.Attributes {
		e.keyValue(linkAttributes, kv, 0)
	}
	e.varint(linkDroppedAttrs, clamp(l.DroppedAttributeCount))
	e.fixed32(linkFlags, flags(l.SpanContext.TraceFlags(), l.SpanContext))
	e.close(m)
}

func (e *encoder) keyValue(num protowire.Number, kv attribute.KeyValue, depth int) {
	m := e.open(num)
	e.string(keyValueKey, string(kv.Key))
	v := e.open(keyValueValue)
	e.anyValue(kv.Value, depth)
	e.close(v)
	e.close(m)
}

// anyValue writes an AnyValue's fields. A oneof's member is written
// even when it holds its type's zero: it is what says which it is.
func (e *encoder) anyValue(v attribute.Value, depth int) {
	switch v.Type() {
	case attribute.BOOL:
		e.anyBool(v.AsBool())
	case attribute.INT64:
		e.anyInt(v.AsInt64())
	case attribute.FLOAT64:
		e.anyDouble(v.AsFloat64())
	case attribute.STRING:
		e.anyString(v.AsString())
	case attribute.BYTESLICE:
		e.b = protowire.AppendTag(e.b, anyBytes, protowire.BytesType)
		e.b = protowire.AppendBytes(e.b, v.AsByteSlice())
	case attribute.BOOLSLICE:
		array(e, v.AsBoolSlice(), e.anyBool)
	case attribute.INT64SLICE:
		array(e, v.AsInt64Slice(), e.anyInt)
	case attribute.FLOAT64SLICE:
		array(e, v.AsFloat64Slice(), e.anyDouble)
	case attribute.STRINGSLICE:
		array(e, v.AsStringSlice(), e.anyString)
	case attribute.SLICE:
		if depth >= maxDepth {
			return
		}
		array(e, v.AsSlice(), func(x attribute.Value) { e.anyValue(x, depth+1) })
	case attribute.MAP:
		if depth >= maxDepth {
			return
		}
		a := e.open(anyKVList)
		for _, kv := range v.AsMap() {
			e.keyValue(listValues, kv, depth+1)
		}
		e.close(a)
	case attribute.EMPTY:
	default:
		e.anyString("INVALID")
	}
}

// array writes an ArrayValue of xs, each element's AnyValue by put.
func array[T any](e *encoder, xs []T, put func(T)) {
	a := e.open(anyArray)
	for _, x := range xs {
		m := e.open(listValues)
		put(x)
		e.close(m)
	}
	e.close(a)
}

func (e *encoder) anyBool(v bool) {
	e.b = protowire.AppendTag(e.b, anyBool, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, protowire.EncodeBool(v))
}

func (e *encoder) anyInt(v int64) {
	e.b = protowire.AppendTag(e.b, anyInt, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, uint64(v))
}

func (e *encoder) anyDouble(v float64) {
	e.b = protowire.AppendTag(e.b, anyDouble, protowire.Fixed64Type)
	e.b = protowire.AppendFixed64(e.b, math.Float64bits(v))
}

func (e *encoder) anyString(v string) {
	e.b = protowire.AppendTag(e.b, anyString, protowire.BytesType)
	e.b = protowire.AppendString(e.b, validUTF8(v))
}

// kind maps a span kind to OTLP's, which numbers them the same way;
// one the API does not know is unspecified.
func kind(k trace.SpanKind) trace.SpanKind {
	if k < trace.SpanKindUnspecified || k > trace.SpanKindConsumer {
		return trace.SpanKindUnspecified
	}
	return k
}

func statusOf(c codes.Code) uint64 {
	switch c {
	case codes.Ok:
		return statusOK
	case codes.Error:
		return statusError
	}
	return 0
}

// flags are W3C's trace flags in the low byte, and whether the span's
// parent (or a link's span) is remote.
func flags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if parent.IsRemote() {
		f |= flagIsRemote
	}
	return f
}

func unixNano(n int64) uint64 { return uint64(max(0, n)) }

func clamp(n int) uint64 { return uint64(min(max(0, int64(n)), math.MaxUint32)) }
