package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Every request that dials the app hands the request's context to
// net.Dialer, which wraps it with context.WithDeadline. Over HTTP/1.1
// that context is the connection's own (clientCtx), which the context
// package does not know: propagateCancel starts a goroutine that calls
// its Done from outside the connection's goroutine, at any later time,
// while the connection loop streams the body or reads the next request.
// Over HTTP/2 it is x/net's stream context. Run with -race.
func TestFrontDialRace(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Connection", "close") // every request dials anew
		fmt.Fprintf(w, "%s %d", r.Method, n)
	}))
	t.Cleanup(app.Close)
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		d := newDirect(t, proto, strings.TrimPrefix(app.URL, "http://"), func(a *config.App) { a.RetryBodyLimit = 1 << 10 })
		c := protoClient(t, proto)
		if tr, ok := c.Transport.(*http.Transport); ok {
			tr.MaxIdleConnsPerHost = 64
		}
		base := protoURL(proto, d.addr)
		body := strings.Repeat("y", 4<<10) // streamed: larger than retry_body_limit
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 30 {
					var resp *http.Response
					var err error
					want := "GET 0"
					if i%2 == 0 {
						resp, err = c.Get(base + "/x")
					} else {
						resp, err = c.Post(base+"/x", "application/octet-stream", strings.NewReader(body))
						want = fmt.Sprintf("POST %d", len(body))
					}
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if string(b) != want {
						t.Errorf("got %d %q, want %q", resp.StatusCode, b, want)
					}
				}
			}()
		}
		wg.Wait()
		d.waitIdle(t)
	})
}

// An upload nobody read (no instance became ready: 503), larger than the
// drain bound, still gets its answer: over HTTP/1.1 the front says
// Connection: close, half-closes and lingers, where closing at once with
// the body unread in the socket would reset the connection and Go's
// client, still writing the body, would report "connection reset by
// peer" instead of the 503; over HTTP/2 the stream is answered and the
// rest of its body refused.
func TestFrontUnreadUploadAnswerKept(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		d := newDirect(t, proto, echoApp(t), func(a *config.App) { a.RetryBodyLimit = 1 << 10 })
		d.m.SetState(pool.Unhealthy) // out of rotation (a legal change from ready)
		c := protoClient(t, proto)
		for i := range 4 {
			resp, err := c.Post(protoURL(proto, d.addr)+"/upload", "application/octet-stream", strings.NewReader(strings.Repeat("x", 32<<20)))
			if err != nil {
				t.Errorf("upload %d: the gateway's answer was lost: %v", i, err)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("upload %d: status %d, want 503", i, resp.StatusCode)
			}
		}
	})
}

// A client that leaves while the app is slow must be logged client_closed,
// even when the app answers before the next 250 ms look at the client,
// and on a reused upstream connection too (where nothing else watches
// the client): the answer is not written into a client that is gone and
// logged a 200.
func TestFrontClientGoneBeforeSlowAnswer(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				// Time must pass: the gateway looks at the client before it
				// writes an answer that took longer than lateCheck, and
				// the client must have left by then.
				time.Sleep(200 * time.Millisecond)
			}
			io.WriteString(w, "ok")
		}))
		t.Cleanup(app.Close)
		d := newDirect(t, proto, strings.TrimPrefix(app.URL, "http://"), nil)
		// Warm the upstream pool so the slow request reuses a connection.
		if resp, _ := fetchGet(t, protoClient(t, proto), protoURL(proto, d.addr)+"/warm"); resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d", resp.StatusCode)
		}
		d.waitIdle(t)
		leave := sendAndLeave(t, proto, d.addr, "/slow")
		testutil.WaitFor(t, 3*time.Second, "the slow request at the member", func() bool { return d.m.Inflight() == 1 })
		leave()
		e := d.entry(t, "/slow")
		if e.Cause != "client_closed" || e.Status != 499 {
			t.Errorf("client left before the answer: entry %q %d, want client_closed 499", e.Cause, e.Status)
		}
		d.waitIdle(t)
	})
}

// A client that leaves while a response streams from an app that has gone
// quiet (a long poll, an event stream between events) must end the request
// client_closed and let go of its member: over HTTP/1.1 it closes its
// connection, over HTTP/2 it resets the stream.
func TestClientGoneDuringSilentStream(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		release := make(chan struct{})
		var once sync.Once
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: first\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}))
		t.Cleanup(app.Close)
		d := newDirect(t, proto, strings.TrimPrefix(app.URL, "http://"), nil)
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		var body io.Reader
		var leave func()
		if proto == "h1" {
			c := dialPlain(t, d.addr)
			c.send("GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, leave = resp.Body, c.close
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", protoURL(proto, d.addr)+"/events", nil)
			resp, err := protoClient(t, proto).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, leave = resp.Body, cancel // the stream is reset
		}
		line, err := bufio.NewReader(body).ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("first event %q, %v", line, err)
		}
		leave()
		if !testutil.Eventually(2*time.Second, func() bool { return d.m.Inflight() == 0 }) {
			n := d.m.Inflight()
			t.Errorf("2 s after the client left its stream, the member still has %d in flight", n)
		}
		once.Do(func() { close(release) })
		if e := d.entry(t, "/events"); e.Cause != "client_closed" {
			t.Errorf("entry %q %d, want client_closed", e.Cause, e.Status)
		}
	})
}

// An event stream whose app sent its head and nothing yet: the client
// sees the stream open at once, not when the first body bytes come,
// which may be many seconds away.
func TestStreamHeadFlushedAtOnce(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		release := make(chan struct{})
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(app.Close)
		d := newDirect(t, proto, strings.TrimPrefix(app.URL, "http://"), nil)
		t.Cleanup(func() { close(release) })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", protoURL(proto, d.addr)+"/events", nil)
		resp, err := protoClient(t, proto).Do(req)
		if err != nil {
			t.Fatalf("the app sent its event-stream head; the client has none after 1 s: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status %d, want the app's 200", resp.StatusCode)
		}
	})
}

// RFC 9112 section 2.2: a server SHOULD ignore an empty line before a
// request-line, as net/http's does after a POST (old clients add CRLF
// after the body): the request after it is served on the same
// connection. An HTTP/1.1 matter.
func TestFrontCRLFAfterPostBody(t *testing.T) {
	t.Parallel()
	d := newDirect(t, "h1", echoApp(t), nil)
	c := dialPlain(t, d.addr)
	c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab\r\n" +
		"GET /echo HTTP/1.1\r\nHost: b\r\n\r\n")
	c.answers("POST /echo host=a body=2")
	c.answers("GET /echo host=b body=0")
}

// Trailers the app sends without announcing them are forwarded too.
func TestUndeclaredTrailers(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		addr := rawApp(t, func(c net.Conn, req *http.Request, body []byte) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
		})
		d := newDirect(t, proto, addr, nil)
		resp, b := fetchGet(t, protoClient(t, proto), protoURL(proto, d.addr)+"/t")
		if b != "hello" || resp.Trailer.Get("X-Sum") != "42" {
			t.Errorf("body %q trailer %v; want hello and X-Sum: 42", b, resp.Trailer)
		}
	})
}

// Requests pipelined behind one held for an instance: the watcher reads
// the first byte of the next request and stashes it; the next parse,
// of an HTTP/1.1 request or of an HTTP/1.0 one, must start with that
// byte.
func TestFrontPipelinedWhileHeld(t *testing.T) {
	t.Parallel()
	d := newDirect(t, "h1", echoApp(t), func(a *config.App) { a.HoldTimeout = config.Duration(3 * time.Second) })
	c := dialPlain(t, d.addr)
	for _, pair := range [][2]string{{"GET /echo?1 HTTP/1.1", "GET /echo?2 HTTP/1.1"}, {"GET /echo?3 HTTP/1.1", "GET /echo?4 HTTP/1.0"}} {
		d.m.SetState(pool.Unhealthy) // out of rotation (a legal change from ready)
		c.send(pair[0] + "\r\nHost: a\r\n\r\n")
		testutil.WaitFor(t, 3*time.Second, "the first request held", func() bool { return d.p.Waiting() == 1 })
		next := pair[1] + "\r\nHost: a\r\n\r\n"
		c.send(next)
		testutil.AwaitPeerRead(c.c, len(next)-1, 3*time.Second) // the watcher took its first byte
		d.m.SetState(pool.Ready)
		c.answers(strings.TrimSuffix(pair[0], " HTTP/1.1") + " host=a")
		c.answers(strings.TrimSuffix(strings.TrimSuffix(pair[1], " HTTP/1.1"), " HTTP/1.0") + " host=a")
	}
	d.waitIdle(t)
}
