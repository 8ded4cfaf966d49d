package front

import (
	"crypto/tls"
	"net"
	"net/http"
	"syscall"
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
			s := New(stub, Options{SendTimeout: 300 * time.Millisecond})
			done := make(chan struct{})
			go func() { defer close(done); s.Serve(tls.NewListener(smallSendBuffers{ln}, srvTLS)) }()
			t.Cleanup(func() { s.Close(); <-done })
			raw := dialSmallReceiveBuffer(t, ln.Addr().String())
			cliTLS = cliTLS.Clone()
			cliTLS.NextProtos = []string{proto}
			c := tls.Client(raw, cliTLS)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Time{})
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
			if !testutil.Eventually(3*time.Second, func() bool { _, n := countConns(s, func(*conn) bool { return false }); return n == 0 }) {
				t.Error("the connection was still open 3 s after its send failed")
			}
		})
	}
}

// smallSendBuffers gives each accepted connection a small send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

// dialSmallReceiveBuffer dials addr with a small receive buffer, set
// before the connection's window is announced.
func dialSmallReceiveBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10) })
		return nil
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
