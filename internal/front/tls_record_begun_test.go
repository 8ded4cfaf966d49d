//go:build linux

package front

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// heldTLSAfterOne dials addr over TLS on a held connection, is served one
// request, and returns the record of its next request, unsent.
func heldTLSAfterOne(t *testing.T, addr string, cli *tls.Config) (*testutil.HeldConn, *limClient, []byte) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	sock := &testutil.HeldConn{Conn: raw}
	c := tls.Client(sock, cli)
	lc := &limClient{t: t, c: c, br: bufio.NewReader(c)}
	lc.served("/one")
	sock.Hold()
	c.Write([]byte("GET /two HTTP/1.1\r\nHost: a\r\n\r\n"))
	return sock, lc, sock.Take()
}

// A client that has begun its next request's TLS record is not idle,
// though neither the socket nor the plaintext shows a byte of it: its
// connection does not park, Shutdown does not close it, and the request
// is answered once the record is whole (with Connection: close, the
// server shutting down).
func TestTLSRecordBegunIsNotIdle(t *testing.T) {
	for _, tc := range []struct {
		name string
		// begin sends the record's first part, and waits until the
		// connection has read it.
		begin func(t *testing.T, s *Server, sock *testutil.HeldConn, part []byte)
	}{
		{"within the idle grace", func(t *testing.T, s *Server, sock *testutil.HeldConn, part []byte) {
			sock.Conn.Write(part)
			testutil.WaitFor(t, 10*time.Second, "the connection to take the request as begun", func() bool {
				n, _ := countConns(s, func(fc *conn) bool { return fc.state.Load() == connActive })
				return n == 1
			})
		}},
		{"while parked", func(t *testing.T, s *Server, sock *testutil.HeldConn, part []byte) {
			waitParked(t, s, 1)
			sock.Conn.Write(part)
			testutil.WaitFor(t, 10*time.Second, "the connection to read the record's start", func() bool {
				n, _ := countConns(s, func(fc *conn) bool { return midRecord(fc.c) })
				return n == 1
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{}
			var cli *tls.Config
			opts.TLS, cli = testTLS(t, "http/1.1")
			s, addr := parkServe(t, echoStub{}, opts)
			sock, lc, rec := heldTLSAfterOne(t, addr, cli)
			tc.begin(t, s, sock, rec[:len(rec)/2])
			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				shut <- s.Shutdown(ctx)
			}()
			waitClosing(t, s)
			sock.Conn.Write(rec[len(rec)/2:])
			resp, body, err := lc.response(5 * time.Second)
			if err != nil {
				t.Fatalf("the request whose record was begun before the shutdown: %v", err)
			}
			if resp.StatusCode != 200 || body != "GET /two" || !resp.Close {
				t.Errorf("got %d %q close=%v, want 200 %q with Connection: close", resp.StatusCode, body, resp.Close, "GET /two")
			}
			if err := <-shut; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// A TLS record begun and never finished has HeadTimeout to arrive, as a
// plain head split by a pause has, not what is left of the keep-alive:
// within the idle grace or woken from parking, the connection then
// closes.
func TestTLSRecordBegunHasHeadTimeout(t *testing.T) {
	const headTimeout = 400 * time.Millisecond
	for _, tc := range []struct {
		name   string
		parked bool
	}{
		{"within the idle grace", false},
		{"while parked", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{HeadTimeout: headTimeout, KeepaliveTimeout: 30 * time.Second}
			var cli *tls.Config
			opts.TLS, cli = testTLS(t, "http/1.1")
			s, addr := parkServe(t, echoStub{}, opts)
			sock, lc, rec := heldTLSAfterOne(t, addr, cli)
			if tc.parked {
				waitParked(t, s, 1)
			}
			start := time.Now()
			sock.Conn.Write(rec[:3])
			lc.closedAfter(start, headTimeout, "head_timeout")
		})
	}
}
