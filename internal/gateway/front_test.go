package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// echoApp answers /echo with the method, host, body length and headers
// it received, one per line, sorted; /head with a 5-byte body; /nocontent
// with 204.
func echoApp(t *testing.T) string {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
			return
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			return
		}
		b, _ := io.ReadAll(r.Body)
		lines := []string{}
		for k, vs := range r.Header {
			lines = append(lines, k+": "+strings.Join(vs, ","))
		}
		slices.Sort(lines)
		w.Header().Set("Connection", "X-App-Hop")
		w.Header().Set("X-App-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprintf(w, "%s %s host=%s body=%d\n%s\n", r.Method, r.URL.RequestURI(), r.Host, len(b), strings.Join(lines, "\n"))
	}))
	t.Cleanup(app.Close)
	return strings.TrimPrefix(app.URL, "http://")
}

// rawExchange sends raw on a new plain connection and reads one response.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	return rawExchangeOver(t, wireH1, addr, raw)
}

// Requests beyond the plainest are served, the unusual ones answered and
// the malformed ones refused 400, all by the front's one HTTP/1.1 parser.
func TestFrontUnusualRequests(t *testing.T) {
	t.Parallel()
	d := newDirect(t, "h1", echoApp(t), nil)
	tests := []struct {
		name, raw  string
		wantStatus int
		wantBody   string // a line the app must have seen
	}{
		{"plain", "GET /echo?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", 200, "GET /echo?q=1 host=a body=0"},
		{"content-length body", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 200, "POST /echo host=a body=3"},
		{"chunked body", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "POST /echo host=a body=3"},
		{"http/1.0", "GET /echo HTTP/1.0\r\nHost: a\r\n\r\n", 200, "GET /echo host=a body=0"},
		{"expect 100-continue", "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200, "POST /echo host=a body=2"},
		{"escaped path", "GET /e%63ho HTTP/1.1\r\nHost: a\r\n\r\n", 200, "GET /e%63ho host=a body=0"},
		{"lowercase header names", "GET /echo HTTP/1.1\r\nhost: a\r\nx-thing: 1\r\n\r\n", 200, "X-Thing: 1"},
		{"bare LF", "GET /echo HTTP/1.1\nHost: a\n\n", 400, "bad_request"},
		{"large head", "GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 10<<10) + "\r\n\r\n", 200, "X-Big: bbbb"},
		{"two hosts", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, ""},
		{"no host", "GET /echo HTTP/1.1\r\n\r\n", 400, ""},
		{"bad content-length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400, ""},
		{"two content-lengths", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, ""},
		{"space in header name", "GET /echo HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n", 400, ""},
		{"control byte in value", "GET /echo HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawExchange(t, d.addr, tt.raw)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.wantStatus, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body %q does not contain %q", body, tt.wantBody)
			}
		})
	}
	d.waitIdle(t)
}

// The gateway forwards a request as a proxy must: hop-by-hop fields
// dropped both ways (over HTTP/1.1 those the Connection field names too;
// an HTTP/2 client sends none), TE: trailers kept, X-Forwarded-* set by
// the gateway alone (X-Forwarded-Proto https over TLS).
func TestFrontHeaders(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		d := newDirect(t, proto, echoApp(t), nil)
		req, _ := http.NewRequest("GET", protoURL(proto, d.addr)+"/echo", nil)
		req.Host = "site.example"
		h := req.Header
		if proto == "h1" {
			h.Set("Connection", "keep-alive, X-Client-Hop")
			h.Set("X-Client-Hop", "1")
			h.Set("Keep-Alive", "300")
		}
		h.Set("Proxy-Authorization", "Basic eA==")
		h.Set("Te", "trailers")
		h.Set("X-Forwarded-For", "6.6.6.6")
		h.Set("Forwarded", "for=6.6.6.6")
		h.Set("X-Forwarded-Host", "evil")
		h.Set("X-Request-Id", "fixed-id")
		h.Set("Accept", "*/*")
		resp, err := protoClient(t, proto).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, seen, _ := strings.Cut(string(b), "\n")
		scheme := "http"
		if proto == "h2" {
			scheme = "https"
		}
		want := []string{"Accept-Encoding: gzip", "Accept: */*", "Te: trailers", "X-Forwarded-For: 127.0.0.1",
			"X-Forwarded-Host: site.example", "X-Forwarded-Proto: " + scheme, "X-Real-Ip: 127.0.0.1", "X-Request-Id: fixed-id"}
		got := strings.Split(strings.TrimSpace(seen), "\n")
		got = slices.DeleteFunc(got, func(s string) bool { return strings.HasPrefix(s, "User-Agent") })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("headers the app saw (-want +got):\n%s", diff)
		}
		for _, h := range []string{"X-App-Hop", "Keep-Alive"} {
			if v := resp.Header.Get(h); v != "" {
				t.Errorf("client got hop-by-hop %s: %q", h, v)
			}
		}
		if got := resp.Header.Values("X-Request-Id"); !cmp.Equal(got, []string{"fixed-id"}) {
			t.Errorf("X-Request-Id = %q", got)
		}
		if resp.Header.Get("Date") == "" {
			t.Error("no Date header")
		}
	})
}

// Pipelined requests are answered in order on one connection, HEAD and
// 204 answers carry no body, and Connection: close is honoured.
func TestFrontPipelinedAndBodiless(t *testing.T) {
	t.Parallel()
	d := newDirect(t, "h1", echoApp(t), nil)
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"+
		"GET /head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(conn)
	type answer struct {
		Status int
		Length int64
		Body   string
		Close  bool
	}
	var got []answer
	for _, method := range []string{"HEAD", "GET", "POST", "GET"} {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d: %v", len(got)+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		body := string(b)
		length := resp.ContentLength
		if method == "POST" {
			body, _, _ = strings.Cut(body, "\n")
			length = 0 // the echo's length varies
		}
		got = append(got, answer{resp.StatusCode, length, body, resp.Close})
	}
	want := []answer{
		{200, 5, "", false},
		{204, 0, "", false},
		{200, 0, "POST /echo host=a body=4", false},
		{200, 5, "hello", true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after Connection: close, read %d bytes, %v; want EOF", n, err)
	}
}

// A streamed answer (no length) reaches the client as it is written, and
// its trailers follow: chunked over HTTP/1.1, DATA frames without a
// content-length over HTTP/2.
func TestFrontStreamsAndTrailers(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		release := make(chan struct{})
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "first\n")
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			io.WriteString(w, "second\n")
			w.Header().Set("X-Sum", "42")
		}))
		t.Cleanup(app.Close)
		d := newDirect(t, proto, strings.TrimPrefix(app.URL, "http://"), nil)
		resp, err := protoClient(t, proto).Get(protoURL(proto, d.addr) + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadString('\n')
		if err != nil || first != "first\n" {
			t.Fatalf("first line %q, %v: the stream was not flushed", first, err)
		}
		close(release)
		rest, _ := io.ReadAll(br)
		if string(rest) != "second\n" || resp.Trailer.Get("X-Sum") != "42" {
			t.Errorf("rest %q, trailer %q; want second and 42", rest, resp.Trailer.Get("X-Sum"))
		}
		if resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" {
			t.Errorf("length %d (Content-Length %q): want none", resp.ContentLength, resp.Header.Get("Content-Length"))
		}
		if proto == "h1" && len(resp.TransferEncoding) == 0 {
			t.Errorf("encoding %v: want chunked", resp.TransferEncoding)
		}
	})
}

// A trailer named as a field of the head reaches the client with the
// trailer's value, over every protocol: the head's is the head's.
func TestFrontTrailerNamedAsAHeadField(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-Sum: head\r\nConnection: close\r\n\r\n" +
				"3\r\n1+2\r\n0\r\nX-Sum: 3\r\n\r\n")
			brw.Flush()
		}))
		t.Cleanup(app.Close)
		d := newDirect(t, proto, strings.TrimPrefix(app.URL, "http://"), nil)
		resp, err := protoClient(t, proto).Get(protoURL(proto, d.addr) + "/sum")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "1+2" || resp.Header.Get("X-Sum") != "head" || resp.Trailer.Get("X-Sum") != "3" {
			t.Errorf("body %q, head X-Sum %q, trailer X-Sum %q; want 1+2, head and 3", body, resp.Header.Get("X-Sum"), resp.Trailer.Get("X-Sum"))
		}
	})
}

// A client that leaves while its request waits, held for an instance or
// for the app's answer, is seen at once: the request ends client_closed
// and lets go of its place. Over HTTP/1.1 the client closes its
// connection; over HTTP/2 it resets the stream.
func TestFrontClientGoneWhileWaiting(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	tests := []struct {
		name  string
		ready bool
	}{{"held for an instance", false}, {"waiting for the app", true}}
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				d := newDirect(t, proto, strings.TrimPrefix(slow.URL, "http://"), func(a *config.App) {
					a.HoldTimeout = config.Duration(10 * time.Second)
					a.RequestTimeout = config.Duration(10 * time.Second)
				})
				if !tt.ready {
					d.m.SetState(pool.Unhealthy) // out of rotation (a legal change from ready)
				}
				leave := sendAndLeave(t, proto, d.addr, "/wait")
				testutil.WaitFor(t, 5*time.Second, "the request waiting", func() bool {
					if tt.ready {
						return d.m.Inflight() == 1 // at the app
					}
					return d.serving.n.Load() == 1 // held: the only member is out of rotation
				})
				start := time.Now()
				leave()
				e := d.entry(t, "/wait")
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("the request ended %v after its client left", took)
				}
				if e.Cause != "client_closed" || e.Status != 499 {
					t.Errorf("entry %s %d, want client_closed 499", e.Cause, e.Status)
				}
				d.waitIdle(t)
			})
		}
	})
}

// sendAndLeave sends GET path to the front at addr over proto, and
// returns how its client leaves before the answer: over HTTP/1.1 it
// closes the connection, over HTTP/2 it resets the stream (the request's
// context ends), and leave waits until the client has let go.
func sendAndLeave(t *testing.T, proto, addr, path string) (leave func()) {
	t.Helper()
	if proto == "h1" {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		return func() { conn.Close() }
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", protoURL(proto, addr)+path, nil)
	c := protoClient(t, proto)
	c.Timeout = 0 // the test's cancel ends it
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() { cancel(); <-done }
}

// Shutdown closes idle connections at once, lets a request in flight
// finish, and returns when it has. Over HTTP/1.1 the answer says
// Connection: close; over HTTP/2 the connection is told to go away
// (GOAWAY) and closes after its stream.
func TestFrontShutdown(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		// /slow answers once the test lets it: when Shutdown has closed
		// the idle connection.
		release := make(chan struct{})
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
			io.WriteString(w, "done")
		}))
		t.Cleanup(app.Close)
		var released sync.Once
		letGo := func() { released.Do(func() { close(release) }) }
		t.Cleanup(letGo)
		cfg := config.Default()
		ac := config.NewApp("web")
		ac.Routes = config.PlainRoutes("/")
		cfg.Apps, cfg.Order = map[string]*config.App{"web": ac}, []string{"web"}
		p := pool.New("web", 100)
		m := pool.NewMember("web-1", strings.TrimPrefix(app.URL, "http://"))
		p.Add(m)
		m.SetState(pool.Ready)
		t.Cleanup(func() { p.Remove(m) })
		gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{Observe: func(*telemetry.AccessEntry) {}})
		f := front.New(gw, protoOptions(t, proto))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		served := make(chan error, 1)
		go func() { served <- f.Serve(ln) }()

		// idleClosed and inFlight check the two connections once Shutdown
		// has begun.
		var idleClosed, inFlight func()
		if proto == "h1" {
			idle, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			busy, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
			idleBr := bufio.NewReader(idle)
			if resp, err := http.ReadResponse(idleBr, nil); err != nil || resp.StatusCode != 200 {
				t.Fatalf("first request: %v", err)
			} else {
				io.Copy(io.Discard, resp.Body)
			}
			io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
			idleClosed = func() {
				idle.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, err := idleBr.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("idle connection: read %d, %v; want EOF", n, err)
				}
			}
			inFlight = func() {
				busy.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
				if err != nil {
					t.Fatalf("request in flight lost: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != "done" || !resp.Close {
					t.Errorf("in-flight answer %q close=%v; want done, Connection: close", b, resp.Close)
				}
			}
		} else {
			secure := proto == "h2"
			idle, err := dialH2(t, addr, secure)
			if err != nil {
				t.Fatal(err)
			}
			busy, err := dialH2(t, addr, secure)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []*h2Raw{idle, busy} {
				if err := h.start(); err != nil {
					t.Fatal(err)
				}
			}
			idle.get(1, "/fast")
			if v, ok := idle.await(h2Patience, settled(1)); !ok || v.outcome(1) != "200" {
				t.Fatalf("first request: %s", v.String())
			}
			busy.get(1, "/slow")
			idleClosed = func() {
				if v, ok := idle.await(4*time.Second, func(v *h2View) bool { return v.Closed }); !ok {
					t.Errorf("idle connection still open 4 s into Shutdown: %s", v.String())
				}
			}
			inFlight = func() {
				v, ok := busy.await(5*time.Second, func(v *h2View) bool { return v.Closed })
				st := v.Streams[1]
				switch {
				case st == nil || st.Status != 200 || !st.Ended || string(st.Body) != "done":
					t.Fatalf("request in flight: %s; want 200 done", v.String())
				case !v.GoAway || v.GoAwayCode != http2.ErrCodeNo || v.GoAwayLast < 1:
					t.Errorf("the busy connection was not told to go away after stream 1: %s", v.String())
				case !ok:
					t.Errorf("the busy connection stays open after its stream: %s", v.String())
				}
			}
		}
		testutil.WaitFor(t, 5*time.Second, "the slow request in the app", func() bool { return m.Inflight() == 1 })

		// An HTTP/2 connection reads on for a second after its GOAWAY
		// (h2's goAwayLinger) unless the client closes first, which this
		// one does not: the idle one lingers from the start, the busy one
		// once its answer is out, so Shutdown takes two seconds here.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		shut := make(chan error, 1)
		go func() { shut <- f.Shutdown(ctx) }()

		idleClosed()
		letGo()
		inFlight()
		if err := <-shut; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Shutdown took %v", took)
		}
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if _, err := net.Dial("tcp", addr); err == nil {
			t.Error("still accepting after Shutdown")
		}
	})
}
