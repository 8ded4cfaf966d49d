package otlp_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

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
					errorAs(t, err, tt.want)
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

// TestTakenAnswerOfAnotherContentTypeIsDelivered: a 2xx answer that is
// not OTLP's (application/x-protobuf), as a proxy or a page in front of
// the receiver answers, took the spans: its body is not read as an
// ExportTraceServiceResponse, though it would parse as one (here as a
// partial_success saying "hello"), nor is the export sent again.
func TestTakenAnswerOfAnotherContentTypeIsDelivered(t *testing.T) {
	// A partial_success (field 1) of an error_message (field 2) "hello".
	const body = "\n\x07\x12\x05hello"
	tests := []struct {
		contentType string
		want        *otlp.PartialError // nil: the export succeeds
	}{
		{contentType: "text/html"},
		{contentType: "text/plain; charset=utf-8"},
		{contentType: "application/json"},
		{contentType: "application/octet-stream"},
		{contentType: ""},
		{contentType: "application/x-protobuf", want: &otlp.PartialError{Message: "hello"}},
		{contentType: "Application/X-Protobuf; charset=binary", want: &otlp.PartialError{Message: "hello"}},
	}
	for _, tt := range tests {
		t.Run("content type "+tt.contentType, func(t *testing.T) {
			url, calls := httpReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				// Without one, net/http would sniff a content type.
				w.Header()["Content-Type"] = []string{tt.contentType}
				io.WriteString(w, body)
			})
			x := newExporter(t, otlp.Options{Protocol: otlp.HTTP, Endpoint: url})
			_, err := export(x, 10*time.Second, oneSpan())
			if n := calls.Load(); n != 1 {
				t.Errorf("the receiver had %d calls, want 1", n)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ExportSpans: %v", err)
				}
				return
			}
			errorAs(t, err, tt.want)
		})
	}
}
