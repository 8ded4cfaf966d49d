package front

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// heldListener hands out connections whose first read, once it has
// bytes, waits for release before it returns them: the moment between
// a goroutine's read of a request's first bytes and its taking the
// request up, held open.
type heldListener struct {
	net.Listener
	read    chan struct{}
	release chan struct{}
}

func (l heldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &heldConn{Conn: c, l: l}, nil
}

type heldConn struct {
	net.Conn
	l    heldListener
	done bool
}

func (c *heldConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.done {
		c.done = true
		close(c.l.read)
		<-c.l.release
	}
	return n, err
}

// A request whose first bytes the connection's goroutine has read, but
// not yet taken up, when Shutdown ends the idle connections, is served
// and answered with Connection: close: the socket holds nothing then,
// so only the goroutine knows the request has begun.
func TestShutdownSparesARequestItsGoroutineHasRead(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := heldListener{Listener: ln, read: make(chan struct{}), release: make(chan struct{})}
	s := New(&limStub{}, Options{HeadTimeout: 5 * time.Second})
	served := make(chan struct{})
	go func() { defer close(served); s.Serve(hl) }()
	t.Cleanup(func() { s.Close(); <-served })

	lc := limDial(t, ln.Addr().String())
	lc.send("GET /a HTTP/1.1\r\nHo")
	<-hl.read
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	testutil.WaitFor(t, 5*time.Second, "Shutdown to end the idle connection's wait", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for fc := range s.conns {
			if fc.state.Load() != connIdle {
				return true
			}
		}
		return false
	})
	close(hl.release)
	lc.send("st: a\r\n\r\n")
	resp, body := lc.mustResponse(5 * time.Second)
	if resp.StatusCode != 200 || !resp.Close || body != "GET /a" {
		t.Errorf("got %d %q close=%v, want 200 with Connection: close", resp.StatusCode, body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
