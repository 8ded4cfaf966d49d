package otlp_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/otlp"
	"github.com/gatehouse/gatehouse/internal/tracing/otlptest"
)

// TestPartialSuccess: a receiver that answers an export with a
// partial_success refusing spans, or saying why, has the export return
// a *otlp.PartialError of it, not tried again (OTLP says so); an empty
// partial_success is a success. Over gRPC with gzip, the answer comes
// compressed too.
func TestPartialSuccess(t *testing.T) {
	tests := []struct {
		name     string
		rejected int64
		message  string
		want     *otlp.PartialError // nil: the export succeeds
	}{
		{name: "spans rejected with a message", rejected: 2, message: "too old", want: &otlp.PartialError{Rejected: 2, Message: "too old"}},
		{name: "spans rejected without a message", rejected: 3, want: &otlp.PartialError{Rejected: 3}},
		{name: "a message without spans rejected", message: "dropped an attribute", want: &otlp.PartialError{Message: "dropped an attribute"}},
		{name: "an empty partial_success is a success"},
	}
	for _, tr := range transports {
		for _, compression := range []string{"none", "gzip"} {
			for _, tt := range tests {
				t.Run(tr.name+"/"+compression+"/"+tt.name, func(t *testing.T) {
					r := otlptest.Start(t)
					r.PartialSuccess(5, tt.rejected, tt.message)
					x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: tr.endpoint(r),
						Getenv: environ(map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": compression})})
					_, err := export(x, 10*time.Second, oneSpan())
					if got := r.Calls(tr.name); got != 1 {
						t.Errorf("the receiver had %d calls, want 1", got)
					}
					if got := r.Received(tr.name); got != 1 {
						t.Errorf("the receiver took %d requests, want 1", got)
					}
					if tt.want == nil {
						if err != nil {
							t.Fatalf("ExportSpans: %v", err)
						}
						return
					}
					var pe *otlp.PartialError
					if !errors.As(err, &pe) {
						t.Fatalf("ExportSpans: %v (%T), want a *otlp.PartialError", err, err)
					}
					if diff := cmp.Diff(tt.want, pe); diff != "" {
						t.Errorf("the PartialError (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// TestTakenAnswerCutShortIsDelivered: an OTLP/HTTP receiver that
// answers 200 but closes the connection before the end of the answer's
// body took the spans: the export succeeds, and is not sent again (which
// would duplicate the spans).
func TestTakenAnswerCutShortIsDelivered(t *testing.T) {
	var calls atomic.Int64
	s := startRaw(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		calls.Add(1)
		// 100 bytes said, 5 sent: the connection closes when serve
		// returns.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\nabcde")
	})
	x := newExporter(t, otlp.Options{Protocol: otlp.HTTP, Endpoint: "http://" + s.addr()})
	if _, err := export(x, 10*time.Second, oneSpan()); err != nil {
		t.Errorf("ExportSpans: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the receiver had %d calls, want 1", n)
	}
}
