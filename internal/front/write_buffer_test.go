package front

import (
	"crypto/tls"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
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
	overPlainAndTLS(t, func(t *testing.T, s *Server, lc *limClient) {
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
				if rs.bw.held() {
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

// pendingStub answers every request with how much the connection's
// pending bytes hold on to (their capacity), read on the connection's
// own goroutine while it serves.
type pendingStub struct{}

func (pendingStub) Serve(x *Exchange) {
	if answerRefusal(x) {
		return
	}
	limAnswer(x.W, http.StatusOK, strconv.Itoa(cap(x.side.(*conn).pending)))
}

// A head larger than the read buffer is gathered into an array of its
// own; once parsed, with nothing after it, that array is let go: the
// connection's later requests do not keep tens of KiB alive.
func TestALargeHeadIsNotKeptPastItsRequest(t *testing.T) {
	t.Parallel()
	_, addr := parkServe(t, pendingStub{}, Options{})
	lc := limDial(t, addr)
	for i, req := range []string{
		"GET /large HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", 30<<10) + "\r\n\r\n",
		"GET /small HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		lc.send(req)
		resp, body := lc.mustResponse(5 * time.Second)
		if resp.StatusCode != http.StatusOK || body != "0" {
			t.Errorf("request %d: %d, pending bytes hold %s bytes; want 200 and 0", i, resp.StatusCode, body)
		}
	}
}

// An answer's last send, which waits for the client's next request
// (primeSendWait), gives the write buffer back as soon as its bytes are
// sent (or, over TLS, made into records), not when the wait ends: under
// load most connections are in that wait.
//
// Looked at beside the connection's goroutine, as above: not under the
// race detector.
func TestAnAnswerWaitingForTheNextRequestHoldsNoWriter(t *testing.T) {
	if raceEnabled {
		t.Skip("looks at the connection beside its goroutine")
	}
	t.Parallel()
	overPlainAndTLS(t, func(t *testing.T, s *Server, lc *limClient) {
		// window: well within the wait (parkAfter) that follows the
		// answer's send, so that a look in it sees the wait, not
		// the connection after it.
		const window = parkAfter / 2
		released, looked := 0, 0
		for range 20 {
			lc.served("/one")
			answered := time.Now()
			fc := onlyConn(t, s)
			held := true
			for time.Since(answered) < window {
				if rs := fc.reqState; rs != nil && fc.state.Load() == connActive && !rs.bw.held() {
					held = false
					break
				}
				runtime.Gosched()
			}
			if time.Since(answered) < window {
				looked++
				if !held {
					released++
				}
			} else if held {
				looked++ // held through the whole window
			}
		}
		lc.served("/two")
		if fc := onlyConn(t, s); fc.waits.Load() == 0 {
			t.Fatal("no answer's last send waited for the next request: the test saw no wait")
		}
		if looked == 0 {
			t.Skip("the machine was too busy to look within the wait")
		}
		if released == 0 {
			t.Errorf("in %d answers' waits for the next request, the write buffer was held each time; want it given back once sent", looked)
		}
	})
}

// overPlainAndTLS runs f as parallel subtests, plain and tls, each with a
// server answering what it is sent (parkServe, echoStub) and a client
// connected to it.
func overPlainAndTLS(t *testing.T, f func(t *testing.T, s *Server, lc *limClient)) {
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
			f(t, s, limDialOver(t, addr, cli))
		})
	}
}
