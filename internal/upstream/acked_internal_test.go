//go:build linux

package upstream

import (
	"net"
	"testing"
)

// What the kernel says was acknowledged before an upload on a reused
// connection counts only where it keeps the count: Linux counts the SYN,
// so a connection's count is at least 1 there, and a 0 is a kernel that
// keeps none (gVisor, WSL 1). Taken for a count, a 0 that stays 0 would
// make every failed upload stale_connection, sent again though the app
// may have read it.
func TestAckedCountOfZeroIsUnknown(t *testing.T) {
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
	pc := newConn(nil, c, c)
	if n, ok := pc.peek.Acked(); ok && !countsAcked(n, ok) {
		t.Errorf("a connection's count on this kernel, %d, is taken for none", n)
	}
	for _, tc := range []struct {
		n        uint64
		ok, want bool
	}{{0, true, false}, {0, false, false}, {1, true, true}, {4096, true, true}} {
		if got := countsAcked(tc.n, tc.ok); got != tc.want {
			t.Errorf("countsAcked(%d, %v) = %v, want %v", tc.n, tc.ok, got, tc.want)
		}
	}
}
