//go:build linux

package front

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
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

// swTransports are the connections the answer's wait is tried on: a
// plain socket, and TLS over one, where the answer's records go out in
// one send (tlsSocket.sendWait).
var swTransports = []struct {
	name    string
	overTLS bool
}{{"plain", false}, {"tls", true}}

// swConn is a test client's connection; wire counts the bytes it put on
// the socket, records and all over TLS.
type swConn struct {
	*limClient
	raw  *net.TCPConn
	wire *atomic.Int64
}

// swServe serves h with opts, over TLS when overTLS, and dials it.
func swServe(t *testing.T, overTLS bool, h Handler, opts Options) (*Server, *swConn) {
	t.Helper()
	var cli *tls.Config
	if overTLS {
		opts.TLS, cli = testTLS(t, "http/1.1")
	}
	s, addr := parkServe(t, h, opts)
	return s, swDial(t, addr, cli)
}

// swDial dials addr, over TLS when cli is set.
func swDial(t *testing.T, addr string, cli *tls.Config) *swConn {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	sc := &swConn{raw: raw.(*net.TCPConn), wire: new(atomic.Int64)}
	var c net.Conn = countingConn{Conn: raw, n: sc.wire}
	if cli != nil {
		tc := tls.Client(c, cli)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	sc.limClient = &limClient{t: t, c: c, br: bufio.NewReader(c)}
	return sc
}

// sendCounted sends s and returns how many bytes that put on the socket.
func (sc *swConn) sendCounted(s string) int {
	before := sc.wire.Load()
	sc.send(s)
	return int(sc.wire.Load() - before)
}

// closeWrite ends what the client sends: over TLS with close_notify,
// then, as over a plain socket, with its half of the TCP connection.
func (sc *swConn) closeWrite() error {
	if tc, ok := sc.c.(*tls.Conn); ok {
		if err := tc.CloseWrite(); err != nil {
			return err
		}
	}
	return sc.raw.CloseWrite()
}

// waitsOf is how many answers of s's connections waited in their last
// write for the next request.
func waitsOf(s *Server) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for fc := range s.conns {
		n += fc.waits.Load()
	}
	return n
}

// The usual keep-alive case, where the next request comes after the
// answer was read: the answer's last write waits for it, over a plain
// socket and over TLS (one read fewer a request; the other tests here
// hold the wait to being harmless, this one to being made).
func TestSendWaitIsMade(t *testing.T) {
	t.Parallel()
	for _, tr := range swTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			s, lc := swServe(t, tr.overTLS, swStub(nil, nil), Options{KeepaliveTimeout: 30 * time.Second})
			const n = 20
			for i := range n {
				target := "/made?" + strconv.Itoa(i)
				lc.send(swReq(target, ""))
				if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != swWant(target, "") {
					t.Fatalf("request %d: got %d %q", i, resp.StatusCode, body)
				}
			}
			// The last answer's wait may still be counting.
			if got := waitsOf(s); got < n/2 {
				t.Errorf("%d of %d answers waited for the next request in their last write", got, n)
			}
		})
	}
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
		for _, tr := range swTransports {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				started, release := make(chan string), make(chan struct{})
				s, lc := swServe(t, tr.overTLS, swStub(started, release), Options{KeepaliveTimeout: 30 * time.Second})
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
					wire := lc.sendCounted(second)
					if tc.split {
						awaitUnread(t, s, wire) // the head's two pieces arrive apart
						wire += lc.sendCounted(rest)
					}
					// The second request reaches the server's socket before
					// the first is answered: that is the case the wait may
					// miss (not needed for correctness, only for the case).
					awaitUnread(t, s, wire)
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
}

// The usual keep-alive case, many times on one connection: the next
// request comes after the answer was read, which wakes the wait. Answers
// of every size (the largest fills the socket, so that the last write
// sends only part and no wait happens), with and without bodies. A wait
// that missed its wake-up would make the next answer parkAfter late:
// fewer than a quarter of the requests with small answers may take that
// long (a missed wake-up every time would make it all of them; the large
// answers' own time, under the race detector over TLS, is not counted).
func TestSendWaitKeepAliveSequence(t *testing.T) {
	// Not parallel with other tests, and one transport at a time: it
	// moves megabytes.
	for _, tr := range swTransports {
		t.Run(tr.name, func(t *testing.T) { sendWaitKeepAliveSequence(t, tr.overTLS) })
	}
}

func sendWaitKeepAliveSequence(t *testing.T, overTLS bool) {
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
			_, lc := swServe(t, overTLS, swStub(nil, nil), Options{KeepaliveTimeout: 30 * time.Second})
			const n = 200
			small, late := 0, 0
			for i := range n {
				send, want := tc.req(i)
				start := time.Now()
				lc.send(send)
				resp, body := lc.mustResponse(5 * time.Second)
				if resp.StatusCode != 200 || body != want || resp.Close {
					t.Fatalf("request %d: got %d %.80q (%d bytes, close %v), want 200 %.80q (%d bytes)",
						i, resp.StatusCode, body, len(body), resp.Close, want, len(want))
				}
				if len(want) <= 3*writeSize {
					small++
					if time.Since(start) >= parkAfter {
						late++
					}
				}
			}
			if late > small/4 {
				t.Errorf("%d of %d requests with small answers took parkAfter (%v) or more: waits missed their wake-up", late, small, parkAfter)
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
		for _, tr := range swTransports {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				started, release := make(chan string, 1), make(chan struct{})
				s, lc := swServe(t, tr.overTLS, swStub(started, release), Options{KeepaliveTimeout: 30 * time.Second})
				// One request first, so that the connection is a kept-alive
				// one, then the one the client ends after.
				lc.served("/first")
				lc.send(swReq("/slow", "last"))
				closeWrite := func() {
					if err := lc.closeWrite(); err != nil {
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
}

// Shutdown while a connection waits in its answer's last write for the
// next request: Shutdown ends within its context, and the client, which
// read its whole answer, sees an orderly close (EOF, not a reset).
func TestSendWaitShutdown(t *testing.T) {
	t.Parallel()
	// The wait lasts parkAfter from the answer's write: the client,
	// which checks just after it read the answer, nearly always finds the
	// connection still in it. A few tries make sure one did.
	for _, tr := range swTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			sendWaitShutdown(t, tr.overTLS)
		})
	}
}

func sendWaitShutdown(t *testing.T, overTLS bool) {
	caught := 0
	for try := 0; try < 5 && caught == 0; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{KeepaliveTimeout: 30 * time.Second}
		var cli *tls.Config
		if overTLS {
			opts.TLS, cli = testTLS(t, "http/1.1")
		}
		s := New(swStub(nil, nil), opts)
		served := make(chan struct{})
		go func() { defer close(served); s.Serve(ln) }()
		lc := swDial(t, ln.Addr().String(), cli)
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
	for _, tr := range swTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			_, lc := swServe(t, tr.overTLS, swStub(nil, nil), Options{KeepaliveTimeout: 30 * time.Second})
			pipelinedBurst(t, lc)
		})
	}
}

func pipelinedBurst(t *testing.T, lc *swConn) {
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

// Two requests in two TLS records that reach the server in one segment,
// so that one read takes both: TLS decrypts the first and keeps the
// second, where no look at the socket sees it. The first's answer must
// not wait on the socket (the wait would end only with the grace, and
// the second request be answered parkAfter late): of each round's two
// answers, only the second waits.
func TestSendWaitTLSRecordsReadTogether(t *testing.T) {
	t.Parallel()
	srv, cli := testTLS(t, "http/1.1")
	s, addr := parkServe(t, swStub(nil, nil), Options{KeepaliveTimeout: 30 * time.Second, TLS: srv})
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	gc := &testutil.HeldConn{Conn: raw}
	tc := tls.Client(gc, cli)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	br := bufio.NewReader(tc)
	const rounds = 40
	for i := range rounds {
		gc.Hold()
		var want []string
		for j := range 2 {
			target := "/r?" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
			if _, err := io.WriteString(tc, swReq(target, "")); err != nil { // a record each
				t.Fatal(err)
			}
			want = append(want, swWant(target, ""))
		}
		if err := gc.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range 2 {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			got = append(got, string(b))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("round %d: answers (-want +got):\n%s", i, diff)
		}
	}
	if got := waitsOf(s); got > rounds {
		t.Errorf("%d answers of %d rounds waited: some waited on the socket with the next request in TLS", got, rounds)
	}
}
