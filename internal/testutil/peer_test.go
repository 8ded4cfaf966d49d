//go:build linux

package testutil

import (
	"io"
	"net"
	"testing"
	"time"
)

// PeerUnread follows what the server side of a loopback connection has
// read: the bytes while they wait in its socket, none once it took them
// or closed; AwaitAccepted, what its listener holds.
func TestPeerUnread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if AwaitAccepted(ln.Addr().String(), 50*time.Millisecond) {
		t.Fatal("AwaitAccepted with a connection in the accept queue: true")
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !AwaitAccepted(ln.Addr().String(), 5*time.Second) {
		t.Fatal("AwaitAccepted after the accept: false")
	}
	io.WriteString(c, "hello")
	if n, err := PeerUnread(c); n != 5 || err != nil {
		t.Fatalf("PeerUnread before the server read: %d %v, want 5", n, err)
	}
	io.ReadFull(s, make([]byte, 2))
	if !AwaitPeerRead(c, 3, 5*time.Second) {
		t.Fatal("AwaitPeerRead(3) after the server read 2 of 5: false")
	}
	if AwaitPeerRead(c, 0, 50*time.Millisecond) {
		t.Fatal("AwaitPeerRead(0) with 3 bytes unread: true")
	}
	s.Close()
	if !AwaitPeerRead(c, 0, 5*time.Second) {
		t.Fatal("AwaitPeerRead(0) after the server closed: false")
	}
}

// AwaitPeerSawEnd follows the server side of a connection the client
// closed.
func TestAwaitPeerSawEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if AwaitPeerSawEnd(c, 50*time.Millisecond) {
		t.Fatal("AwaitPeerSawEnd on an open connection: true")
	}
	c.Close()
	if !AwaitPeerSawEnd(c, 5*time.Second) {
		t.Fatal("AwaitPeerSawEnd after the client closed: false")
	}
}
