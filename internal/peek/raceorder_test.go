package peek

import (
	"net"
	"testing"
)

// What one goroutine did before it wrote to a connection comes, for the
// race detector, before what another does once it has read that: package
// syscall's Read and Write, net.Conn's, tell it so, and a Peeker's Read,
// Write and SendWait must too, or state handed over a connection (a
// test's stub's record of a request, read once the answer is in) is
// reported as raced. Without the detector there is nothing to see.
func TestHandedOverAConnectionInOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// send writes b from c's side or its peer's; recv reads it on
		// the other.
		send, recv func(p *Peeker, peer net.Conn, b []byte) (int, error)
	}{
		{"a Peeker's Write, the connection's Read",
			func(p *Peeker, _ net.Conn, b []byte) (int, error) { return p.Write(b) },
			func(_ *Peeker, peer net.Conn, b []byte) (int, error) { return peer.Read(b) }},
		{"the connection's Write, a Peeker's Read",
			func(_ *Peeker, peer net.Conn, b []byte) (int, error) { return peer.Write(b) },
			func(p *Peeker, _ net.Conn, b []byte) (int, error) { return p.Read(b) }},
		{"a Peeker's SendWait, the connection's Read",
			func(p *Peeker, _ net.Conn, b []byte) (int, error) { return p.SendWait(b) },
			func(_ *Peeker, peer net.Conn, b []byte) (int, error) {
				n, err := peer.Read(b)
				peer.Write([]byte("the answer, which ends the wait"))
				return n, err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			peer, c := loopbackPair(t)
			p := New(c)
			var handed string
			sent := make(chan error, 1)
			go func() {
				handed = "what the sender did"
				_, err := tt.send(p, peer, []byte("x"))
				sent <- err
			}()
			if _, err := tt.recv(p, peer, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if handed != "what the sender did" {
				t.Errorf("read %q after the write", handed)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		})
	}
}
