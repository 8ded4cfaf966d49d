package front

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.WaitingParallel(16)
	goleak.VerifyTestMain(m)
}

// limStub is a Handler without the gateway: it answers 200 with the
// request's method and target, or, for a request the front refused, the
// refusal's status, and records what it saw.
type limStub struct {
	// handle, if set, answers instead.
	handle func(w http.ResponseWriter, r *http.Request)

	mu      sync.Mutex
	rejects []string // causes of refused requests
	served  []string // "METHOD target" of the requests served
}

func (s *limStub) Serve(x *Exchange) {
	if x.Reject != nil {
		s.mu.Lock()
		s.rejects = append(s.rejects, string(x.Reject.Cause))
		s.mu.Unlock()
	}
	if answerRefusal(x) {
		return
	}
	s.serve(x.W, x.Req)
}

// answerRefusal answers a request the front refused with its status and
// no body, unless the front told the client itself, and reports whether
// the request was refused.
func answerRefusal(x *Exchange) bool {
	if x.Reject == nil {
		return false
	}
	if !x.Answered {
		x.W.Header().Set("Content-Length", "0")
		x.W.WriteHeader(x.Reject.Status())
	}
	return true
}

func (s *limStub) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.served = append(s.served, r.Method+" "+r.RequestURI)
	s.mu.Unlock()
	if s.handle != nil {
		s.handle(w, r)
		return
	}
	limAnswer(w, http.StatusOK, r.Method+" "+r.RequestURI)
}

// slowStub is a limStub that answers /slow only once release is closed:
// a request at work for as long as the test wants.
func slowStub(release <-chan struct{}) *limStub {
	return &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		limAnswer(w, http.StatusOK, r.Method+" "+r.RequestURI)
	}}
}

func limAnswer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// refusedOnce checks that the handler was handed one refusal, for c,
// and served nothing.
func (s *limStub) refusedOnce(t *testing.T, c cause.Cause) {
	t.Helper()
	rejects, served := s.seen()
	if !slices.Equal(rejects, []string{string(c)}) || len(served) > 0 {
		t.Errorf("handler saw rejects %q, served %q; want one %s", rejects, served, c)
	}
}

func (s *limStub) seen() (rejects, served []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rejects), slices.Clone(s.served)
}

// limServe serves h with opts on a loopback listener until the test ends.
func limServe(t *testing.T, h Handler, opts Options) string {
	t.Helper()
	_, addr := parkServe(t, h, opts)
	return addr
}

// awaitIdle waits until n of s's connections wait for their next
// request: a client has its answer a moment before the server counts its
// connection idle, and "idle longest" is by the server's count.
func awaitIdle(t *testing.T, s *Server, n int) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, strconv.Itoa(n)+" idle connections", func() bool {
		idle, _ := countConns(s, func(fc *conn) bool { return fc.idleAt.Load() != 0 })
		return idle >= n
	})
}

// countConns is how many of s's connections are as is says, and how
// many it has.
func countConns(s *Server, is func(fc *conn) bool) (n, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fc := range s.conns {
		if is(fc) {
			n++
		}
	}
	return n, len(s.conns)
}

// awaitServed waits until st's handler has seen n requests.
func awaitServed(t *testing.T, st *limStub, n int) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, strconv.Itoa(n)+" requests at the handler", func() bool {
		_, served := st.seen()
		return len(served) >= n
	})
}

// limClient is one raw client connection.
type limClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func limDial(t *testing.T, addr string) *limClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &limClient{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes s; write errors are ignored (the server may have closed).
func (lc *limClient) send(s string) {
	lc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(lc.c, s)
}

// response reads one final response within d.
func (lc *limClient) response(d time.Duration) (*http.Response, string, error) {
	lc.c.SetReadDeadline(time.Now().Add(d))
	for {
		resp, err := http.ReadResponse(lc.br, nil)
		if err != nil {
			return nil, "", err
		}
		if resp.StatusCode < 200 {
			continue // 100 Continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b), err
	}
}

// mustResponse is response, failing the test without one.
func (lc *limClient) mustResponse(d time.Duration) (*http.Response, string) {
	lc.t.Helper()
	resp, body, err := lc.response(d)
	if err != nil {
		lc.t.Fatalf("no response within %v: %v", d, err)
	}
	return resp, body
}

// closed waits up to d for the server to close the connection, and
// returns what was read before the close, and whether it came.
func (lc *limClient) closed(d time.Duration) (extra []byte, ok bool) {
	lc.c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(lc.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return b, false
	}
	return b, true // EOF, or a reset: closed either way
}

// closedAfter waits for the server to close lc's connection without a
// word, and checks that it came about d after start: d is the timeout
// (what) that closes it.
func (lc *limClient) closedAfter(start time.Time, d time.Duration, what string) {
	lc.t.Helper()
	extra, ok := lc.closed(d + 5*time.Second)
	took := time.Since(start)
	if !ok {
		lc.t.Fatalf("the connection is still open after %v; %s is %v", took, what, d)
	}
	if len(extra) > 0 {
		lc.t.Errorf("the connection got %q before its close", extra)
	}
	if took < d*8/10 || took > d+2*time.Second {
		lc.t.Errorf("closed after %v; %s is %v", took, what, d)
	}
}

// limHead is a GET of path whose head is exactly size bytes.
func limHead(path string, size int) string {
	start := "GET " + path + " HTTP/1.1\r\nHost: a\r\nX-Big: "
	n := size - len(start) - len("\r\n\r\n")
	if n < 0 {
		panic("head too small")
	}
	return start + strings.Repeat("b", n) + "\r\n\r\n"
}

// A head that stops coming is answered 408 and the connection closed,
// head_timeout after the connection came; a connection on which nothing
// at all comes is closed without a word.
func TestLimitHeadTimeout(t *testing.T) {
	t.Parallel()
	const ht = 300 * time.Millisecond
	// connect serves a stub and connects to it, and says when: head_timeout
	// counts from the connection's arrival.
	connect := func(t *testing.T) (*limStub, *limClient, time.Time) {
		st := &limStub{}
		addr := limServe(t, st, Options{HeadTimeout: ht, KeepaliveTimeout: 10 * time.Second})
		start := time.Now()
		return st, limDial(t, addr), start
	}
	t.Run("partial head", func(t *testing.T) {
		t.Parallel()
		st, lc, start := connect(t)
		lc.send("GET / HTTP/1.1\r\nHo")
		resp, _ := lc.mustResponse(5 * time.Second)
		took := time.Since(start)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status %d, want 408", resp.StatusCode)
		}
		if took < ht*8/10 || took > ht+2*time.Second {
			t.Errorf("answered after %v; head_timeout is %v", took, ht)
		}
		if !resp.Close {
			t.Error("the 408 does not say Connection: close")
		}
		if extra, ok := lc.closed(2 * time.Second); !ok || len(extra) > 0 {
			t.Errorf("after the 408: connection closed %v, %q read", ok, extra)
		}
		st.refusedOnce(t, cause.ClientTimeout)
	})
	t.Run("silent connection", func(t *testing.T) {
		t.Parallel()
		st, lc, start := connect(t)
		lc.closedAfter(start, ht, "head_timeout") // a connection that sent nothing
		if rejects, served := st.seen(); len(rejects)+len(served) > 0 {
			t.Errorf("handler saw rejects %q, served %q for a connection that sent nothing", rejects, served)
		}
	})
}

// On a kept-alive connection head_timeout counts from the next request's
// first byte: a head that stalls is refused head_timeout later, not when
// the (much longer) keep-alive wait would have ended.
func TestLimitHeadTimeoutKeptAlive(t *testing.T) {
	t.Parallel()
	const ht = 300 * time.Millisecond
	st := &limStub{}
	addr := limServe(t, st, Options{HeadTimeout: ht, KeepaliveTimeout: 6 * time.Second})
	lc := limDial(t, addr)
	lc.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != "GET /one" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	time.Sleep(ht / 2) // idle long enough that a timer counted from the answer would show
	start := time.Now()
	lc.send("GET /two HTTP/1.1\r\nHo")
	resp, _, err := lc.response(4 * time.Second)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("no answer to a stalled second head within %v: %v (head_timeout %v, keepalive_timeout 6s)", took, err, ht)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if took < ht*8/10 || took > ht+2*time.Second {
		t.Errorf("answered after %v; head_timeout is %v", took, ht)
	}
	if rejects, _ := st.seen(); !slices.Equal(rejects, []string{string(cause.ClientTimeout)}) {
		t.Errorf("handler saw rejects %q", rejects)
	}
}

// head_timeout bounds the whole head once, from its first byte: a head
// trickled so that it takes 1.6 × head_timeout in all, each piece well
// within it, is refused at head_timeout, never served, whatever body it
// announces (100-continue, chunked).
func TestLimitHeadTimeoutBoundsTheWholeHead(t *testing.T) {
	t.Parallel()
	const ht = 500 * time.Millisecond
	heads := map[string][]string{
		"expect": {"POST /x HTTP/1.1\r\n", "Host: a\r\n", "Expect: 100-continue\r\n", "Content-Length: 2\r\n", "\r\nhi"},
		"chunked": {"POST /x HTTP/1.1\r\n", "Host: a\r\n", "Transfer-Encoding: chunked\r\n", "X-Pad: 1\r\n",
			"\r\n2\r\nhi\r\n0\r\n\r\n"},
	}
	for name, groups := range heads {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := &limStub{}
			addr := limServe(t, st, Options{HeadTimeout: ht, KeepaliveTimeout: 10 * time.Second})
			lc := limDial(t, addr)
			stop := make(chan struct{})
			wrote := make(chan struct{})
			start := time.Now()
			go func() {
				defer close(wrote)
				for i, g := range groups {
					if i > 0 {
						select {
						case <-stop:
							return
						case <-time.After(ht * 4 / 10):
						}
					}
					lc.send(g)
				}
			}()
			resp, body, err := lc.response(5 * time.Second)
			took := time.Since(start)
			close(stop)
			<-wrote
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("a head trickled over 1.6 × head_timeout got %d %q after %v, want 408", resp.StatusCode, body, took)
			}
			if took > ht+2*time.Second {
				t.Errorf("answered after %v; head_timeout is %v", took, ht)
			}
			st.refusedOnce(t, cause.ClientTimeout)
		})
	}
}

// An idle keep-alive connection is closed keepalive_timeout after its last
// answer.
func TestLimitKeepaliveTimeout(t *testing.T) {
	t.Parallel()
	const kt = 300 * time.Millisecond
	st := &limStub{}
	addr := limServe(t, st, Options{HeadTimeout: 10 * time.Second, KeepaliveTimeout: kt})
	lc := limDial(t, addr)
	start := time.Now() // before the answer, which keepalive_timeout counts from
	lc.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := lc.mustResponse(5 * time.Second)
	if resp.StatusCode != 200 || body != "GET /a" || resp.Close {
		t.Fatalf("got %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	lc.closedAfter(start, kt, "keepalive_timeout (head_timeout 10s)")
	if rejects, _ := st.seen(); len(rejects) > 0 {
		t.Errorf("closing an idle connection was logged as %q", rejects)
	}
}

// request_head: a head larger than the read buffer but within the limit
// is served; one over it is refused with 431 and the connection closed.
func TestLimitRequestHead(t *testing.T) {
	t.Parallel()
	const limit = 16 << 10
	opts := Options{HeadLimit: limit, HeadTimeout: 5 * time.Second}
	for _, size := range []int{12 << 10, limit} {
		t.Run(fmt.Sprintf("%d bytes served", size), func(t *testing.T) {
			t.Parallel()
			st := &limStub{}
			lc := limDial(t, limServe(t, st, opts))
			lc.send(limHead("/big", size))
			resp, body := lc.mustResponse(5 * time.Second)
			if resp.StatusCode != 200 || body != "GET /big" {
				t.Errorf("a %d-byte head (limit %d) got %d %q", size, limit, resp.StatusCode, body)
			}
		})
	}
	refused := []struct {
		name  string
		limit int
		size  int
	}{
		{"far over", limit, 64 << 10},
		{"just over", limit, limit + 1<<10},
		{"a quarter over", limit, limit + 4<<10},
		// A limit below the read buffer's size: the head fits the
		// buffer, and must be held to the limit all the same.
		{"small limit", 2 << 10, 6 << 10},
	}
	for _, tt := range refused {
		t.Run(fmt.Sprintf("%s: %d bytes, limit %d", tt.name, tt.size, tt.limit), func(t *testing.T) {
			t.Parallel()
			st := &limStub{}
			o := opts
			o.HeadLimit = tt.limit
			lc := limDial(t, limServe(t, st, o))
			go lc.send(limHead("/big", tt.size))
			resp, body, err := lc.response(5 * time.Second)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("a %d-byte head with limit %d got %d %q, want 431", tt.size, tt.limit, resp.StatusCode, body)
			}
			if _, ok := lc.closed(3 * time.Second); !ok {
				t.Error("the connection stays open after the answer")
			}
			st.refusedOnce(t, cause.HeadersTooLarge)
		})
	}
	// The bytes that came after a large head, in the same reads, are the
	// next request.
	t.Run("pipelined after a large head", func(t *testing.T) {
		t.Parallel()
		st := &limStub{}
		lc := limDial(t, limServe(t, st, Options{HeadLimit: limit, HeadTimeout: 5 * time.Second}))
		lc.send(limHead("/first", 12<<10) + "GET /second HTTP/1.1\r\nHost: a\r\n\r\n" + limHead("/third", 10<<10))
		for _, want := range []string{"GET /first", "GET /second", "GET /third"} {
			resp, body := lc.mustResponse(5 * time.Second)
			if resp.StatusCode != 200 || body != want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
			}
		}
	})
}

// max_connections: past it, a connection waits in the accept queue,
// unanswered, until a connection being served ends.
func TestLimitMaxConnections(t *testing.T) {
	t.Parallel()
	const wait = 500 * time.Millisecond
	opts := Options{MaxConnections: 2, HeadTimeout: 10 * time.Second, KeepaliveTimeout: 10 * time.Second}
	// third asks on a third connection: no answer while the first two
	// are served; free ends one of them, and then the third is answered.
	third := func(t *testing.T, st *limStub, addr string, free func()) {
		t.Helper()
		lc := limDial(t, addr) // the kernel completes the handshake
		lc.send("GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body, err := lc.response(wait); err == nil {
			t.Fatalf("a third connection was answered %d %q with max_connections 2", resp.StatusCode, body)
		}
		if _, served := st.seen(); slices.Contains(served, "GET /third") {
			t.Fatal("a third connection was served with max_connections 2")
		}
		free()
		resp, body := lc.mustResponse(5 * time.Second)
		if resp.StatusCode != 200 || body != "GET /third" {
			t.Errorf("third connection got %d %q", resp.StatusCode, body)
		}
	}
	t.Run("silent connections", func(t *testing.T) {
		t.Parallel()
		st := &limStub{}
		addr := limServe(t, st, opts)
		c1, _ := limDial(t, addr), limDial(t, addr)
		third(t, st, addr, func() { c1.c.Close() })
	})
	t.Run("requests in progress", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		var once sync.Once
		st := slowStub(release)
		addr := limServe(t, st, opts)
		t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the server's Close
		c1, c2 := limDial(t, addr), limDial(t, addr)
		c1.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		c2.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		awaitServed(t, st, 2)
		third(t, st, addr, func() {
			once.Do(func() { close(release) })
			c1.mustResponse(5 * time.Second)
			c1.c.Close() // (a kept-alive connection would hold its slot)
		})
		c2.mustResponse(5 * time.Second)
	})
	// Kept-alive connections waiting for their next request are not work:
	// the one idle longest gives its slot up to a new client at once (see
	// TestIdleConnectionsReclaimed).
	t.Run("kept-alive connections", func(t *testing.T) {
		t.Parallel()
		st := &limStub{}
		s, addr := parkServe(t, st, opts)
		c1, c2 := limDial(t, addr), limDial(t, addr)
		for i, c := range []*limClient{c1, c2} {
			c.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
			c.mustResponse(5 * time.Second)
			awaitIdle(t, s, i+1)
		}
		lc := limDial(t, addr)
		lc.send("GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != "GET /third" {
			t.Errorf("third connection got %d %q", resp.StatusCode, body)
		}
		if _, ok := c1.closed(2 * time.Second); !ok {
			t.Error("the connection idle longest kept its slot")
		}
	})
	// Every way a connection ends gives its slot back: with a bound of
	// 2, each of these connections, one after the other, is answered.
	t.Run("slots come back", func(t *testing.T) {
		t.Parallel()
		st := &limStub{}
		addr := limServe(t, st, opts)
		for i, req := range []string{
			"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",                                                   // client closes
			"GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",                              // server closes
			"GET /3 HTTP/1.1\nHost: a\n\n",                                                         // refused (bare LF)
			"POST /4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", // chunked body
			"GET /5 HTTP/1.0\r\nHost: a\r\n\r\n",                                                   // HTTP/1.0: server closes
			"GET /6 HTTP/1.1\r\nHost: a\r\n\r\n",
			"GET /7 HTTP/1.1\r\nHost: a\r\n\r\n",
		} {
			lc := limDial(t, addr)
			lc.send(req)
			if _, _, err := lc.response(5 * time.Second); err != nil {
				t.Fatalf("connection %d (%q) got no answer: %v; a slot was not given back", i+1, req, err)
			}
			lc.c.Close()
		}
	})
}

// body_timeout bounds each wait for the body, not the whole body: a read
// that waits longer fails with os.ErrDeadlineExceeded, and the connection
// closes after the answer.
func TestLimitBodyTimeout(t *testing.T) {
	t.Parallel()
	const bt = 300 * time.Millisecond
	type read struct {
		n    int
		err  error
		took time.Duration
	}
	// reader reads the body, reports, and answers 408 if the read failed.
	reader := func(reads chan<- read) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			b, err := io.ReadAll(r.Body)
			reads <- read{len(b), err, time.Since(start)}
			if err != nil {
				limAnswer(w, http.StatusRequestTimeout, "slow")
				return
			}
			limAnswer(w, 200, string(b))
		}
	}
	t.Run("stalled body", func(t *testing.T) {
		t.Parallel()
		reads := make(chan read, 1)
		st := &limStub{handle: reader(reads)}
		addr := limServe(t, st, Options{BodyTimeout: bt, HeadTimeout: 5 * time.Second, KeepaliveTimeout: 10 * time.Second})
		lc := limDial(t, addr)
		lc.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
		var got read
		select {
		case got = <-reads:
		case <-time.After(5 * time.Second):
			t.Fatalf("the handler's read of a stalled body did not fail within 5s; body_timeout is %v", bt)
		}
		if got.n != 3 || !errors.Is(got.err, os.ErrDeadlineExceeded) {
			t.Errorf("handler read %d bytes, %v; want 3, os.ErrDeadlineExceeded", got.n, got.err)
		}
		if got.took < bt*8/10 || got.took > bt+2*time.Second {
			t.Errorf("the read failed after %v; body_timeout is %v", got.took, bt)
		}
		resp, _ := lc.mustResponse(5 * time.Second)
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Errorf("answer %d close=%v; want the handler's 408 with Connection: close", resp.StatusCode, resp.Close)
		}
		if _, ok := lc.closed(3 * time.Second); !ok {
			t.Error("the connection stays open after a body timed out")
		}
	})
	t.Run("slow body within the timeout per read", func(t *testing.T) {
		t.Parallel()
		const bt = 500 * time.Millisecond
		reads := make(chan read, 1)
		st := &limStub{handle: reader(reads)}
		addr := limServe(t, st, Options{BodyTimeout: bt, HeadTimeout: 5 * time.Second})
		lc := limDial(t, addr)
		const pieces = 7 // 7 pauses of bt/5: the body takes 1.4 × body_timeout
		lc.send(fmt.Sprintf("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", pieces))
		for range pieces {
			time.Sleep(bt / 5)
			lc.send("x")
		}
		var got read
		select {
		case got = <-reads:
		case <-time.After(5 * time.Second):
			t.Fatal("the handler did not finish reading the body")
		}
		if got.err != nil || got.n != pieces {
			t.Errorf("a body trickled within body_timeout per read: read %d bytes, %v", got.n, got.err)
		}
		resp, body := lc.mustResponse(5 * time.Second)
		if resp.StatusCode != 200 || body != strings.Repeat("x", pieces) {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
}
