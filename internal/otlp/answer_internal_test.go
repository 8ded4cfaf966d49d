package otlp

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// partialSuccess is an ExportTraceServiceResponse's partial_success
// field (1) of rejected_spans (1, left out when rejected is nil) and
// error_message (2, left out when "").
func partialSuccess(rejected *uint64, message string) []byte {
	var ps []byte
	if rejected != nil {
		ps = protowire.AppendTag(ps, 1, protowire.VarintType)
		ps = protowire.AppendVarint(ps, *rejected)
	}
	if message != "" {
		ps = protowire.AppendTag(ps, 2, protowire.BytesType)
		ps = protowire.AppendString(ps, message)
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, ps)
}

// TestPartial reads ExportTraceServiceResponses as a receiver may write
// them: rejected_spans, an int64, is never negative (a varint above
// int64's range is all the spans), and a partial_success that comes
// twice is merged, as protobuf merges a message field.
func TestPartial(t *testing.T) {
	n := func(x uint64) *uint64 { return &x }
	tests := []struct {
		name   string
		answer []byte
		want   *PartialError // nil: no error
	}{
		{name: "no partial_success"},
		{name: "an empty partial_success", answer: partialSuccess(nil, "")},
		{name: "zero rejected", answer: partialSuccess(n(0), "")},
		{name: "rejected and why", answer: partialSuccess(n(5), "why"), want: &PartialError{Rejected: 5, Message: "why"}},
		{name: "a warning", answer: partialSuccess(nil, "why"), want: &PartialError{Message: "why"}},
		{name: "rejected 2^64-1", answer: partialSuccess(n(math.MaxUint64), ""), want: &PartialError{Rejected: math.MaxInt64}},
		{name: "rejected 2^63", answer: partialSuccess(n(1<<63), ""), want: &PartialError{Rejected: math.MaxInt64}},
		{name: "rejected 2^63-1", answer: partialSuccess(n(math.MaxInt64), ""), want: &PartialError{Rejected: math.MaxInt64}},
		{
			name:   "rejected, then why, merged",
			answer: append(partialSuccess(n(5), ""), partialSuccess(nil, "why")...),
			want:   &PartialError{Rejected: 5, Message: "why"},
		},
		{
			name:   "why, then rejected, merged",
			answer: append(partialSuccess(nil, "why"), partialSuccess(n(5), "")...),
			want:   &PartialError{Rejected: 5, Message: "why"},
		},
		{
			name:   "two of each, the last winning",
			answer: append(partialSuccess(n(5), "first"), partialSuccess(n(7), "last")...),
			want:   &PartialError{Rejected: 7, Message: "last"},
		},
		{
			name:   "an unknown field",
			answer: protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 3),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := partial(tt.answer)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("partial: %v, want nil", err)
				}
				return
			}
			pe, ok := err.(*PartialError)
			if !ok {
				t.Fatalf("partial: %v (%T), want a *PartialError", err, err)
			}
			if diff := cmp.Diff(tt.want, pe); diff != "" {
				t.Errorf("the PartialError (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzPartialMatchesProto holds the reading of a receiver's answer to
// protobuf's own: for any bytes protobuf reads as an
// ExportTraceServiceResponse, partial says what it says (a rejected
// count past int64's range being all the spans); for any other bytes it
// only must not fail.
func FuzzPartialMatchesProto(f *testing.F) {
	two := uint64(2)
	f.Add(partialSuccess(&two, "too old"))
	f.Add(append(partialSuccess(&two, ""), partialSuccess(nil, "why")...))
	f.Add([]byte("\n\x07\x12\x05hello"))
	f.Add([]byte("\n\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := partial(b)
		var resp coltracepb.ExportTraceServiceResponse
		if proto.Unmarshal(b, &resp) != nil {
			return
		}
		ps := resp.GetPartialSuccess()
		rejected := ps.GetRejectedSpans()
		if rejected < 0 {
			rejected = math.MaxInt64
		}
		// A message of nothing printable says nothing.
		var want error
		if msg := cut(ps.GetErrorMessage()); rejected != 0 || msg != "" {
			want = &PartialError{Rejected: rejected, Message: msg}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("partial(%q) (-protobuf's +ours):\n%s", b, diff)
		}
	})
}
