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
// way a plain one is: a client that stops reading is cut, and let go at
// once. Both ends' socket buffers are small, so that what the server
// sends fills them soon. (Whether a close_notify written after the
// failure would then wait out crypto/tls's own 5 s bound depends on the
// room the kernel leaves; TestNothingIsWrittenAfterAFailedWrite checks
// that none is written.)
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
			s := serveOn(t, stub, Options{SendTimeout: 300 * time.Millisecond}, tls.NewListener(smallSendListener{ln}, srvTLS))
			c := dialALPN(t, &slowSocketDialer, ln.Addr().String(), cliTLS, proto)
			if proto == "h2" {
				h := testutil.NewRawH2(c)
				h.Preface(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
				h.Framer.WriteWindowUpdate(0, 1<<30)
				h.Headers(1, true, testutil.H2Get("https", "127.0.0.1", "/")...)
			} else {
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
			waitConnsWithin(t, s, 0, 3*time.Second) // let go at once, not after a close_notify's 5 s
		})
	}
}
