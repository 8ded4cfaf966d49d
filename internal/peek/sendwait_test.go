package peek

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// SendWaitThen gives the bytes it sent back before it waits: the peer
// here answers only once they were given back, so a give-back after the
// wait would leave the wait to its deadline. Bytes not all sent are not
// given back: they are the caller's to send on.
func TestSendWaitThenGivesTheBytesBackBeforeTheWait(t *testing.T) {
	t.Run("all sent", func(t *testing.T) {
		client, server := loopbackPair(t)
		req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		given := make(chan []byte, 1)
		answered := make(chan error, 1)
		go func() {
			buf := make([]byte, len(req))
			if _, err := io.ReadFull(server, buf); err != nil {
				answered <- err
				return
			}
			select {
			case <-given:
				_, err := server.Write([]byte("answer"))
				answered <- err
			case <-time.After(10 * time.Second):
				answered <- nil
			}
		}()
		client.SetReadDeadline(time.Now().Add(20 * time.Second))
		var got []byte
		p := New(client)
		n, err := p.SendWaitThen(req, func(b []byte) { got = b; given <- b })
		if n != len(req) || err != nil {
			t.Fatalf("SendWaitThen: %d, %v; want %d sent", n, err, len(req))
		}
		if err := <-answered; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, req) {
			t.Errorf("given back %q, want %q", got, req)
		}
		if s := p.Look(); s != Data {
			t.Errorf("after the wait the socket looks %v, want Data (the answer)", s)
		}
	})
	t.Run("not all sent", func(t *testing.T) {
		client, _ := loopbackPair(t) // the server reads nothing
		client.(*net.TCPConn).SetWriteBuffer(4096)
		big := make([]byte, 16<<20)
		called := false
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := New(client).SendWaitThen(big, func([]byte) { called = true })
		if n >= len(big) {
			t.Fatalf("all %d bytes sent to a peer that reads nothing", n)
		}
		if called {
			t.Errorf("%d of %d bytes sent, and given back as if all were", n, len(big))
		}
	})
}
