package front

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A drain does not wait for tunnels: with max_connections all taken by
// tunnels, a connection accepted and waiting for a slot must not keep
// Shutdown from returning (it waited for its whole deadline, or forever
// without one).
func TestShutdownNotHeldByAConnectionWaitingForATunnelsSlot(t *testing.T) {
	t.Parallel()
	ends := make(chan tunnelEnd, 1)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &acceptHeldListener{Listener: raw, accepted: make(chan struct{}, 2), release: make(chan struct{}), closed: make(chan struct{})}
	s := serveOn(t, switchStub(ends), Options{MaxConnections: 1}, ln)
	ws, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(ws, wsRequest)
	resp, err := http.ReadResponse(bufio.NewReader(ws), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	late, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	io.WriteString(late, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	<-ln.accepted
	<-ln.accepted // the late one: Serve waits for the tunnel's slot
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown after %v: %v", time.Since(start), err)
	}
}

// Serve on two listeners: the drain closes both, and ends.
func TestShutdownAfterServeOnTwoListeners(t *testing.T) {
	t.Parallel()
	s := New(&limStub{}, Options{})
	served := make(chan error, 2)
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		go func() { served <- s.Serve(ln) }()
	}
	t.Cleanup(func() { s.Close() })
	for _, ln := range lns {
		// Each loop is at its Accept once it answered.
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if _, err := io.ReadAll(c); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for range 2 {
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}
}
