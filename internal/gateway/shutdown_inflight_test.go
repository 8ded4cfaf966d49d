package gateway_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A request whose head is arriving when Shutdown begins is in flight: it
// is answered, with Connection: close, whatever its framing, and
// Shutdown returns.
func TestShutdownHeadInFlight(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	cases := []struct {
		name, first, rest string
	}{
		{"plain GET", "GET /a HTTP/1.1\r\nHo", "st: a\r\n\r\n"},
		{"chunked POST", "POST /a HTTP/1.1\r\nHo", "st: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
		{"HTTP/1.0", "GET /a HTTP/1.0\r\nHo", "st: a\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gw, _ := oneMember(t, app, nil, gateway.Options{})
			f, addr, accepted := serveNoticingAccepts(t, &countingHandler{gw: gw}, front.Options{HeadTimeout: 5 * time.Second})
			c := dialRaw(t, addr)
			c.send(tc.first)
			// Shutdown begins once the front has the connection, whether or
			// not it has read the first bytes yet: either way the request
			// is in flight. (One still in the listen backlog is refused
			// with the listener, as by any server.)
			<-accepted
			shutReturned := beginShutdown(t, f)
			testutil.WaitFor(t, 5*time.Second, "Shutdown begun (the listener closed)", func() bool {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			c.send(tc.rest)
			resp, body, err := c.final(4 * time.Second)
			if err != nil {
				t.Errorf("a request whose head was arriving when Shutdown began got no answer: %v", err)
			} else if resp.StatusCode != 200 || !resp.Close {
				t.Errorf("got %d %q close=%v, want 200 with Connection: close", resp.StatusCode, body, resp.Close)
			}
			shutReturned()
		})
	}
}

// serveNoticingAccepts serves h as serveWith does, and tells on accepted
// of each connection the front has accepted.
func serveNoticingAccepts(t *testing.T, h front.Handler, opts front.Options) (*front.Server, string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 16)
	f := front.New(h, opts)
	done := make(chan struct{})
	go func() { defer close(done); f.Serve(noticingListener{ln, accepted}) }()
	t.Cleanup(func() { f.Close(); <-done })
	return f, ln.Addr().String(), accepted
}

type noticingListener struct {
	net.Listener
	accepted chan<- struct{}
}

func (l noticingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.accepted <- struct{}{}:
		default: // nobody waits for more
		}
	}
	return c, err
}

// beginShutdown begins f's Shutdown, bounded by 5s, and returns a wait
// for its return that fails the test if it fails or never comes.
func beginShutdown(t *testing.T, f *front.Server) (returned func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	shut := make(chan error, 1)
	go func() { shut <- f.Shutdown(ctx) }()
	return func() {
		t.Helper()
		select {
		case err := <-shut:
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		case <-time.After(6 * time.Second):
			t.Fatal("Shutdown did not return")
		}
	}
}

// Requests in flight when Shutdown begins finish with Connection: close,
// whatever their framing (TestFrontShutdown has HTTP/2's form); an idle
// keep-alive connection is closed; Shutdown returns.
func TestShutdownInFlight(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	s := serveCounted(t, app, front.Options{}, nil)
	idle := dialRaw(t, s.addr)
	idle.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, _, err := idle.final(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	get := dialRaw(t, s.addr)
	get.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	chunked := dialRaw(t, s.addr)
	chunked.send("POST /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
	testutil.WaitFor(t, 5*time.Second, "both requests at the app", func() bool { return s.m.Inflight() == 2 })
	shutReturned := beginShutdown(t, s.f)
	for name, c := range map[string]*rawConn{"GET": get, "chunked POST": chunked} {
		resp, body, err := c.final(4 * time.Second)
		if err != nil || resp.StatusCode != 200 || !resp.Close {
			t.Errorf("%s in flight: %v %q %v; want 200 with Connection: close", name, resp, body, err)
		}
	}
	idle.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := idle.br.ReadByte(); err == nil || isTimeout(err) {
		t.Errorf("the idle connection was not closed by Shutdown: %v", err)
	}
	shutReturned()
}

// Close ends every client connection, an upgraded one too.
func TestCloseEndsUpgraded(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	s := serveCounted(t, app, front.Options{}, nil)
	c := dialRaw(t, s.addr)
	c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if resp, _, err := c.resp(3 * time.Second); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	closed := make(chan struct{})
	go func() { s.f.Close(); close(closed) }()
	c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := c.br.ReadByte()
	if isTimeout(err) {
		t.Errorf("an upgraded connection stays open 3 s after Close")
	}
	<-closed
	c.close()
}
