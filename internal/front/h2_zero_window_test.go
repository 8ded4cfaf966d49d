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

// A client that grants an HTTP/2 stream no flow-control window, and keeps
// reading frames: the small answer the handler left in x/net's buffer
// (sent only after the handler returns) cannot go out, and the stream is
// reset within SendTimeout instead of being held for ever, with its
// goroutine and a slot of the connection; Shutdown then completes. The
// same when the handler flushed. An answer of h2Chunk-1 bytes pins what
// closingWriter assumes of x/net: a write that fits its stream buffer
// returns without a deadline (were the buffer smaller, that write would
// block here for good).
func TestH2ZeroWindowStreamEnds(t *testing.T) {
	for _, c := range []struct {
		name  string
		size  int
		flush bool
	}{
		{"small unflushed", 5, false},
		{"small flushed", 5, true},
		{"fits the stream buffer", h2Chunk - 1, false},
	} {
		flush := c.flush
		t.Run(c.name, func(t *testing.T) {
			srvTLS, cliTLS := testTLS(t, "h2")
			stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				w.Write(bytes.Repeat([]byte("h"), c.size))
				if flush {
					http.NewResponseController(w).Flush()
				}
			}}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := New(stub, Options{TLS: srvTLS, SendTimeout: 300 * time.Millisecond, KeepaliveTimeout: time.Minute})
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
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Write([]byte(http2.ClientPreface))
			fr := http2.NewFramer(c, c)
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "127.0.0.1"}, {":path", "/s"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})

			start := time.Now()
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("after %v, waiting for the stream's end: %v", time.Since(start), err)
				}
				if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
					fr.WriteSettingsAck()
				}
				if _, ok := f.(*http2.DataFrame); ok {
					t.Fatalf("a DATA frame came through a zero window")
				}
				if rf, ok := f.(*http2.RSTStreamFrame); ok && rf.StreamID == 1 {
					break
				}
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the stream was reset after %v, want about SendTimeout (300ms)", took)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
