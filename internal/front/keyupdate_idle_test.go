//go:build linux

package front

import (
	"net"
	"testing"
	"time"
)

// A KeyUpdate that wakes an idle connection (parked, or waiting on its
// goroutine) begins no request: the connection stays kept alive for its
// KeepaliveTimeout, not ended once HeadTimeout passes with nothing more,
// and a request sent after that is served.
func TestKeyUpdateOnAnIdleConnectionKeepsItAlive(t *testing.T) {
	t.Parallel()
	// HeadTimeout also bounds the first request from the connection's
	// start: long enough for openssl's first request on a busy machine.
	const head = 1500 * time.Millisecond
	for _, tc := range []struct {
		name string
		wrap func(net.Listener) net.Listener
	}{
		{"parked", func(l net.Listener) net.Listener { return l }},
		{"on its goroutine", func(l net.Listener) net.Listener { return unparkableListener{l} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srvTLS, _ := testTLS(t, "http/1.1")
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := New(echoStub{}, Options{TLS: srvTLS, HeadTimeout: head, KeepaliveTimeout: time.Minute})
			served := make(chan struct{})
			go func() { defer close(served); s.Serve(tc.wrap(inner)) }()
			t.Cleanup(func() { s.Close(); <-served })

			c := startSClient(t, inner.Addr().String(), "-crlf")
			c.get(t, "/a")
			time.Sleep(2 * parkAfter) // idle past its grace: parked, or waiting unparked
			c.keyUpdate(t)
			time.Sleep(2 * head) // past HeadTimeout: the bound the wake had set
			c.get(t, "/b")
		})
	}
}
