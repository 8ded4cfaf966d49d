package front

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// heldListener hands out connections one of whose reads (the first, or
// with afterWrite the first after the server's first write) is held:
// made only once before is closed (when not nil), and, once it has
// bytes, returned only once release is closed. It holds open the moment
// between a goroutine's read of a request's start and its taking the
// request up. With oneByte, the read held is instead the first of one
// byte (an idle wait without buffers) after an answer was written (a
// slow client's first request may be waited for that way too), from its
// start (read is closed then) until release, before it reads.
type heldListener struct {
	net.Listener
	afterWrite bool
	oneByte    bool
	before     chan struct{}
	// sent, when set, counts what the client wrote: the held read waits
	// (after before) until the socket holds all of it, for what the
	// kernel has yet to deliver on a busy machine.
	sent    *atomic.Int64
	read    chan struct{} // closed when the held read has its bytes
	release chan struct{}
	once    *sync.Once // one connection's read is held
}

func newHeldListener(t *testing.T, afterWrite bool, before chan struct{}) heldListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return heldListener{Listener: ln, afterWrite: afterWrite, before: before,
		read: make(chan struct{}), release: make(chan struct{}), once: &sync.Once{}}
}

func (l heldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	hc := &heldConn{Conn: c, l: l}
	l.once.Do(func() { hc.hold = true })
	return hc, nil
}

type heldConn struct {
	net.Conn
	l     heldListener
	hold  bool
	wrote bool
	nread int64
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.wrote = true
	return c.Conn.Write(p)
}

func (c *heldConn) Read(p []byte) (int, error) {
	if c.hold && c.l.oneByte {
		if len(p) == 1 && c.wrote {
			c.hold = false
			close(c.l.read)
			<-c.l.release
		}
		return c.Conn.Read(p)
	}
	held := c.hold && (c.wrote || !c.l.afterWrite)
	if held && c.l.before != nil {
		<-c.l.before
	}
	if held && c.l.sent != nil {
		testutil.Eventually(5*time.Second, func() bool { return c.nread+int64(queued(c.Conn)) >= c.l.sent.Load() })
	}
	n, err := c.Conn.Read(p)
	c.nread += int64(n)
	if held && n > 0 {
		c.hold = false
		close(c.l.read)
		<-c.l.release
	}
	return n, err
}

// countingConn counts what is written to it.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// serveHeld serves h with opts on l until the test ends.
func serveHeld(t *testing.T, l heldListener, h Handler, opts Options) *Server {
	t.Helper()
	s := New(h, opts)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(l) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s
}

// awaitCut waits until Shutdown or reclaim has acted on one of s's idle
// connections: its wait cut short (stopping), or the connection closed.
func awaitCut(t *testing.T, s *Server) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "the idle connection's wait to be cut short", func() bool {
		n, _ := countConns(s, func(fc *conn) bool { st := fc.state.Load(); return st != connIdle && st != connActive })
		return n > 0
	})
}

// beginShutdownOf runs s.Shutdown, bounded by d, and returns its result
// when it comes.
func beginShutdownOf(s *Server, d time.Duration) <-chan error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	return shut
}

// A request whose first bytes the connection's goroutine has read, but
// not yet taken up, when Shutdown ends the idle connections, is served
// and answered with Connection: close: the socket holds nothing then,
// so only the goroutine knows the request has begun.
func TestShutdownSparesARequestItsGoroutineHasRead(t *testing.T) {
	t.Parallel()
	hl := newHeldListener(t, false, nil)
	var el testutil.LockedBuffer
	s := serveHeld(t, hl, &limStub{}, Options{HeadTimeout: 5 * time.Second, ErrorLog: log.New(&el, "", 0)})
	lc := limDial(t, hl.Addr().String())
	lc.send("GET /a HTTP/1.1\r\nHo")
	<-hl.read
	shut := beginShutdownOf(s, 10*time.Second)
	awaitCut(t, s)
	close(hl.release)
	lc.send("st: a\r\n\r\n")
	resp, body := lc.mustResponse(5 * time.Second)
	if resp.StatusCode != 200 || !resp.Close || body != "GET /a" {
		t.Errorf("got %d %q close=%v, want 200 with Connection: close", resp.StatusCode, body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if l := el.String(); l != "" {
		t.Errorf("logged: %s", l)
	}
}

// The same when the connection idle longest is reclaimed for a new
// client: its request is answered, as its last, and the new client is
// served once its slot is free.
func TestReclaimSparesARequestItsGoroutineHasRead(t *testing.T) {
	t.Parallel()
	hl := newHeldListener(t, true, nil)
	s := serveHeld(t, hl, &limStub{}, Options{MaxConnections: 1, KeepaliveTimeout: time.Minute})
	held := limDial(t, hl.Addr().String())
	held.served("/one")
	held.send("GET /two HTTP/1.1\r\nHost: a\r\n\r\n")
	<-hl.read
	other := limDial(t, hl.Addr().String())
	other.send("GET /three HTTP/1.1\r\nHost: a\r\n\r\n")
	awaitCut(t, s)
	close(hl.release)
	resp, body, err := held.response(5 * time.Second)
	if err != nil {
		t.Fatalf("the request read as its connection was reclaimed: %v", err)
	}
	if resp.StatusCode != 200 || !resp.Close || body != "GET /two" {
		t.Errorf("got %d %q close=%v, want 200 %q with Connection: close", resp.StatusCode, body, resp.Close, "GET /two")
	}
	if resp, body := other.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != "GET /three" {
		t.Errorf("the new client: %d %q", resp.StatusCode, body)
	}
}

// An HTTP/2 client that sends its requests along with its handshake's
// end, read into TLS's buffer before Shutdown cuts the connection's
// wait, is answered, and told GOAWAY.
func TestShutdownAnswersH2SentWithTheHandshake(t *testing.T) {
	t.Parallel()
	sent := make(chan struct{})
	hl := newHeldListener(t, true, sent)
	hl.sent = new(atomic.Int64)
	opts, cli := h2Options(t, Options{}, true)
	s := serveHeld(t, hl, &limStub{}, opts)

	raw, err := net.Dial("tcp", hl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	cli = cli.Clone()
	cli.NextProtos = []string{"h2"}
	tc := tls.Client(countingConn{Conn: raw, n: hl.sent}, cli)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	h := testutil.NewRawH2(tc)
	if err := h.Preface(); err != nil {
		t.Fatal(err)
	}
	if err := h.Headers(1, true, testutil.H2Get("https", "a", "/a")...); err != nil {
		t.Fatal(err)
	}
	close(sent)
	<-hl.read
	shut := beginShutdownOf(s, 10*time.Second)
	awaitCut(t, s)
	close(hl.release)

	var status string
	goAway := false
	for status == "" || !goAway {
		f, err := h.Framer.ReadFrame()
		if err != nil {
			t.Fatalf("status %q, GOAWAY %v, then: %v", status, goAway, err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status")
		case *http2.GoAwayFrame:
			goAway = true
		}
	}
	if status != "200" {
		t.Errorf("status %s, want 200", status)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// Shutdown cuts short the wait of a connection that cannot park (not a
// plain socket: behind a PROXY protocol header, say), idle past its
// grace with no request state: it ends, quietly, and one whose client
// sends a request as the wait is cut has it answered, though the socket
// cannot be looked at without a read.
func TestShutdownEndsAnUnparkedWaitPastItsGrace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		send bool // a request, as Shutdown begins
	}{{"nothing sent", false}, {"a request sent as Shutdown begins", true}} {
		send := tc.send
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hl := newHeldListener(t, false, nil)
			hl.oneByte = true
			var el testutil.LockedBuffer
			s := serveHeld(t, hl, echoStub{}, Options{KeepaliveTimeout: 30 * time.Second, ErrorLog: log.New(&el, "", 0)})
			lc := limDial(t, hl.Addr().String())
			lc.served("/one")
			<-hl.read // past its grace, the wait for one byte begins
			if send {
				lc.send("GET /two HTTP/1.1\r\nHost: a\r\n\r\n")
			}
			shut := beginShutdownOf(s, 5*time.Second)
			awaitCut(t, s)
			close(hl.release)
			if send {
				resp, body := lc.mustResponse(5 * time.Second)
				if resp.StatusCode != 200 || body != "GET /two" || !resp.Close {
					t.Errorf("got %d %q close=%v, want 200 %q with Connection: close", resp.StatusCode, body, resp.Close, "GET /two")
				}
			}
			if err := <-shut; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if _, ok := lc.closed(time.Second); !ok {
				t.Errorf("the connection is still open after Shutdown")
			}
			if l := el.String(); l != "" {
				t.Errorf("logged: %s", l)
			}
		})
	}
}
