package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// The request's last write waits for the answer in the same poller
// registration (peek.SendWait). These tests hold it to what it must never
// do, whatever the timing: read an answer wrongly, reuse a connection with
// bytes nobody asked for, or hang past the Attempt's deadline.

// eagerApp answers each request as soon as it has read its request line,
// before the rest of the head and the body, which it reads after: the
// answer may reach the gateway while the request is still being sent.
// answered, if set, is told after each answer was written.
func eagerApp(t *testing.T, answered chan<- struct{}) *app {
	t.Helper()
	return rawApp(t, func(c net.Conn, br *bufio.Reader) {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			target := strings.Fields(line)[1]
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(target), target)
			if answered != nil {
				answered <- struct{}{}
			}
			// The rest of the request: the head, then a body of the
			// length it declares.
			length := 0
			for {
				h, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if h == "\r\n" {
					break
				}
				if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Content-Length") {
					length, _ = strconv.Atoi(strings.TrimSpace(v))
				}
			}
			if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
				return
			}
		}
	})
}

// doBody is do with a body, the Attempt's timeout, and the time it took.
func doBody(p *Pool, path string, body io.Reader, length int64, timeout time.Duration) (int, string, time.Duration, error) {
	method := "GET"
	if body != nil {
		method = "POST"
	}
	req, _ := http.NewRequest(method, "http://app"+path, body)
	req.ContentLength = length
	start := time.Now()
	a := &Attempt{Deadline: start.Add(timeout), Timeout: timeout, HeadLimit: 2048}
	resp, pc, err := p.RoundTrip(context.Background(), req, a)
	if err != nil {
		return 0, "", time.Since(start), err
	}
	b, err := io.ReadAll(resp.Body)
	pc.Finish(err == nil)
	return resp.StatusCode, string(b), time.Since(start), err
}

// An app that answers at once, on one reused connection, many times:
// every answer is read, and read as its own request's.
func TestSendWaitInstantAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body int // the request body's length; 0: a GET
	}{
		{"GET", 0},
		{"small POST", 100},
		// Larger than the write buffer: the request goes in several
		// writes, and the answer may come before the last.
		{"POST larger than the write buffer", 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := eagerApp(t, nil)
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			const n = 200
			start := time.Now()
			for i := range n {
				path := "/" + strconv.Itoa(i)
				var body io.Reader
				if tc.body > 0 {
					body = strings.NewReader(strings.Repeat("b", tc.body))
				}
				code, got, _, err := doBody(p, path, body, int64(tc.body), 5*time.Second)
				if err != nil || code != 200 || got != path {
					t.Fatalf("request %d: %d %q %v, want 200 %q", i, code, got, err, path)
				}
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("%d requests took %v", n, took)
			}
			if c := a.conns.Load(); c != 1 {
				t.Errorf("the app saw %d connections, want 1 (reuse)", c)
			}
		})
	}
}

// gatedBody is a request body whose last byte is held back until the app
// has answered: the answer is on the socket before the request's last
// write, and before its wait for the answer begins.
type gatedBody struct {
	first    []byte
	answered <-chan struct{}
	sockets  *sockets
	step     int // 1: the last byte was read
}

func (g *gatedBody) Read(p []byte) (int, error) {
	switch {
	case len(g.first) > 0:
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	case g.step == 0:
		g.step++
		select {
		case <-g.answered:
		case <-time.After(5 * time.Second):
			return 0, fmt.Errorf("the app did not answer early")
		}
		if !testutil.Eventually(5*time.Second, func() bool { return g.sockets.unread() > 0 }) {
			return 0, fmt.Errorf("the early answer did not reach the socket")
		}
		p[0] = 'z'
		return 1, nil
	}
	return 0, io.EOF
}

// An answer that came before the request's last write (an app answering
// an upload early, say with 413, while it still reads it): the poller's
// notice of it comes before the wait, so the wait does not wake; it must
// still be read, as the answer, before the Attempt's deadline. With a
// Timeout of a slice (250ms) or more a wait would have ended at the first
// slice, a quarter second late; with a shorter one the first slice is the
// deadline itself, and the answer was reported as a timeout. A request
// sent in more than one write does not wait, so the answer is read at
// once (the quickest of three under a slice, against a busy machine).
func TestSendWaitAnswerBeforeLastWrite(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{2 * time.Second, 200 * time.Millisecond} {
		t.Run(timeout.String(), func(t *testing.T) {
			t.Parallel()
			answered := make(chan struct{}, 1)
			a := eagerApp(t, answered)
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			var s sockets
			s.watch(p)
			quickest := time.Hour
			defer func() {
				if !t.Failed() && quickest >= clientCheck*4/5 {
					t.Errorf("quickest early answer took %v: the read waited for a slice", quickest)
				}
			}()
			for i := range 3 {
				path := "/early" + strconv.Itoa(i)
				body := &gatedBody{first: []byte(strings.Repeat("b", 8000)), answered: answered, sockets: &s}
				code, got, took, err := doBody(p, path, body, 8001, timeout)
				if err != nil || code != 200 || got != path {
					t.Fatalf("request %d: %d %q %v after %v, want 200 %q", i, code, got, err, took, path)
				}
				quickest = min(quickest, took)
			}
		})
	}
}

// Bytes an app sends while its connection idles in the pool: the look
// before reuse finds them, the connection is not reused, and the next
// request gets its own answer on a new one.
func TestSendWaitUnaskedBytesNotReused(t *testing.T) {
	t.Parallel()
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"
	putBack, unasked := make(chan struct{}), make(chan struct{}, 10)
	var n atomic.Int32
	a := newApp(t, func(c net.Conn, r *http.Request) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(r.URL.Path))+"\r\n\r\n"+r.URL.Path)
		if n.Add(1) == 1 {
			<-putBack // the answer was read, the connection put back
			io.WriteString(c, evil)
			unasked <- struct{}{}
		}
	})
	p := NewPool(a.addr, time.Minute)
	defer p.Close()
	var s sockets
	s.watch(p)
	if code, body, err := do(t, p, "GET", "/first", nil); err != nil || code != 200 || body != "/first" {
		t.Fatalf("first request: %d %q %v", code, body, err)
	}
	close(putBack)
	select {
	case <-unasked:
	case <-time.After(5 * time.Second):
		t.Fatal("the app did not send its unasked bytes")
	}
	s.await(t, "the unasked bytes at the pool's socket", func() bool { return s.unread() >= len(evil) })
	for i := range 20 {
		path := "/next" + strconv.Itoa(i)
		if code, body, err := do(t, p, "GET", path, nil); err != nil || code != 200 || body != path {
			t.Fatalf("request %d after the unasked bytes: %d %q %v, want its own answer", i, code, body, err)
		}
	}
	if c := a.conns.Load(); c != 2 {
		t.Errorf("the app saw %d connections, want 2 (the one with unasked bytes not reused)", c)
	}
}

// An app that never answers: RoundTrip fails with a deadline error when
// the Attempt's Timeout has passed, on a new connection and on a reused
// one, and does not hang.
func TestSendWaitNoAnswerTimesOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		reused bool
	}{
		{"new connection", false},
		{"reused connection", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			a := newApp(t, func(c net.Conn, r *http.Request) {
				if n.Add(1) == 1 && tc.reused {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
				// Otherwise silent, the connection kept open.
			})
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			if tc.reused {
				if code, body, err := do(t, p, "GET", "/first", nil); err != nil || body != "ok" {
					t.Fatalf("first request: %d %q %v", code, body, err)
				}
			}
			const timeout = 300 * time.Millisecond
			for _, body := range []io.Reader{nil, strings.NewReader("small"), strings.NewReader(strings.Repeat("b", 10000))} {
				length := int64(0)
				if body != nil {
					length = int64(body.(*strings.Reader).Len())
				}
				code, got, took, err := doBody(p, "/silent", body, length, timeout)
				if !IsDeadline(err) {
					t.Fatalf("body %d bytes: %d %q %v after %v; want a deadline error", length, code, got, err, took)
				}
				if took < timeout-10*time.Millisecond || took > 3*time.Second {
					t.Errorf("body %d bytes: the deadline error came after %v; Timeout is %v", length, took, timeout)
				}
			}
			if tc.reused && a.conns.Load() < 2 {
				t.Errorf("the app saw %d connections; a timed-out connection must not be reused", a.conns.Load())
			}
		})
	}
}

// leaver is a client that is gone from a moment on.
type leaver struct{ at time.Time }

func (c *leaver) Gone() bool               { return time.Now().After(c.at) }
func (c *leaver) Interim(int, http.Header) {}

// After an interim answer (103) whose head came in two reads, the wait
// for the final answer still looks for its client between slices: the
// first slice's deadline that send set is the first answer's only. (It
// was kept for every answer, and a client that left was noticed only at
// the app's answer, 3 s later.)
func TestSendWaitInterimThenClientGone(t *testing.T) {
	t.Parallel()
	final := make(chan struct{})
	defer close(final)
	var s sockets
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		const first = "HTTP/1.1 103 Early Hints\r\n"
		io.WriteString(c, first)
		// The interim head in two reads: the pool has read the first
		// piece before the second is sent.
		testutil.Eventually(5*time.Second, func() bool { return s.received() >= len(first) && s.unread() == 0 })
		io.WriteString(c, "Link: </a.css>; rel=preload\r\n\r\n")
		select {
		case <-final:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := NewPool(addr, time.Minute)
	defer p.Close()
	s.watch(p)
	req, _ := http.NewRequest("GET", "http://app/", nil)
	a := &Attempt{Timeout: 10 * time.Second, Client: &leaver{at: time.Now().Add(10 * time.Millisecond)}}
	start := time.Now()
	resp, pc, err := p.RoundTrip(context.Background(), req, a)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		pc.Finish(false)
	}
	if took := time.Since(start); !errors.Is(err, context.Canceled) || took > 2*time.Second {
		t.Fatalf("RoundTrip: %v after %v, want context.Canceled within about a slice (%v)", err, took, clientCheck)
	}
}
