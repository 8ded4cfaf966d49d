package front

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A client that grants an HTTP/2 stream no flow-control window, and keeps
// reading frames: the small answer the handler left in the stream's buffer
// (sent only after the handler returns) cannot go out, and the stream is
// reset within SendTimeout instead of being held for ever, with its
// goroutine and a slot of the connection; Shutdown then completes. The
// same when the handler flushed. An answer of h2Chunk-1 bytes pins what
// streamWriter assumes of the h2 server: a write that fits its stream buffer
// returns without a deadline (were the buffer smaller, that write would
// block here for good).
func TestH2ZeroWindowStreamEnds(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
			srvTLS, cliTLS := testTLS(t, "h2")
			stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				w.Write(bytes.Repeat([]byte("h"), c.size))
				if flush {
					http.NewResponseController(w).Flush()
				}
			}}
			s, c := h2OneStream(t, stub, Options{TLS: srvTLS, SendTimeout: 300 * time.Millisecond, KeepaliveTimeout: time.Minute}, cliTLS, 0, 0, "/s")
			c.Conn.SetDeadline(time.Now().Add(10 * time.Second))
			fr := c.Framer

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

// h2OneStream serves h with opts (over TLS) and opens an HTTP/2
// connection to it, trusting cli, whose streams may each be sent window
// bytes and the connection 65535+connWindow, with stream 1 a GET of path.
func h2OneStream(t *testing.T, h Handler, opts Options, cli *tls.Config, window, connWindow uint32, path string) (*Server, *testutil.RawH2) {
	t.Helper()
	s, addr := parkServe(t, h, opts)
	c, err := testutil.DialH2(t, addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	c.Preface(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	if connWindow > 0 {
		c.Framer.WriteWindowUpdate(0, connWindow)
	}
	c.Headers(1, true, testutil.H2Get("https", "127.0.0.1", path)...)
	return s, c
}
