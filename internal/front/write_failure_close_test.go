package front

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Once a write to the client has failed, nothing more is written on its
// connection: not even the close_notify crypto/tls's Close sends, under
// a deadline of its own (5 s), which a client that stopped reading would
// hold the close, and over HTTP/2 the handler told of the failure, for.
// The socket under each connection fails its writes on cue; what it
// takes after that must be nothing. Each protocol, over TLS the server
// set up (a tlsSocket) and over a TLS listener's connections.
func TestNothingIsWrittenAfterAFailedWrite(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"http/1.1", "h2"} {
		for _, serverTLS := range []bool{true, false} {
			// cut: the request's body is left unread, and the handler
			// cuts its answer short, whose flush is the write that
			// fails; the connection does not linger for the body.
			for _, cut := range []bool{false, true} {
				name := proto + "/tls-listener"
				if serverTLS {
					name = proto + "/server-tls"
				}
				if cut {
					name += "/cut-short"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					nothingAfterAFailedWrite(t, proto, serverTLS, cut)
				})
			}
		}
	}
}

func nothingAfterAFailedWrite(t *testing.T, proto string, serverTLS, cut bool) {
	srvTLS, cliTLS := testTLS(t, proto)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln, accepted: make(chan *failingConn, 1)}
	var fc *failingConn
	result := make(chan error, 1)
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("first"))
		w.(http.Flusher).Flush()
		fc.fail()
		if cut {
			w.Write([]byte("buffered"))
			w.(ResponseWriter).Abort()
			result <- errCutShort
			return
		}
		// The failure may reach the handler a write or two later: an
		// HTTP/2 stream's writes are buffered, and flushed for it.
		var err error
		for start := time.Now(); err == nil && time.Since(start) < 5*time.Second; {
			if _, err = w.Write(make([]byte, 4<<10)); err == nil {
				err = http.NewResponseController(w).Flush()
			}
		}
		result <- err
	}}
	opts := Options{SendTimeout: 5 * time.Second}
	var sln net.Listener = fl
	if serverTLS {
		opts.TLS = srvTLS
	} else {
		sln = tls.NewListener(fl, srvTLS)
	}
	s := serveOn(t, stub, opts, sln)
	c := dialALPN(t, &net.Dialer{}, ln.Addr().String(), cliTLS, proto)
	fc = <-fl.accepted
	switch {
	case proto == "h2" && cut:
		h := testutil.NewRawH2(c)
		h.Preface()
		h.Headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "127.0.0.1", ":path", "/", "content-length", "100000")
		h.Framer.WriteData(1, false, []byte("abc"))
	case proto == "h2":
		h := testutil.NewRawH2(c)
		h.Preface()
		h.Headers(1, true, testutil.H2Get("https", "127.0.0.1", "/")...)
	case cut:
		c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc"))
	default:
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	}
	go io.Copy(io.Discard, c) // the client reads: nothing but the failure stops the answer

	select {
	case err := <-result:
		if err == nil {
			t.Fatal("the handler's write after the socket failed succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's write never returned")
	}
	waitConnsWithin(t, s, 0, 3*time.Second) // let go at once, not after a close_notify's 5 s
	if n := fc.writtenAfter(); n != 0 {
		t.Errorf("%d bytes were written to the socket after a write failed (a close_notify is 24 or 31)", n)
	}
}

// errCutShort stands for the failure of a write the handler does not
// see: Abort's flush.
var errCutShort = errors.New("cut short")

// failingListener hands each connection it accepts over as a
// failingConn, to the test too.
type failingListener struct {
	net.Listener
	accepted chan *failingConn
}

func (l *failingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &failingConn{Conn: c}
	select {
	case l.accepted <- fc:
	default:
	}
	return fc, nil
}

// failingConn is a socket whose next write fails once fail is called, as
// a write past its deadline does; the writes after that go through, and
// what the socket takes of them is counted.
type failingConn struct {
	net.Conn
	mu      sync.Mutex
	failing bool
	failed  bool
	after   int
}

func (c *failingConn) fail() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing = true
}

func (c *failingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing && !c.failed {
		c.failed = true
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}
	}
	n, err := c.Conn.Write(p)
	if c.failed {
		c.after += n
	}
	return n, err
}

func (c *failingConn) writtenAfter() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.after
}
