package h2_test

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// A PRIORITY frame opens no stream (RFC 9113 §5.1): one that makes an
// idle stream depend on itself resets that stream's priority, a stream
// error, and leaves it and the streams below it idle, as net/http's
// server does. Requests on them are served after it.
func TestSelfDependentPriorityLeavesItsStreamIdle(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), nil)
	c := dialRaw(t, ts)
	if err := c.Framer.WritePriority(5, http2.PriorityParam{StreamDep: 5}); err != nil {
		t.Fatal(err)
	}
	a := c.readAnswer(5)
	if a.reset == nil || *a.reset != http2.ErrCodeProtocol {
		t.Fatalf("the PRIORITY frame got %+v, want RST_STREAM PROTOCOL_ERROR", a)
	}
	for _, id := range []uint32{3, 5} {
		c.get(id, "/")
		if a := c.readAnswer(id); string(a.body) != "ok" || a.reset != nil {
			t.Errorf("stream %d: body %q, reset %v; want %q", id, a.body, a.reset, "ok")
		}
	}
	if len(c.goAways) > 0 {
		t.Errorf("the connection was sent GOAWAY %v", c.goAways[0].ErrCode)
	}
}
