package gateway_test

import (
	"bufio"
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
)

// Every request that dials the app hands the request's context to
// net.Dialer, which wraps it with context.WithDeadline. clientCtx is not a
// context the context package knows, so propagateCancel starts a goroutine
// that calls clientCtx.Done from outside the connection's goroutine, at any
// later time: startWatchLocked's quiet() then reads the body reader, the
// bufio.Reader and the stash while the connection loop streams the body or
// reads the next request, and may start a watcher that reads the socket
// concurrently with the loop. Run with -race.
func TestFrontDialRace(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Connection", "close") // every request dials anew
		fmt.Fprintf(w, "%s %d", r.Method, n)
	}))
	t.Cleanup(app.Close)
	d := newDirect(t, "h1", strings.TrimPrefix(app.URL, "http://"), func(a *config.App) { a.RetryBodyLimit = 1 << 10 })
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
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
					resp, err = c.Get(d.url + "/x")
				} else {
					resp, err = c.Post(d.url+"/x", "application/octet-stream", strings.NewReader(body))
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
}

// An upload nobody read (no instance became ready: 503), larger than the
// drain bound: the front answers 503 without Connection: close and then
// closes at once with the body unread in the socket, which resets the
// connection; Go's client, still writing the body, reports "connection
// reset by peer" instead of the 503. net/http says Connection: close,
// half-closes and lingers (closeWriteAndWait) so the answer arrives.
func TestFrontUnreadUploadAnswerKept(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		d := newDirect(t, engine, echoApp(t), func(a *config.App) { a.RetryBodyLimit = 1 << 10 })
		d.m.SetState(pool.Unhealthy) // out of rotation (a legal change from ready)
		c := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
		defer c.CloseIdleConnections()
		for i := range 4 {
			resp, err := c.Post(d.url+"/upload", "application/octet-stream", strings.NewReader(strings.Repeat("x", 32<<20)))
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
// even when the app answers before the next 250 ms look at the client. On a
// reused upstream connection nothing watches the client: the front writes
// the answer into the closed connection and logs a 200.
func TestFrontClientGoneBeforeSlowAnswer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				time.Sleep(200 * time.Millisecond)
			}
			io.WriteString(w, "ok")
		}))
		t.Cleanup(app.Close)
		d := newDirect(t, engine, strings.TrimPrefix(app.URL, "http://"), nil)
		// Warm the upstream pool so the slow request reuses a connection.
		if resp, body := rawExchange(t, d.addr, "GET /warm HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d %q", resp.StatusCode, body)
		}
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
		conn.Close()
		e := d.entry(t, "/slow")
		if e.Cause != "client_closed" || e.Status != 499 {
			t.Errorf("client left before the answer: entry %q %d, want client_closed 499", e.Cause, e.Status)
		}
		d.waitIdle(t)
	})
}

// A client that leaves while a response streams from an app that has gone
// quiet (a long poll, an event stream between events) must end the request
// client_closed and let go of its member.
func TestClientGoneDuringSilentStream(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
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
		d := newDirect(t, engine, strings.TrimPrefix(app.URL, "http://"), nil)
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("first event %q, %v", line, err)
		}
		conn.Close()
		deadline := time.Now().Add(2 * time.Second)
		for d.m.Inflight() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := d.m.Inflight(); n != 0 {
			t.Errorf("2 s after the client left its stream, the member still has %d in flight", n)
		}
		once.Do(func() { close(release) })
		if e := d.entry(t, "/events"); e.Cause != "client_closed" {
			t.Errorf("entry %q %d, want client_closed", e.Cause, e.Status)
		}
	})
}

// An event stream whose app sent its head and nothing yet: ReverseProxy
// flushes the head at once (its initial flush timer), so the client sees
// the stream open; the front keeps the head in its write buffer until the
// first body bytes, which may be many seconds away.
func TestStreamHeadFlushedAtOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
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
		d := newDirect(t, engine, strings.TrimPrefix(app.URL, "http://"), nil)
		t.Cleanup(func() { close(release) })
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
			t.Errorf("the app sent its event-stream head; the client has none after 1 s: %v", err)
		}
	})
}

// RFC 9112 section 2.2: a server SHOULD ignore an empty line before a
// request-line; net/http does after a POST (old clients add CRLF after the
// body). The front hands such a head to a fresh net/http connection, which
// no longer knows the previous request was a POST, and it answers 400.
func TestFrontCRLFAfterPostBody(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		d := newDirect(t, engine, echoApp(t), nil)
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab\r\n"+
			"GET /echo HTTP/1.1\r\nHost: b\r\n\r\n")
		br := bufio.NewReader(conn)
		want := []string{"POST /echo host=a body=2", "GET /echo host=b body=0"}
		if engine == "net/http" {
			// A connection handed to net/http serves one request: the
			// front checks every request head before it is served.
			want = want[:1]
		}
		for _, w := range want {
			readAnswer(t, br, w)
		}
	})
}

// Trailers the app sends without announcing them are forwarded by
// ReverseProxy (http.TrailerPrefix); the front drops them.
func TestUndeclaredTrailers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
			}
		})
		d := newDirect(t, engine, addr, nil)
		resp, err := http.Get(d.url + "/t")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello" || resp.Trailer.Get("X-Sum") != "42" {
			t.Errorf("body %q trailer %v; want hello and X-Sum: 42", b, resp.Trailer)
		}
	})
}

// Requests pipelined behind one held for an instance: the watcher reads
// the first byte of the next request and stashes it; the next parse, and
// a hand-off to net/http (HTTP/1.0), must start with that byte.
func TestFrontPipelinedWhileHeld(t *testing.T) {
	d := newDirect(t, "h1", echoApp(t), func(a *config.App) { a.HoldTimeout = config.Duration(3 * time.Second) })
	d.m.SetState(pool.Unhealthy) // out of rotation (a legal change from ready)
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /echo?1 HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	io.WriteString(conn, "GET /echo?2 HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	d.m.SetState(pool.Ready)
	br := bufio.NewReader(conn)
	read := func(want string) { t.Helper(); readAnswer(t, br, want) }
	read("GET /echo?1 host=a")
	read("GET /echo?2 host=a")

	d.m.SetState(pool.Unhealthy) // out of rotation (a legal change from ready)
	io.WriteString(conn, "GET /echo?3 HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	io.WriteString(conn, "GET /echo?4 HTTP/1.0\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	d.m.SetState(pool.Ready)
	read("GET /echo?3 host=a")
	read("GET /echo?4 host=a")
	d.waitIdle(t)
}

// readAnswer reads one response from br and checks that its body starts
// with want.
func readAnswer(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), want) {
		t.Errorf("got %d %.60q, want %q", resp.StatusCode, b, want)
	}
}
