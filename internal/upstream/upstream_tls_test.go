package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peek"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// batchConn keeps what a TLS server writes while hold is set and sends it
// in one write on flush: the records of one answer then reach the client
// in one segment, as a fast upstream's do.
type batchConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	if b.hold {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

func (b *batchConn) flush() {
	b.hold = false
	b.Conn.SetWriteDeadline(time.Time{}) // (a close_notify's write leaves one that has passed)
	b.Conn.Write(b.buf)
	b.buf = nil
}

// newTLSApp is an HTTPS app on loopback: answer writes, over TLS, what it
// sends for each request, all of it in one TCP segment, and says whether
// to close the connection then.
func newTLSApp(t *testing.T, cert tls.Certificate, answer func(tc *tls.Conn, r *http.Request) (close bool)) *app {
	t.Helper()
	a := &app{}
	a.addr = testutil.ServeRaw(t, func(c net.Conn) {
		a.conns.Add(1)
		defer c.Close()
		bc := &batchConn{Conn: c}
		tc := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{cert}})
		br := bufio.NewReader(tc)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			bc.hold = true
			end := answer(tc, r)
			bc.flush()
			if end {
				return
			}
		}
	})
	return a
}

// tlsPool is a pool of TLS connections to addr that trusts ca.
func tlsPool(addr string, ca *testutil.CA) *Pool {
	return NewTLSPool(addr, time.Minute, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
}

const good = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"

// ok writes a plain answer "ok".
func ok(tc *tls.Conn) bool {
	io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	return false
}

// The reuse rule over TLS: a connection that ended exactly at its
// answer's end carries the next request; one over which the upstream sent
// anything more while it idled (a stray answer in the same record, in a
// record of its own that crypto/tls already pulled off the socket, a
// close_notify with or without the TCP close) is not reused, and the next
// request gets its own answer on a new connection.
func TestTLSReuseRule(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	cert := ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}})
	stray := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"
	tests := []struct {
		name  string
		first func(tc *tls.Conn) (close bool) // the upstream's answer to the first request
		conns int32
	}{
		{"exact length", func(tc *tls.Conn) bool { return ok(tc) }, 1},
		{"a second response in the same record", func(tc *tls.Conn) bool {
			io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+stray)
			return false
		}, 2},
		{"a second response in a record of its own", func(tc *tls.Conn) bool {
			ok(tc)
			io.WriteString(tc, stray)
			return false
		}, 2},
		{"close_notify, the socket left open", func(tc *tls.Conn) bool {
			ok(tc)
			tc.CloseWrite()
			return false
		}, 2},
		{"close_notify and close", func(tc *tls.Conn) bool {
			ok(tc)
			tc.CloseWrite()
			return true
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			a := newTLSApp(t, cert, func(tc *tls.Conn, r *http.Request) bool {
				if n.Add(1) == 1 {
					return tt.first(tc)
				}
				io.WriteString(tc, good)
				return false
			})
			p := tlsPool(a.addr, ca)
			defer p.Close()
			if _, body, err := do(t, p, "GET", "/1", nil); err != nil || body != "ok" {
				t.Fatalf("first request: %q %v", body, err)
			}
			code, body, err := do(t, p, "GET", "/2", nil)
			if err != nil || code != 200 || body != "good" {
				t.Fatalf("second request got %d %q %v, want its own answer", code, body, err)
			}
			if got := a.conns.Load(); got != tt.conns {
				t.Errorf("the upstream saw %d connections, want %d", got, tt.conns)
			}
		})
	}
}

// A stray record that crypto/tls pulled off the socket with the answer is
// not on the socket any more: the peek finds it quiet, and only the look
// into crypto/tls's buffer finds the record.
func TestTLSQuietLooksPastTheSocket(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	a := newTLSApp(t, ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}}), func(tc *tls.Conn, r *http.Request) bool {
		ok(tc)
		io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
		return false
	})
	p := tlsPool(a.addr, ca)
	defer p.Close()
	if _, _, err := do(t, p, "GET", "/", nil); err != nil {
		t.Fatal(err)
	}
	pc := p.take()
	if pc == nil {
		t.Fatal("the connection was not pooled: its answer ended at its framing")
	}
	defer pc.Close()
	if got := pc.peek.Look(); got != peek.Quiet {
		t.Skipf("the stray record was still on the socket (peek: %d): the segment was split; nothing to test", got)
	}
	if pc.tlsQuiet() {
		t.Errorf("tlsQuiet: the record crypto/tls holds was not seen")
	}
}

// A TLS handshake that fails is an error of getting a connection: the
// attempt never had one, the request was never written.
func TestTLSHandshakeFailure(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	expired := ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}, NotAfter: time.Now().Add(-time.Hour)})
	a := newTLSApp(t, expired, func(tc *tls.Conn, r *http.Request) bool { io.WriteString(tc, good); return false })
	p := tlsPool(a.addr, ca)
	defer p.Close()
	req, _ := http.NewRequest("GET", "http://app/", nil)
	at := &Attempt{Deadline: time.Now().Add(5 * time.Second), Timeout: 5 * time.Second}
	_, _, err := p.RoundTrip(context.Background(), req, at)
	var he *upstreamtls.HandshakeError
	if !errors.As(err, &he) || upstreamtls.Classify(err) != upstreamtls.Expired {
		t.Errorf("RoundTrip error %v (%T), want a handshake error for an expired certificate", err, err)
	}
	if at.Progress.GotConn || at.Progress.WroteRequest {
		t.Errorf("progress %+v after a failed handshake, want none", at.Progress)
	}
}
