package h2_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// panickyConn panics in Read once armed: a fault in what the reader
// reads through (a guard, a wrapper).
type panickyConn struct {
	net.Conn
	armed *atomic.Bool
}

func (c panickyConn) Read(p []byte) (int, error) {
	if c.armed.Load() {
		panic("read fault")
	}
	return c.Conn.Read(p)
}

// A panic on the connection's reader, which its caller recovers, still
// ends the connection: its streams' contexts are cancelled, so no
// handler waits on for ever.
func TestReaderPanicEndsTheConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var armed atomic.Bool
	started, cancelled := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(waitLimit):
		}
	})
	served := make(chan any, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer nc.Close()
		defer func() { served <- recover() }()
		(&h2.Server{}).ServeConn(context.Background(), panickyConn{nc, &armed}, h)
	}()
	c := getOnNewConn(t, ln.Addr().String())
	await(t, started, "the handler to start")
	armed.Store(true)
	if err := c.Framer.WritePing(false, [8]byte{}); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-served:
		if v != "read fault" {
			t.Fatalf("ServeConn ended with %v, want the read's panic", v)
		}
	case <-time.After(waitLimit):
		t.Fatal("the reader did not panic")
	}
	await(t, cancelled, "the stream's context to be cancelled")
}
