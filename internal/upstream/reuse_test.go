package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// app is a raw HTTP/1.1 app on loopback: answer writes the bytes for each
// request it reads; conns counts the connections it accepted.
type app struct {
	addr  string
	conns atomic.Int32
}

func newApp(t *testing.T, answer func(c net.Conn, r *http.Request)) *app {
	t.Helper()
	return rawApp(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			answer(c, r)
		}
	})
}

// rawApp is an app that serves each connection with serve, which reads
// it through br.
func rawApp(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *app {
	t.Helper()
	a := &app{}
	a.addr = testutil.ServeRaw(t, func(c net.Conn) {
		a.conns.Add(1)
		defer c.Close()
		serve(c, bufio.NewReader(c))
	})
	return a
}

// client records what the exchange reported to it.
type client struct {
	interim []int
	hints   []string
}

func (c *client) Gone() bool { return false }
func (c *client) Interim(code int, h http.Header) {
	c.interim = append(c.interim, code)
	c.hints = append(c.hints, h.Get("Link"))
}

// do sends one request through p and reads its answer to the end, as the
// gateway does: the body's end decides whether the connection is reused.
func do(t *testing.T, p *Pool, method, path string, cl *client) (int, string, error) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://app"+path, nil)
	a := &Attempt{Deadline: time.Now().Add(5 * time.Second), Timeout: 5 * time.Second, HeadLimit: 2048}
	if cl != nil {
		a.Client = cl
	}
	resp, pc, err := p.RoundTrip(context.Background(), req, a)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	pc.Finish(err == nil)
	return resp.StatusCode, string(b), err
}

// The reuse rule, end to end: which answers leave a connection that may
// carry the next request (the app then sees one connection), and which
// must close it (it sees two), and the second request always gets its own
// answer.
func TestReuseRule(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("b", 12000)
	tests := []struct {
		name   string
		method string
		first  string // the app's answer to the first request
		conns  int32
	}{
		{"exact length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1},
		{"empty body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 1},
		{"surplus in the buffer", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEVIL", 2},
		{"surplus in the kernel", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 12000\r\n\r\n" + big +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL", 2},
		{"a second response", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL", 2},
		{"app asks to close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 2},
		{"answer to HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 2},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 2},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\n\r\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			a := newApp(t, func(c net.Conn, r *http.Request) {
				if n.Add(1) == 1 {
					io.WriteString(c, tt.first)
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
			})
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			if _, _, err := do(t, p, tt.method, "/1", nil); err != nil {
				t.Fatalf("first request: %v", err)
			}
			code, body, err := do(t, p, "GET", "/2", nil)
			if err != nil || code != 200 || body != "good" {
				t.Fatalf("second request got %d %q %v, want its own answer", code, body, err)
			}
			if got := a.conns.Load(); got != tt.conns {
				t.Errorf("the app saw %d connections, want %d", got, tt.conns)
			}
		})
	}
}

// A connection the app closed while it sat in the pool is not reused,
// whatever its idle time (the look before reuse finds the close).
func TestReuseSkipsClosedIdle(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	a := newApp(t, func(c net.Conn, r *http.Request) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if n.Add(1) == 1 {
			c.Close()
		}
	})
	p := NewPool(a.addr, time.Minute)
	defer p.Close()
	var s sockets
	s.watch(p)
	for i := range 2 {
		if code, body, err := do(t, p, "GET", "/", nil); err != nil || body != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
		if i == 0 {
			s.await(t, "the app's close at the idle connection", func() bool { return s.ended() == 1 })
		}
	}
	if got := a.conns.Load(); got != 2 {
		t.Errorf("the app saw %d connections, want 2 (the closed one not reused)", got)
	}
}

// Answers that are not HTTP's are errors of their own kind, for the
// classifier; 1xx other than 101 reach the client.
func TestExchangeAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  string
		wantErr error
		interim []int
	}{
		{"status below 100", "HTTP/1.1 099 Weird\r\nContent-Length: 0\r\n\r\n", ErrBadStatus, nil},
		{"status above 599", "HTTP/1.1 600 Weird\r\nContent-Length: 0\r\n\r\n", ErrBadStatus, nil},
		{"head over the limit", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 3000) + "\r\nContent-Length: 0\r\n\r\n", ErrHeadTooLarge, nil},
		{"bare-LF head over the limit", "HTTP/1.1 200 OK\nX-Big: " + strings.Repeat("a", 3000) + "\nContent-Length: 0\n\n", ErrHeadTooLarge, nil},
		{"endless 1xx", strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 20), ErrTooManyInterim, slices.Repeat([]int{103}, maxInterim+1)},
		{"early hints", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", nil, []int{103}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, func(c net.Conn, r *http.Request) { io.WriteString(c, tt.answer) })
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			cl := &client{}
			_, _, err := do(t, p, "GET", "/", cl)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.interim, cl.interim); diff != "" {
				t.Errorf("interim answers passed on (-want +got):\n%s", diff)
			}
		})
	}
}

// An interrupted body read fails at once and for good, and its connection
// is not reused.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	a := newApp(t, func(c net.Conn, r *http.Request) {
		if n.Add(1) == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst") // then stalls
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := NewPool(a.addr, time.Minute)
	defer p.Close()
	req, _ := http.NewRequest("GET", "http://app/", nil)
	at := &Attempt{Deadline: time.Now().Add(5 * time.Second), Timeout: time.Minute}
	resp, pc, err := p.RoundTrip(context.Background(), req, at)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	io.ReadFull(resp.Body, buf)
	go func() { time.Sleep(50 * time.Millisecond); pc.Interrupt() }()
	start := time.Now()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the stalled body's read ended without an error")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the interrupted read took %v", took)
	}
	pc.Finish(true) // even if the caller claims it ended cleanly
	if _, body, err := do(t, p, "GET", "/", nil); err != nil || body != "ok" || a.conns.Load() != 2 {
		t.Errorf("after the interrupt: %q %v on %d connections; want ok on a new one", body, err, a.conns.Load())
	}
}

// An idle connection in the pool holds no buffers, so that many idle
// connections cost little memory: it takes them back when it is reused,
// and serves as before.
func TestIdleConnHoldsNoBuffers(t *testing.T) {
	t.Parallel()
	a := newApp(t, func(c net.Conn, r *http.Request) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := NewPool(a.addr, time.Minute)
	defer p.Close()
	for i := range 3 {
		code, body, err := do(t, p, "GET", "/", nil)
		if err != nil || code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
		p.mu.Lock()
		free := slices.Clone(p.free)
		p.mu.Unlock()
		if len(free) != 1 {
			t.Fatalf("after request %d: %d idle connections, want 1", i, len(free))
		}
		if free[0].br != nil || free[0].bw != nil {
			t.Errorf("after request %d: the idle connection holds its buffers", i)
		}
	}
	if n := a.conns.Load(); n != 1 {
		t.Errorf("the app saw %d connections for 3 requests, want 1 (reuse)", n)
	}
}

// A connection whose request is sent gives its writer, or its head's
// block, back while the answer is read, and takes one again for its next
// request.
func TestAnAnswerIsReadWithoutTheWriter(t *testing.T) {
	t.Parallel()
	a := rawApp(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	p := NewPool(a.addr, time.Minute)
	defer p.Close()
	for i, body := range []string{"", "first", strings.Repeat("x", 10000)} {
		req, _ := http.NewRequest("POST", "http://app/", strings.NewReader(body))
		at := &Attempt{Deadline: time.Now().Add(5 * time.Second), Timeout: time.Minute}
		resp, pc, err := p.RoundTrip(context.Background(), req, at)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if pc.bw != nil || pc.head != nil || pc.br == nil {
			t.Errorf("request %d: while its answer is read, writer held %v, head's block held %v, reader held %v; want only the reader",
				i, pc.bw != nil, pc.head != nil, pc.br != nil)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != body {
			t.Fatalf("request %d: answer %q, %v; want %q", i, got, err, body)
		}
		pc.Finish(true)
	}
	if n := a.conns.Load(); n != 1 {
		t.Errorf("the app saw %d connections for 3 requests, want 1 (reuse)", n)
	}
}

// A connection the app closed while it sat in the pool says the app's
// idle timeout is at most its idle time: the pool closes its own sooner
// from then on, so that the next request does not cross the app's close
// on the wire. A close found sooner than learnFloor after the answer
// (a worker recycled, a cap on requests) teaches nothing.
func TestReuseLearnsTheAppsIdleTimeoutFromItsClose(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		idleFor  time.Duration
		wantIdle time.Duration
	}{
		{"closed after an idle second and a half", 1500 * time.Millisecond, CloseBefore(1500 * time.Millisecond)},
		{"closed right after the answer", 10 * time.Millisecond, time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, func(c net.Conn, r *http.Request) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				c.Close()
			})
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			var s sockets
			s.watch(p)
			if code, body, err := do(t, p, "GET", "/", nil); err != nil || body != "ok" {
				t.Fatalf("request: %d %q %v", code, body, err)
			}
			s.await(t, "the app's close at the idle connection", func() bool { return s.ended() == 1 })
			// The idle time is the one get is told: no waiting.
			p.mu.Lock()
			since := p.free[len(p.free)-1].idleSince
			p.mu.Unlock()
			pc, reused, _, err := p.get(context.Background(), since.Add(tt.idleFor))
			if err != nil {
				t.Fatal(err)
			}
			pc.Close()
			if reused {
				t.Errorf("a connection the app closed was reused")
			}
			if got := time.Duration(p.idle.Load()); got != tt.wantIdle {
				t.Errorf("idle timeout after the close %v: %v, want %v", tt.idleFor, got, tt.wantIdle)
			}
		})
	}
}
