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

// sClient is openssl's s_client over TLS 1.3, the one client at hand
// that sends a KeyUpdate (Go's cannot): what is written to in goes to
// the server; out is what the server sent.
type sClient struct {
	in      io.WriteCloser
	out     *bufio.Reader
	updates chan struct{} // a KeyUpdate was sent
}

func startSClient(t *testing.T, addr string, args ...string) *sClient {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("GATEHOUSE_OPENSSL_TESTS") == "1" {
			t.Fatalf("GATEHOUSE_OPENSSL_TESTS=1 but no openssl on PATH: %v", err)
		}
		t.Skip("openssl is not installed")
	}
	args = append([]string{"s_client", "-connect", addr, "-tls1_3", "-quiet", "-no_ign_eof"}, args...)
	cmd := exec.Command("openssl", args...)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	errs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &sClient{in: in, out: bufio.NewReader(out), updates: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(errs)
		for sc.Scan() {
			if sc.Text() == "KEYUPDATE" {
				c.updates <- struct{}{}
			}
		}
	}()
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	return c
}

// keyUpdate sends a KeyUpdate that asks for the server's own. s_client
// reads a line "K" as that command only at the start of what one read
// of its input gets, and drops the rest of it: what follows is written
// once it has acted.
func (c *sClient) keyUpdate(t *testing.T) {
	t.Helper()
	io.WriteString(c.in, "K\n")
	select {
	case <-c.updates:
	case <-time.After(10 * time.Second):
		t.Fatal("s_client sent no KeyUpdate")
	}
}

// get sends GET path over HTTP/1.1 and checks echoStub's answer.
func (c *sClient) get(t *testing.T, path string) {
	t.Helper()
	io.WriteString(c.in, "GET "+path+" HTTP/1.1\nHost: a\n\n")
	type result struct {
		resp *http.Response
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.ReadResponse(c.out, nil)
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

// A TLS 1.3 client's KeyUpdate, read as Shutdown cuts the connection's
// idle wait, is answered, and the request sent after it is served:
// the cut fails no write TLS makes after its handshake, which would
// break the connection for good.
func TestKeyUpdateAsTheWaitIsCut(t *testing.T) {
	t.Parallel()
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

	c := startSClient(t, inner.Addr().String(), "-crlf")
	c.get(t, "/a")
	ln.mu.Lock()
	ln.armed = true
	ln.mu.Unlock()
	c.keyUpdate(t)
	select {
	case <-ln.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the KeyUpdate never reached the server")
	}
	c.get(t, "/b")
}

// unparkableListener's connections are not sockets to the server, which
// so cannot park them and waits for their next request on their
// goroutine.
type unparkableListener struct{ net.Listener }

type unparkableConn struct{ net.Conn }

func (l unparkableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return unparkableConn{c}, nil
}

// sClientConn is an s_client as the connection an HTTP/2 test client
// speaks on: its input and output, with no deadlines.
type sClientConn struct {
	net.Conn // nil: what a test client does not call
	c        *sClient
}

func (sc sClientConn) Read(p []byte) (int, error)       { return sc.c.out.Read(p) }
func (sc sClientConn) Write(p []byte) (int, error)      { return sc.c.in.Write(p) }
func (sc sClientConn) SetDeadline(time.Time) error      { return nil }
func (sc sClientConn) SetReadDeadline(time.Time) error  { return nil }
func (sc sClientConn) SetWriteDeadline(time.Time) error { return nil }

// A KeyUpdate that comes longer than SendTimeout after the last answer,
// with a request behind it, is answered and the request served, over
// HTTP/1.1 and HTTP/2, whether the connection waited parked or on its
// goroutine: the answer's write deadline, long past, is not the
// KeyUpdate reply's.
func TestKeyUpdateLongAfterTheLastAnswer(t *testing.T) {
	t.Parallel()
	// Long enough that the answers' own writes, bounded by it, do not
	// miss it on a busy machine; what matters is that it has passed when
	// the KeyUpdate comes.
	const send = 250 * time.Millisecond
	parkedOn := func(l net.Listener) net.Listener { return l }
	unparked := func(l net.Listener) net.Listener { return unparkableListener{l} }
	for _, tc := range []struct {
		name string
		wrap func(net.Listener) net.Listener
		h2   bool
	}{
		{"HTTP/1.1 parked", parkedOn, false},
		{"HTTP/1.1 on its goroutine", unparked, false},
		{"HTTP/2 parked", parkedOn, true},
		{"HTTP/2 on its goroutine", unparked, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proto, args := "http/1.1", []string{"-crlf"}
			if tc.h2 {
				proto, args = "h2", []string{"-alpn", "h2"}
			}
			srvTLS, _ := testTLS(t, proto)
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := New(echoStub{}, Options{TLS: srvTLS, KeepaliveTimeout: time.Minute, SendTimeout: send})
			served := make(chan struct{})
			go func() { defer close(served); s.Serve(tc.wrap(inner)) }()
			t.Cleanup(func() { s.Close(); <-served })

			c := startSClient(t, inner.Addr().String(), args...)
			get := c.get
			if tc.h2 {
				hc := &h2Client{t: t, RawH2: testutil.NewRawH2(sClientConn{c: c})}
				if err := hc.Preface(); err != nil {
					t.Fatal(err)
				}
				id := uint32(1)
				get = func(t *testing.T, path string) {
					t.Helper()
					if a := hc.exchange(id, h2Get("https", path)); a.status() != "200" || a.data != "GET "+path {
						t.Fatalf("GET %s: %s %q", path, a.status(), a.data)
					}
					id += 2
				}
			}
			get(t, "/a")
			// The answer's write deadline passes: what is waited for is
			// time itself.
			time.Sleep(3 * send)
			c.keyUpdate(t)
			get(t, "/b")
		})
	}
}
