package h2

import (
	"context"
	"net"
	"net/http"
	"testing"
)

// failingConn panics in Read: a fault in what the connection reads
// through, before its first frame.
type failingConn struct{ net.Conn }

func (failingConn) Read([]byte) (int, error) { panic("read fault") }

// A panic while the client's preface is read, which the caller
// recovers, ends the connection all the same: GoAway does not count
// it among those it tells.
func TestPanicBeforeTheFirstFrameEndsTheConnection(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer b.Close()
	s := &Server{}
	func() {
		defer func() {
			if v := recover(); v != "read fault" {
				t.Errorf("recovered %v, want the read's panic", v)
			}
		}()
		s.ServeConn(context.Background(), failingConn{a}, http.NotFoundHandler())
	}()
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d connections left in the server's set", n)
	}
}
