//go:build linux

package front

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// parkServe serves h with opts on a loopback listener until the test
// ends, and returns the server too.
func parkServe(t *testing.T, h Handler, opts Options) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, h, opts, ln), ln.Addr().String()
}

// serveOn serves h with opts on ln (a loopback listener, perhaps
// wrapped) until the test ends.
func serveOn(t *testing.T, h Handler, opts Options, ln net.Listener) *Server {
	t.Helper()
	s := New(h, opts)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s
}

// parked is how many connections s has parked.
func parked(s *Server) int {
	s.mu.Lock()
	p := s.poll
	s.mu.Unlock()
	if p == nil {
		return 0
	}
	return p.parkedCount()
}

func waitParked(t *testing.T, s *Server, n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "parked connections", func() bool { return parked(s) == n })
}

// served asks for path on lc and checks the answer.
func (lc *limClient) served(path string) *http.Response {
	lc.t.Helper()
	lc.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := lc.mustResponse(5 * time.Second)
	if resp.StatusCode != 200 || body != "GET "+path {
		lc.t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
	}
	return resp
}

// The parked path on real sockets, plain and TLS: a connection idle past
// parkAfter has no goroutine, and each way its life goes on or ends
// still works.
func TestParkedConnections(t *testing.T) {
	// Every descriptor of the cases' connections, and of their pollers'
	// epoll, is closed once their servers are. The cases run at once,
	// so the count is taken around them all: the test itself is not
	// parallel, as the process's other tests open files too.
	files := openFiles(t)
	t.Cleanup(func() {
		testutil.WaitFor(t, 5*time.Second, "the files opened to be closed", func() bool { return openFiles(t) <= files })
	})
	type env struct {
		t  *testing.T
		s  *Server
		lc *limClient
	}
	for _, tc := range []struct {
		name string
		opts Options
		run  func(e env)
	}{
		{"request after parking", Options{}, func(e env) {
			for _, path := range []string{"/two", "/three"} {
				e.lc.served(path)
				waitParked(e.t, e.s, 1)
			}
		}},
		{"pipelined requests wake it", Options{}, func(e env) {
			e.lc.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\n\r\n")
			for _, want := range []string{"GET /a", "GET /b", "GET /c"} {
				if resp, body := e.lc.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != want {
					e.t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
				}
			}
			waitParked(e.t, e.s, 1)
		}},
		// Parking happens only at a request's boundary with nothing
		// buffered: a head partly received keeps its goroutine, its
		// buffer and its head timeout.
		{"head split by a pause", Options{}, func(e env) {
			e.lc.send("GET /split HTTP/1.1\r\nHo")
			testutil.WaitFor(e.t, 5*time.Second, "the connection unparked", func() bool { return parked(e.s) == 0 })
			time.Sleep(3 * parkAfter) // past the grace: it would have parked by now
			if n := parked(e.s); n != 0 {
				e.t.Fatalf("%d connections parked with half a head read", n)
			}
			e.lc.send("st: a\r\n\r\n")
			if resp, body := e.lc.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != "GET /split" {
				e.t.Fatalf("got %d %q", resp.StatusCode, body)
			}
		}},
		// HeadTimeout bounds the setup's TLS handshake too, from the
		// server's side, and its first request: as long as the client's
		// own bound on the handshake (limDialOver), as a machine busy
		// with -race can take more than a second over it.
		{"split head still times out", Options{HeadTimeout: 5 * time.Second}, func(e env) {
			e.lc.send("GET /slow HTTP/1.1\r\nHo")
			if resp, _ := e.lc.mustResponse(15 * time.Second); resp.StatusCode != http.StatusRequestTimeout {
				e.t.Fatalf("a stalled head after parking got %d, want 408", resp.StatusCode)
			}
		}},
		{"client closes while parked", Options{}, func(e env) {
			e.lc.c.Close()
			waitConns(e.t, e.s, 0)
			waitParked(e.t, e.s, 0)
		}},
		// (The setup must see the connection parked before the keep-alive
		// ends: 2 s, for a machine busy with -race.)
		{"idle timeout while parked", Options{KeepaliveTimeout: 2 * time.Second}, func(e env) {
			start := time.Now()
			extra, ok := e.lc.closed(10 * time.Second)
			if took := time.Since(start); !ok || len(extra) > 0 || took > 6*time.Second {
				e.t.Fatalf("closed %v after %v with %q; keepalive_timeout is 2s", ok, took, extra)
			}
			waitConns(e.t, e.s, 0)
			waitParked(e.t, e.s, 0)
		}},
		{"lame duck", Options{}, func(e env) {
			e.s.SetLameDuck(true)
			if resp := e.lc.served("/last"); !resp.Close {
				e.t.Error("in lame-duck mode the answer on a parked connection does not say Connection: close")
			}
			if _, ok := e.lc.closed(5 * time.Second); !ok {
				e.t.Error("the connection stays open after its closing answer")
			}
		}},
		{"shutdown closes it", Options{}, func(e env) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			if err := e.s.Shutdown(ctx); err != nil {
				e.t.Fatalf("Shutdown with a parked connection: %v", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				e.t.Errorf("Shutdown took %v", took)
			}
			if _, ok := e.lc.closed(5 * time.Second); !ok {
				e.t.Error("the parked connection is still open after Shutdown")
			}
		}},
		// An upgrade's drain: a request on a parked connection within
		// the idle grace is answered, with Connection: close.
		{"shutdown idle grace serves it", Options{}, func(e env) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			drained := make(chan error, 1)
			go func() { drained <- e.s.ShutdownIdleGrace(ctx, 5*time.Second) }()
			waitClosing(e.t, e.s)
			if resp := e.lc.served("/during"); !resp.Close {
				e.t.Error("the answer during the drain does not say Connection: close")
			}
			if err := <-drained; err != nil {
				e.t.Errorf("ShutdownIdleGrace: %v", err)
			}
		}},
	} {
		for _, overTLS := range []bool{false, true} {
			name := tc.name
			if overTLS {
				name = "tls/" + name
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				opts := tc.opts
				var cli *tls.Config
				if overTLS {
					opts.TLS, cli = testTLS(t, "http/1.1")
				}
				s, addr := parkServe(t, echoStub{}, opts)
				lc := limDialOver(t, addr, cli)
				lc.served("/one")
				waitParked(t, s, 1)
				tc.run(env{t, s, lc})
				lc.c.Close()
				waitConns(t, s, 0)
				s.Close()
			})
		}
	}
}

// limDialOver dials addr, over TLS when cli is set (its handshake done).
func limDialOver(t *testing.T, addr string, cli *tls.Config) *limClient {
	t.Helper()
	lc := limDial(t, addr)
	if cli == nil {
		return lc
	}
	tc := tls.Client(lc.c, cli)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	t.Cleanup(func() { tc.Close() })
	return &limClient{t: t, c: tc, br: bufio.NewReader(tc)}
}

// A parked connection answers as a fresh one does: each request, written
// in two pieces with a pause longer than parkAfter before the first and
// between the two, gets what the front answers to it sent at once on a
// new connection, never parked.
func TestParkedAnswersAsAFreshConnection(t *testing.T) {
	t.Parallel()
	type answer struct {
		Status int
		Body   string
	}
	reqs := []string{
		"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /q?x=1&y=%41 HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n",
		"POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET /old HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET /nohost HTTP/1.1\r\n\r\n",
		"GET /bad HTTP/1.1\r\nHost: a\r\nBad Field: x\r\n\r\n",
		"GET /two-hosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"\r\nGET /after-crlf HTTP/1.1\r\nHost: a\r\n\r\n",
	}
	echo := func(w http.ResponseWriter, r *http.Request) {
		answer := r.Method + " " + r.RequestURI
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			answer += " " + string(b)
		}
		limAnswer(w, http.StatusOK, answer)
	}
	ask := func(t *testing.T, lc *limClient, req string) answer {
		t.Helper()
		lc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		method, _, _ := strings.Cut(strings.TrimPrefix(req, "\r\n"), " ")
		resp, err := http.ReadResponse(lc.br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("no answer to %q: %v", req, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("answer to %q: %v", req, err)
		}
		return answer{resp.StatusCode, string(b)}
	}
	for _, req := range reqs {
		for _, cut := range []int{1, len(req) / 2} {
			name := strings.SplitN(req, "\r\n", 2)[0]
			if name == "" {
				name = "leading CRLF"
			}
			t.Run(name+"/cut at "+strconv.Itoa(cut), func(t *testing.T) {
				t.Parallel()
				want := func() answer {
					_, freshAddr := parkServe(t, &limStub{handle: echo}, Options{}) // a fresh connection, not parked
					lc := limDial(t, freshAddr)
					lc.send(req)
					return ask(t, lc, req)
				}()
				s, parkedAddr := parkServe(t, &limStub{handle: echo}, Options{})
				lc := limDial(t, parkedAddr)
				lc.served("/warm")
				waitParked(t, s, 1)
				lc.send(req[:cut])
				// The first piece wakes the connection; the second comes
				// after a pause past the grace, so that the head is read
				// across it.
				time.Sleep(3 * parkAfter)
				lc.send(req[cut:])
				if diff := cmp.Diff(want, ask(t, lc, req)); diff != "" {
					t.Errorf("%q in two pieces after parking (-fresh connection +parked one):\n%s", req, diff)
				}
			})
		}
	}
}

// The poller's deadlines: connections woken and parked again, many times
// over (their slots reused, under new generations), are neither closed
// before keepalive_timeout nor kept much past it, and once they are gone
// the poller holds no slots for them.
func TestParkedDeadlines(t *testing.T) {
	// Not parallel: each round must end well within keepalive_timeout,
	// without the other tests' work in the way.
	const (
		n      = 64
		rounds = 3
		kt     = 2 * time.Second
	)
	s, addr := parkServe(t, echoStub{}, Options{KeepaliveTimeout: kt})
	lcs := make([]*limClient, n)
	for i := range lcs {
		lcs[i] = limDial(t, addr)
		lcs[i].served("/one")
	}
	waitParked(t, s, n)
	var last time.Time
	for r := range rounds {
		last = time.Now()
		for i, lc := range lcs {
			lc.served("/again/" + strconv.Itoa(r) + "/" + strconv.Itoa(i))
		}
		waitParked(t, s, n)
	}
	if wait := time.Until(last.Add(kt / 2)); wait > 0 {
		time.Sleep(wait) // well into keepalive_timeout, which must not have ended any
	}
	if got := parked(s); got != n {
		t.Fatalf("%d of %d connections parked %v after their last answer; keepalive_timeout is %v",
			got, n, time.Since(last).Round(time.Millisecond), kt)
	}
	waitConns(t, s, 0)
	if took := time.Since(last); took > kt+3*time.Second {
		t.Errorf("the idle connections closed %v after the last round began; keepalive_timeout is %v", took, kt)
	}
	for i, lc := range lcs {
		if extra, ok := lc.closed(5 * time.Second); !ok || len(extra) > 0 {
			t.Fatalf("connection %d: closed %v, %q read", i, ok, extra)
		}
	}
	s.mu.Lock()
	p := s.poll
	s.mu.Unlock()
	p.mu.Lock()
	slots, free, capacity := len(p.slots), len(p.free), cap(p.slots)
	p.mu.Unlock()
	if slots != 0 || free != 0 || capacity > 64 {
		t.Errorf("with nothing parked the poller holds %d slots (capacity %d), %d free", slots, capacity, free)
	}
	lc := limDial(t, addr)
	lc.served("/after")
	waitParked(t, s, 1)
	lc.served("/woken")
}

// A byte that arrives within the parking grace ends the grace's 50 ms
// bound: what follows it after a pause (the rest of a head, or the next
// request after the CRLF a client sent behind a body) is read under the
// connection's own deadline, not cut off.
func TestGraceDeadlineEndsWithTheFirstByte(t *testing.T) {
	t.Parallel()
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		limAnswer(w, http.StatusOK, r.Method+" "+r.RequestURI+" "+string(b))
	}
	for _, tc := range []struct {
		name        string
		first, next string
	}{
		{"crlf after a post body", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\r\n", "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"one byte, then a pause", "GET /p HTTP/1.1\r\nHost: a\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := parkServe(t, &limStub{handle: echo}, Options{})
			lc := limDial(t, addr)
			lc.send(tc.first)
			if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != 200 {
				t.Fatalf("first answer: %d %q", resp.StatusCode, body)
			}
			next := tc.next
			if next == "" {
				lc.send("G")
				next = "ET /next HTTP/1.1\r\nHost: a\r\n\r\n"
			}
			time.Sleep(300 * time.Millisecond) // well past parkAfter
			lc.send(next)
			resp, body, err := lc.response(5 * time.Second)
			if err != nil {
				t.Fatalf("the next request on the kept-alive connection: %v", err)
			}
			if resp.StatusCode != 200 || body != "GET /next " {
				t.Errorf("next answer: %d %q, want 200 %q", resp.StatusCode, body, "GET /next ")
			}
		})
	}
}
