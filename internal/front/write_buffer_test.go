package front

import (
	"crypto/tls"
	"runtime"
	"testing"
)

// A connection holds a write buffer only while it answers: between two
// requests (before its keep-alive grace ends and it parks) it holds its
// read buffer alone, and its next answer takes a writer again.
//
// The look at the connection is taken beside its goroutine, which goes
// on to give back its read buffer and request state when the grace ends:
// the race detector would rightly report the two, so under it the test
// only serves the requests.
func TestAConnectionBetweenRequestsHoldsNoWriter(t *testing.T) {
	t.Parallel()
	for _, overTLS := range []bool{false, true} {
		name := "plain"
		if overTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var opts Options
			var cli *tls.Config
			if overTLS {
				opts.TLS, cli = testTLS(t, "http/1.1")
			}
			s, addr := parkServe(t, echoStub{}, opts)
			lc := limDialOver(t, addr, cli)
			// Seen idle, not parked: on a machine too busy to look within
			// the grace it parks first, and the look is tried again.
			seen := false
			for i := 0; i < 20 && !seen; i++ {
				lc.served("/one")
				if raceEnabled {
					continue
				}
				fc := onlyConn(t, s)
				st := fc.state.Load()
				for st == connActive {
					runtime.Gosched()
					st = fc.state.Load()
				}
				// Idle comes after the writer went back. The request
				// state is dropped when the grace ends: then it is
				// parked or about to be, and is looked at again.
				if rs := fc.reqState; st == connIdle && rs != nil {
					seen = true
					if rs.bw != nil {
						t.Error("a connection waiting for its next request holds a write buffer")
					}
				}
				lc.served("/two")
			}
			if !seen && !raceEnabled {
				t.Skip("the connection was never seen idle before it parked")
			}
		})
	}
}

// onlyConn is s's one connection.
func onlyConn(t *testing.T, s *Server) *conn {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) != 1 {
		t.Fatalf("%d connections, want 1", len(s.conns))
	}
	for fc := range s.conns {
		return fc
	}
	return nil
}
