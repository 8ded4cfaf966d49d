package front

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A TLS connection the server did not wrap itself (Serve given a TLS
// listener, Options.TLS unset: it serves any *tls.Conn it accepts) has
// no tlsSocket to bound its writes, and is bounded by SendTimeout the
// way a plain one is: a client that stops reading is cut.
func TestSendTimeoutOnATLSListenersConnections(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			srvTLS, cliTLS := testTLS(t, proto)
			failed := make(chan time.Duration, 1)
			stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				chunk := make([]byte, 32<<10)
				start := time.Now()
				for time.Since(start) < 8*time.Second {
					if _, err := w.Write(chunk); err != nil {
						failed <- time.Since(start)
						return
					}
				}
				failed <- -1
			}}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := New(stub, Options{SendTimeout: 300 * time.Millisecond})
			done := make(chan struct{})
			go func() { defer close(done); s.Serve(tls.NewListener(ln, srvTLS)) }()
			t.Cleanup(func() { s.Close(); <-done })
			addr := ln.Addr().String()
			if proto == "h2" {
				c, err := testutil.DialH2(t, addr, cliTLS)
				if err != nil {
					t.Fatal(err)
				}
				c.Preface(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
				c.Framer.WriteWindowUpdate(0, 1<<30)
				c.Headers(1, true, testutil.H2Get("https", "127.0.0.1", "/")...)
			} else {
				c, err := tls.Dial("tcp", addr, cliTLS)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			}
			select {
			case d := <-failed:
				if d < 0 || d > 3*time.Second {
					t.Errorf("the handler's writes failed after %v (-1: never); want about SendTimeout", d)
				}
			case <-time.After(12 * time.Second):
				t.Fatal("the handler never returned")
			}
		})
	}
}
