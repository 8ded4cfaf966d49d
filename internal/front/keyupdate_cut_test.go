//go:build linux

package front

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peek"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// cutOnReadListener's connections, once armed, cut their server's idle
// wait short (stopWait) in the middle of a read that returned bytes, once
// more bytes wait on the socket: the cut lands after TLS has a record
// to act on and before it acts, with a request behind it.
type cutOnReadListener struct {
	net.Listener
	mu    sync.Mutex
	armed bool
	got   chan struct{} // the armed read has its bytes
	cut   func()
}

func (l *cutOnReadListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cutOnReadConn{Conn: c, l: l}, nil
}

type cutOnReadConn struct {
	net.Conn
	l *cutOnReadListener
}

func (c *cutOnReadConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.mu.Lock()
	armed := c.l.armed && n > 0
	if armed {
		c.l.armed = false
	}
	c.l.mu.Unlock()
	if armed {
		close(c.l.got)
		testutil.Eventually(5*time.Second, func() bool { return peek.Pending(c.Conn) == peek.Data })
		c.l.cut()
	}
	return n, err
}

// A TLS 1.3 client's KeyUpdate, read as Shutdown cuts the connection's
// idle wait, is answered, and the request sent after it is served:
// the cut fails no write TLS makes after its handshake, which would
// break the connection for good. (openssl's s_client sends the
// KeyUpdate; Go's client cannot.)
func TestKeyUpdateAsTheWaitIsCut(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("GATEHOUSE_OPENSSL_TESTS") == "1" {
			t.Fatalf("GATEHOUSE_OPENSSL_TESTS=1 but no openssl on PATH: %v", err)
		}
		t.Skip("openssl is not installed")
	}
	srvTLS, _ := testTLS(t, "http/1.1")
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &cutOnReadListener{Listener: inner, got: make(chan struct{})}
	s := New(echoStub{}, Options{TLS: srvTLS, KeepaliveTimeout: time.Minute})
	ln.cut = func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for fc := range s.conns {
			fc.stopWait()
		}
	}
	served := make(chan struct{})
	go func() { defer close(served); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-served })

	cmd := exec.Command("openssl", "s_client", "-connect", inner.Addr().String(), "-tls1_3", "-crlf", "-quiet", "-no_ign_eof")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	br := bufio.NewReader(out)
	answer := func(path string) {
		t.Helper()
		type result struct {
			resp *http.Response
			body string
			err  error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				done <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			done <- result{resp, string(b), err}
		}()
		select {
		case r := <-done:
			if r.err != nil || r.resp.StatusCode != 200 || r.body != "GET "+path {
				t.Fatalf("GET %s: %v %q %v", path, r.resp, r.body, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("GET %s: no answer", path)
		}
	}
	io.WriteString(in, "GET /a HTTP/1.1\nHost: a\n\n")
	answer("/a")
	ln.mu.Lock()
	ln.armed = true
	ln.mu.Unlock()
	io.WriteString(in, "K\n") // a KeyUpdate that asks for the server's
	select {
	case <-ln.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the KeyUpdate never reached the server")
	}
	io.WriteString(in, "GET /b HTTP/1.1\nHost: a\n\n")
	answer("/b")
}
