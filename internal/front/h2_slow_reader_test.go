package front

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// An HTTP/2 client that opens a large flow-control window and then stops
// reading the socket is given up on: x/net's connection-level writes are
// bounded (WriteByteTimeout = SendTimeout), so the handler's write fails,
// the connection and its slot are freed, and Shutdown returns.
func TestH2SlowReaderIsCutOff(t *testing.T) {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(stub, Options{TLS: srvTLS, SendTimeout: 500 * time.Millisecond, KeepaliveTimeout: time.Second})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	defer func() { s.Close(); <-done }()

	cfg := cliTLS.Clone()
	cfg.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	fr.WriteWindowUpdate(0, 1<<30)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "127.0.0.1"}, {":path", "/big"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	// From here on the client reads nothing.

	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Errorf("the handler's Write is still blocked 10s in, with SendTimeout 500ms: the stream's " +
			"RST_STREAM waits behind x/net's blocked frame write, so its writes never fail")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v after %v; the stalled HTTP/2 connection was never given up on "+
			"(its stream failed after SendTimeout, KeepaliveTimeout passed too)", err, time.Since(start).Round(time.Millisecond))
	}
}
