//go:build linux

package front

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// The answer's last write waits for the next request in the same poller
// registration (primeSendWait, peek.SendWait). These tests hold it to
// what it must never do, whatever the timing: lose a request, answer one
// wrongly or out of order, or hang a connection. Their bounds are
// generous: a wait that misses its wake-up costs parkAfter, not seconds.

// swStub answers "METHOD target[ body]" (the body echoed), or, for
// /big?n, n bytes; /slow answers only once the test releases it, after
// telling it the request came.
func swStub(started chan<- string, release <-chan struct{}) *limStub {
	return &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(r.URL.Path, "/slow") {
			started <- r.RequestURI
			<-release
		}
		if r.URL.Path == "/big" {
			n, _ := strconv.Atoi(r.URL.RawQuery)
			limAnswer(w, http.StatusOK, strings.Repeat("x", n))
			return
		}
		answer := r.Method + " " + r.RequestURI
		if len(body) > 0 {
			answer += " " + string(body)
		}
		limAnswer(w, http.StatusOK, answer)
	}}
}

// sockets applies f to the socket of each of s's connections.
func sockets(s *Server, f func(fd int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fc := range s.conns {
		if raw := rawSocket(fc.c); raw != nil {
			raw.Control(func(fd uintptr) { f(int(fd)) })
		}
	}
}

// awaitUnread waits until n bytes the client sent wait in the server's
// sockets, unread: they reached the server before it reads them.
func awaitUnread(t *testing.T, s *Server, n int) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, strconv.Itoa(n)+" bytes at the server's socket", func() bool {
		queued := 0
		sockets(s, func(fd int) {
			if q, err := unix.IoctlGetInt(fd, unix.SIOCINQ); err == nil {
				queued += q
			}
		})
		return queued >= n
	})
}

// tcpCloseWait is Linux's TCP state after the peer's FIN (tcp_states.h).
const tcpCloseWait = 8

// awaitClientEnd waits until the end of a client's stream (its FIN)
// reached a connection of s.
func awaitClientEnd(t *testing.T, s *Server) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "the client's end at the server's socket", func() bool {
		ended := false
		sockets(s, func(fd int) {
			if info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil && info.State == tcpCloseWait {
				ended = true
			}
		})
		return ended
	})
}

// swReq is a request for target: a GET, or a POST of body.
func swReq(target, body string) string {
	if body == "" {
		return "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n"
	}
	return "POST " + target + " HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// swWant is the body swStub answers to swReq(target, body).
func swWant(target, body string) string {
	if body == "" {
		return "GET " + target
	}
	return "POST " + target + " " + body
}

// A request pipelined in a write of its own while the one before it is
// being served: the poller's notice of it comes before the answer's wait
// begins, so the wait may not wake; the request must still be answered,
// correctly, in order, and soon (when the grace ends, or at once).
func TestSendWaitPipelinedWhileServed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// first and second are the two requests' bodies ("" a GET).
		first, second string
		// split sends the second request's head in two writes.
		split bool
	}{
		{name: "GET then GET"},
		{name: "POST then POST", first: "one", second: "two"},
		{name: "GET then split GET", split: true},
		{name: "POST then split POST", first: "body-1", second: "body-2", split: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			started, release := make(chan string), make(chan struct{})
			s, addr := parkServe(t, swStub(started, release), Options{KeepaliveTimeout: 30 * time.Second})
			lc := limDial(t, addr)
			// Several rounds on one connection: each one's second request
			// comes while the first is served, after a round that left
			// the connection in any of its states.
			for i := range 10 {
				slow, next := "/slow?"+strconv.Itoa(i), "/next?"+strconv.Itoa(i)
				lc.send(swReq(slow, tc.first))
				select {
				case <-started:
				case <-time.After(5 * time.Second):
					t.Fatalf("round %d: the first request did not reach the handler", i)
				}
				second, rest := swReq(next, tc.second), ""
				if tc.split {
					second, rest = second[:10], second[10:]
				}
				lc.send(second)
				if tc.split {
					awaitUnread(t, s, len(second)) // the head's two pieces arrive apart
					lc.send(rest)
				}
				// The second request reaches the server's socket before
				// the first is answered: that is the case the wait may
				// miss (not needed for correctness, only for the case).
				awaitUnread(t, s, len(second+rest))
				release <- struct{}{}
				for _, want := range []string{swWant(slow, tc.first), swWant(next, tc.second)} {
					start := time.Now()
					resp, body := lc.mustResponse(5 * time.Second)
					if resp.StatusCode != 200 || body != want || resp.Close {
						t.Fatalf("round %d: got %d %q (close %v), want 200 %q kept alive", i, resp.StatusCode, body, resp.Close, want)
					}
					if took := time.Since(start); took > 2*time.Second {
						t.Fatalf("round %d: %q took %v", i, want, took)
					}
				}
			}
		})
	}
}

// The usual keep-alive case, many times on one connection: the next
// request comes after the answer was read, which wakes the wait. Answers
// of every size (the largest fills the socket, so that the last write
// sends only part and no wait happens), with and without bodies. A wait
// that missed its wake-up every time would cost parkAfter a request: 200
// requests in 10s; the bound is half that, and far above what it takes.
func TestSendWaitKeepAliveSequence(t *testing.T) {
	// Not parallel: its bound is on time, and it moves megabytes.
	for _, tc := range []struct {
		name string
		req  func(i int) (send, want string)
	}{
		{"GET", func(i int) (string, string) {
			target := "/seq?" + strconv.Itoa(i)
			return swReq(target, ""), swWant(target, "")
		}},
		{"POST", func(i int) (string, string) {
			target, body := "/post?"+strconv.Itoa(i), strings.Repeat("b", i)
			return swReq(target, body), swWant(target, body)
		}},
		{"answers of every size", func(i int) (string, string) {
			n := []int{0, 1, writeSize - 1, writeSize, writeSize + 1, 3 * writeSize, 1 << 20}[i%7]
			return swReq("/big?"+strconv.Itoa(n), ""), strings.Repeat("x", n)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := limServe(t, swStub(nil, nil), Options{KeepaliveTimeout: 30 * time.Second})
			lc := limDial(t, addr)
			const n = 200
			start := time.Now()
			for i := range n {
				send, want := tc.req(i)
				lc.send(send)
				resp, body := lc.mustResponse(5 * time.Second)
				if resp.StatusCode != 200 || body != want || resp.Close {
					t.Fatalf("request %d: got %d %.80q (%d bytes, close %v), want 200 %.80q (%d bytes)",
						i, resp.StatusCode, body, len(body), resp.Close, want, len(want))
				}
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("%d sequential requests on one connection took %v", n, took)
			}
		})
	}
}

// A client that half-closes after its request gets its whole answer, and
// then the connection's end, soon: whether its end came with the request,
// while the request was served (before the answer's wait began), or
// after it read the answer (during the wait).
func TestSendWaitHalfClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		when string // "with request", "while served", "after answer"
	}{
		{"end with the request", "with request"},
		{"end while the request is served", "while served"},
		{"end after the answer", "after answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			started, release := make(chan string, 1), make(chan struct{})
			s, addr := parkServe(t, swStub(started, release), Options{KeepaliveTimeout: 30 * time.Second})
			lc := limDial(t, addr)
			// One request first, so that the connection is a kept-alive
			// one, then the one the client ends after.
			lc.served("/first")
			lc.send(swReq("/slow", "last"))
			closeWrite := func() {
				if err := lc.c.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.when == "with request" {
				closeWrite()
			}
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("the request did not reach the handler")
			}
			if tc.when == "while served" {
				closeWrite()
				awaitClientEnd(t, s) // the end reaches the server first
			}
			close(release)
			resp, body := lc.mustResponse(5 * time.Second)
			if want := swWant("/slow", "last"); resp.StatusCode != 200 || body != want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
			}
			if tc.when == "after answer" {
				closeWrite()
			}
			start := time.Now()
			lc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := lc.br.Read(make([]byte, 1))
			if n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("after the answer, read %d bytes, %v; want EOF", n, err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the connection ended %v after the answer", took)
			}
		})
	}
}

// Shutdown while a connection waits in its answer's last write for the
// next request: Shutdown ends within its context, and the client, which
// read its whole answer, sees an orderly close (EOF, not a reset).
func TestSendWaitShutdown(t *testing.T) {
	t.Parallel()
	// The wait lasts parkAfter from the answer's write: the client,
	// which checks just after it read the answer, nearly always finds the
	// connection still in it. A few tries make sure one did.
	caught := 0
	for try := 0; try < 5 && caught == 0; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := New(swStub(nil, nil), Options{KeepaliveTimeout: 30 * time.Second})
		served := make(chan struct{})
		go func() { defer close(served); s.Serve(ln) }()
		lc := limDial(t, ln.Addr().String())
		lc.served("/first")
		lc.send(swReq("/second", "body"))
		resp, body := lc.mustResponse(5 * time.Second)
		if want := swWant("/second", "body"); resp.StatusCode != 200 || body != want || resp.Close {
			t.Fatalf("got %d %q (close %v), want 200 %q kept alive", resp.StatusCode, body, resp.Close, want)
		}
		// Still serving the answer (its last write waits): not idle.
		s.mu.Lock()
		for fc := range s.conns {
			if fc.state.Load() == connActive {
				caught++
			}
		}
		s.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err = s.Shutdown(ctx)
		took := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("Shutdown: %v after %v", err, took)
		}
		if took > 5*time.Second {
			t.Errorf("Shutdown took %v", took)
		}
		lc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		extra, err := io.ReadAll(lc.br)
		if err != nil || len(extra) > 0 {
			reset := errors.Is(err, syscall.ECONNRESET)
			t.Errorf("after Shutdown the client read %q, %v (reset %v); want a clean EOF", extra, err, reset)
		}
		s.Close()
		<-served
	}
	if caught == 0 {
		t.Error("in 5 tries, no connection was caught in its answer's wait: the case went untested")
	}
}

// Pipelined requests in one write, and bursts of them: a wait never
// begins while a request is buffered (the read that took them was not
// short, or the buffer holds the next), and all are answered in order.
func TestSendWaitPipelinedBurst(t *testing.T) {
	t.Parallel()
	addr := limServe(t, swStub(nil, nil), Options{KeepaliveTimeout: 30 * time.Second})
	lc := limDial(t, addr)
	var want []string
	for round := range 20 {
		var burst strings.Builder
		for i := range round%5 + 1 {
			target := "/b?" + strconv.Itoa(round) + "-" + strconv.Itoa(i)
			body := strings.Repeat("p", i)
			burst.WriteString(swReq(target, body))
			want = append(want, swWant(target, body))
		}
		lc.send(burst.String())
		var got []string
		for range round%5 + 1 {
			resp, body := lc.mustResponse(5 * time.Second)
			if resp.StatusCode != 200 {
				t.Fatalf("round %d: status %d", round, resp.StatusCode)
			}
			got = append(got, body)
		}
		if diff := cmp.Diff(want[len(want)-len(got):], got); diff != "" {
			t.Fatalf("round %d: answers (-want +got):\n%s", round, diff)
		}
	}
}
