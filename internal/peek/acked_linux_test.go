//go:build linux

package peek

import (
	"io"
	"testing"
	"time"
)

// Acked counts the bytes the peer's TCP took while its socket was open,
// and none of those that met a socket the peer had closed (answered with
// a reset): what tells an app that had part of a request from a
// connection it had closed while idle.
func TestAckedCountsOnlyWhatAnOpenPeerTook(t *testing.T) {
	const size = 1000
	for _, tc := range []struct {
		name string
		// closed: the peer closes before the bytes are sent, and its
		// close has reached the sender.
		closed bool
		want   uint64 // acknowledged of the bytes sent
	}{
		{"peer open", false, size},
		{"peer closed", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := loopbackPair(t)
			p := New(client)
			if tc.closed {
				server.Close()
				waitFor(t, client, p, Closed)
			}
			before, ok := p.Acked()
			if !ok {
				t.Fatal("Acked: not known on a TCP socket")
			}
			if _, err := client.Write(make([]byte, size)); err != nil {
				t.Fatalf("the first write: %v (the socket takes it, whatever the peer)", err)
			}
			deadline := time.Now().Add(5 * time.Second)
			if tc.closed {
				// The peer's reset comes back: a later write fails.
				for _, err := client.Write([]byte("x")); err == nil; _, err = client.Write([]byte("x")) {
					if time.Now().After(deadline) {
						t.Fatal("no write failed after the peer's close")
					}
					time.Sleep(time.Millisecond)
				}
			} else {
				if _, err := io.ReadFull(server, make([]byte, size)); err != nil {
					t.Fatal(err)
				}
				for n, _ := p.Acked(); n-before < tc.want; n, _ = p.Acked() {
					if time.Now().After(deadline) {
						t.Fatalf("acknowledged %d of %d bytes the peer read", n-before, tc.want)
					}
					time.Sleep(time.Millisecond)
				}
			}
			if n, ok := p.Acked(); !ok || n-before != tc.want {
				t.Errorf("acknowledged %d (known %v) of the %d bytes sent, want %d", n-before, ok, size, tc.want)
			}
		})
	}
}

// Acked is asked before every upload on a reused connection: it must not
// allocate (see the package's doc).
func TestAckedAllocatesNothing(t *testing.T) {
	client, _ := loopbackPair(t)
	p := New(client)
	if _, ok := p.Acked(); !ok {
		t.Fatal("Acked: not known on a TCP socket")
	}
	if allocs := testing.AllocsPerRun(100, func() { p.Acked() }); allocs != 0 {
		t.Errorf("Acked allocates %v times", allocs)
	}
}
