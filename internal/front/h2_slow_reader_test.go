package front

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// An HTTP/2 client that opens a large flow-control window and then stops
// reading the socket is given up on: the h2 server's connection-level
// writes are bounded (WriteTimeout = SendTimeout), so the handler's write fails,
// the connection and its slot are freed, and Shutdown returns.
func TestH2SlowReaderIsCutOff(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t, "h2")
	failed := make(chan struct{}, 1)
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 32<<10)
		start := time.Now()
		for time.Since(start) < 20*time.Second {
			if _, err := w.Write(chunk); err != nil {
				break
			}
		}
		failed <- struct{}{}
	}}
	s, _ := h2OneStream(t, stub, Options{TLS: srvTLS, SendTimeout: 500 * time.Millisecond, KeepaliveTimeout: time.Second}, cliTLS, 1<<30, 1<<30, "/big")
	// From here on the client reads nothing.

	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Errorf("the handler's Write is still blocked 10s in, with SendTimeout 500ms: the stream's " +
			"RST_STREAM waits behind the connection's blocked frame write, so its writes never fail")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v after %v; the stalled HTTP/2 connection was never given up on "+
			"(its stream failed after SendTimeout, KeepaliveTimeout passed too)", err, time.Since(start).Round(time.Millisecond))
	}
}
