package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C Trace Context's traceparent: what is a parent, what is ignored for
// a new trace; and the field gatehouse writes reads back as the span it
// names.
func TestParseTraceparent(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name, v string
		ok      bool
		flags   byte
	}{
		{"sampled", "00-" + tid + "-" + sid + "-01", true, 1},
		{"not sampled", "00-" + tid + "-" + sid + "-00", true, 0},
		{"unknown flags dropped", "00-" + tid + "-" + sid + "-ff", true, 1},
		{"later version, more fields", "01-" + tid + "-" + sid + "-01-what-comes", true, 1},
		{"later version, exact", "cc-" + tid + "-" + sid + "-00", true, 0},
		{"version ff", "ff-" + tid + "-" + sid + "-01", false, 0},
		{"version 00 too long", "00-" + tid + "-" + sid + "-01-x", false, 0},
		{"later version, no dash after", "01-" + tid + "-" + sid + "-01x", false, 0},
		{"upper case", "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + sid + "-01", false, 0},
		{"trace id zero", "00-00000000000000000000000000000000-" + sid + "-01", false, 0},
		{"span id zero", "00-" + tid + "-0000000000000000-01", false, 0},
		{"short", "00-" + tid + "-" + sid[:15] + "-01", false, 0},
		{"not hex", "00-" + tid[:31] + "g-" + sid + "-01", false, 0},
		{"wrong separator", "00_" + tid + "-" + sid + "-01", false, 0},
		{"empty", "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotT, gotS, flags, ok := parseTraceparent(tt.v)
			if ok != tt.ok || flags != tt.flags {
				t.Fatalf("parseTraceparent(%q) = ok %v flags %x, want ok %v flags %x", tt.v, ok, flags, tt.ok, tt.flags)
			}
			if !ok {
				if id := clientTraceID(http.Header{"Traceparent": {tt.v}}); id != "" {
					t.Errorf("clientTraceID = %q for an invalid traceparent", id)
				}
				return
			}
			if gotT.String() != tid || gotS.String() != sid {
				t.Errorf("ids %s %s, want %s %s", gotT, gotS, tid, sid)
			}
			if id := clientTraceID(http.Header{"Traceparent": {tt.v}}); id != tid {
				t.Errorf("clientTraceID = %q, want %q", id, tid)
			}
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: gotT, SpanID: gotS, TraceFlags: trace.TraceFlags(flags)})
			want := "00-" + tid + "-" + sid + "-0" + string("01"[flags])
			if diff := cmp.Diff(want, traceparent(sc)); diff != "" {
				t.Errorf("traceparent (-want +got):\n%s", diff)
			}
		})
	}
	if id := clientTraceID(http.Header{"Traceparent": {"00-" + tid + "-" + sid + "-01", "00-" + tid + "-" + sid + "-01"}}); id != "" {
		t.Errorf("two traceparent fields give trace id %q; want none", id)
	}
}

// With tracing off, a request with a traceparent pays for its trace id
// in the access log with no allocation.
func TestClientTraceIDAllocatesNothing(t *testing.T) {
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	if n := testing.AllocsPerRun(100, func() { clientTraceID(h) }); n != 0 {
		t.Errorf("clientTraceID: %v allocs, want 0", n)
	}
}

// The traceparent parser agrees with OpenTelemetry's own propagator on
// any field a client can send: the same parent or none. Two differences
// are W3C Trace Context's: a version 00 field with more after its flags
// is refused, where OpenTelemetry takes it; and flags gatehouse does not
// know are ignored, where OpenTelemetry refuses a version 00 field with
// them.
func FuzzTraceparentMatchesOpenTelemetry(f *testing.F) {
	for _, s := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"",
	} {
		f.Add(s)
	}
	prop := propagation.TraceContext{}
	f.Fuzz(func(t *testing.T, v string) {
		tid, sid, flags, ok := parseTraceparent(v)
		if strings.HasPrefix(v, "00-") && len(v) > 55 && !ok {
			return
		}
		sc := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.HeaderCarrier(http.Header{"Traceparent": {v}})))
		if ok && !sc.IsValid() && strings.HasPrefix(v, "00-") && v[53:55] > "03" {
			return
		}
		if ok != sc.IsValid() {
			t.Fatalf("%q: parsed %v, OpenTelemetry %v", v, ok, sc.IsValid())
		}
		if ok && (tid != sc.TraceID() || sid != sc.SpanID() || flags&1 == 1 != sc.IsSampled()) {
			t.Fatalf("%q: %s %s %02x, OpenTelemetry %s %s sampled %v", v, tid, sid, flags, sc.TraceID(), sc.SpanID(), sc.IsSampled())
		}
	})
}
