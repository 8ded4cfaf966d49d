package cause_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/upstreamtlstest"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// handshake connects to addr and runs the handshake as the gateway's
// connection pool does, its connect phase bounded by within.
func handshake(t *testing.T, u *config.UpstreamTLS, addr string, within time.Duration) (*tls.Conn, error) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(within))
	tc, err := upstreamtls.Handshake(context.Background(), raw, addr, upstreamtls.Config(u, addr))
	if err == nil {
		raw.SetDeadline(time.Time{})
		t.Cleanup(func() { tc.Close() })
	}
	return tc, err
}

// A TLS handshake that fails is a connect-phase failure, upstream_tls,
// retried for any method: the request was never sent. One that takes too
// long is connect_timeout. A TLS 1.3 upstream that refuses the client
// certificate does so on the first read, after the request was written:
// still upstream_tls, as it never read the request, but only on a new
// connection.
func TestClassifyUpstreamTLS(t *testing.T) {
	ca := testutil.NewCA(t, "Test CA")
	trust := upstreamtlstest.Validated(t, config.UpstreamTLS{CAFile: ca.File(t)})
	loopback := []string{"127.0.0.1"}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	// refusedAfterWrite writes a request on a TLS 1.3 connection to an
	// upstream that wants a client certificate, and reads the answer.
	refusedAfterWrite := func(t *testing.T) error {
		addr := upstreamtlstest.ClientCertRequired(t, ca, ok)
		tc, err := handshake(t, trust, addr, 5*time.Second)
		if err != nil {
			t.Fatalf("handshake: %v (TLS 1.3 ends the client's before the certificate is checked)", err)
		}
		if _, err := tc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = bufio.NewReader(tc).Peek(1)
		return err
	}
	tests := []struct {
		name string
		run  func(t *testing.T) cause.Attempt
		want cause.Cause
	}{
		{"certificate expired", func(t *testing.T) cause.Attempt {
			addr := testutil.ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{
				ca.Issue(t, testutil.Leaf{Names: loopback, NotAfter: time.Now().Add(-time.Hour)}),
			}}, ok)
			_, err := handshake(t, trust, addr, 5*time.Second)
			return cause.Attempt{Err: err}
		}, cause.UpstreamTLS},
		{"the upstream closes during the handshake", func(t *testing.T) cause.Attempt {
			addr := testutil.ServeRaw(t, func(c net.Conn) { c.Read(make([]byte, 64<<10)); c.Close() })
			_, err := handshake(t, trust, addr, 5*time.Second)
			return cause.Attempt{Err: err}
		}, cause.UpstreamTLS},
		{"the upstream never answers the handshake", func(t *testing.T) cause.Attempt {
			addr := upstreamtlstest.Stalled(t)
			_, err := handshake(t, trust, addr, 100*time.Millisecond)
			return cause.Attempt{Err: err}
		}, cause.ConnectTimeout},
		{"client certificate refused after the request was written", func(t *testing.T) cause.Attempt {
			return cause.Attempt{Err: refusedAfterWrite(t), Progress: cause.Progress{GotConn: true, WroteRequest: true, TLS13: true}}
		}, cause.UpstreamTLS},
		{"an alert on a reused connection is not the handshake's", func(t *testing.T) cause.Attempt {
			return cause.Attempt{Err: refusedAfterWrite(t), Progress: cause.Progress{GotConn: true, Reused: true, WroteRequest: true, TLS13: true}}
		}, cause.UpstreamReset},
		{"over TLS 1.2 the handshake was over before the request: any alert after it may follow a read", func(t *testing.T) cause.Attempt {
			return cause.Attempt{Err: refusedAfterWrite(t), Progress: cause.Progress{GotConn: true, WroteRequest: true}}
		}, cause.UpstreamReset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.run(t)
			if a.Err == nil {
				t.Fatal("the attempt did not fail")
			}
			if got := cause.Classify(a); got != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", a.Err, got, tc.want)
			}
		})
	}
}
