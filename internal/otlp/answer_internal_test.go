package otlp

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
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
