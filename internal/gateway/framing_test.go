package gateway_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// direct is a gateway in front of one ready member at addr, served on a
// loopback listener, with its access entries kept.
type direct struct {
	url  string // http://addr (protoURL(proto, addr) is the URL for any protocol)
	addr string
	m    *pool.Member

	mu      sync.Mutex
	entries []telemetry.AccessEntry
}

// newDirect is directWith for a front that clients speak proto to (one
// of frontProtocols: see protoOptions); its URL for them is
// protoURL(proto, d.addr).
func newDirect(t *testing.T, proto string, addr string, adjust func(*config.App)) *direct {
	t.Helper()
	return directWith(t, addr, protoOptions(t, proto), adjust)
}

// directWith is a gateway in front of one ready member at addr, served by
// a front with opts; adjust, if set, changes the app's config.
func directWith(t testing.TB, addr string, opts front.Options, adjust func(*config.App)) *direct {
	t.Helper()
	d := &direct{}
	var gw *gateway.Gateway
	gw, d.m = oneMember(t, addr, adjust, gateway.Options{Observe: d.observe})
	_, d.addr = serveWith(t, gw, opts)
	d.url = "http://" + d.addr
	return d
}

func (d *direct) observe(e *telemetry.AccessEntry) {
	c := *e
	c.RetriedCauses = append([]string(nil), e.RetriedCauses...)
	d.mu.Lock()
	d.entries = append(d.entries, c)
	d.mu.Unlock()
}

// oneMember is a gateway for an app "web" with one ready member at addr,
// short holds and timeouts; adjust, if set, changes the app's config. The
// member leaves its pool when the test ends, after what serves the
// gateway (cleanups run last first) has stopped.
func oneMember(t testing.TB, addr string, adjust func(*config.App), opts gateway.Options) (*gateway.Gateway, *pool.Member) {
	cfg := config.Default()
	app := config.NewApp("web")
	app.Routes = []string{"/"}
	app.HoldTimeout = config.Duration(200 * time.Millisecond)
	app.RequestTimeout = config.Duration(5 * time.Second)
	if adjust != nil {
		adjust(app)
	}
	cfg.Apps = map[string]*config.App{"web": app}
	cfg.Order = []string{"web"}
	p := pool.New("web", 100)
	m := pool.NewMember("web-1", addr)
	p.Add(m)
	m.SetState(pool.Ready)
	t.Cleanup(func() { p.Remove(m) })
	return gateway.New(cfg, map[string]*pool.Pool{"web": p}, opts), m
}

func (d *direct) entry(t *testing.T, path string) telemetry.AccessEntry {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		for _, e := range d.entries {
			if e.Path == path {
				d.mu.Unlock()
				return e
			}
		}
		d.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no access entry for %s", path)
	return telemetry.AccessEntry{}
}

func (d *direct) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for d.m.Inflight() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("member in-flight count stays %d after every request ended", d.m.Inflight())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawBackend serves each loopback connection with serve, and closes it
// when serve returns.
func rawBackend(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) string {
	return testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		serve(c, bufio.NewReader(c))
	})
}

// A response followed by bytes nobody asked for must not leave those
// bytes to be read as the answer to the next request on the connection.
func TestUnsolicitedBytesNotReusedAsNextResponse(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		var n atomic.Int32
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				if n.Add(1) == 1 {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+
						"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
				} else {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
				}
			}
		})
		d := newDirect(t, proto, addr, nil)
		c := protoClient(t, proto)
		for i, want := range []string{"ok", "good"} {
			resp, err := c.Get(protoURL(proto, d.addr) + "/" + fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != want {
				t.Errorf("request %d got %q, want %q: a response meant for no one was served", i, b, want)
			}
		}
		d.waitIdle(t)
	})
}

// A WebSocket upgrade reaches the app with Connection: Upgrade, as real
// servers (gorilla, Node's http) require, and the 101 passes through. An
// upgrade is HTTP/1.1's.
func TestUpgradeKeepsConnectionHeader(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "not a websocket handshake: Connection "+r.Header.Get("Connection"), http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw)
	}))
	t.Cleanup(app.Close)
	d := newDirect(t, "h1", strings.TrimPrefix(app.URL, "http://"), nil)

	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade = %d %q, want 101", resp.StatusCode, b)
	}
	io.WriteString(conn, "ping")
	got := make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	conn.Close()
	d.waitIdle(t)
}

// An app that answers 101 to a request that asked for no upgrade gets a
// bad_response, and the member and connection are let go.
func TestUnaskedSwitchingProtocolsReleasesMember(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n")
			io.Copy(io.Discard, c)
		})
		d := newDirect(t, proto, addr, nil)
		resp, err := protoClient(t, proto).Get(protoURL(proto, d.addr) + "/plain")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Gatehouse-Cause") != "bad_response" {
			t.Errorf("got %d %q, want 502 bad_response", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
		}
		d.waitIdle(t)
	})
}

// A client that stops sending its (streamed) request body is the client's
// failure, not the app's: no upstream_reset blamed on the instance, and no
// made-up 200 either. Over HTTP/1.1 the client half-closes its connection
// mid-body; over HTTP/2 it resets the stream mid-body.
func TestClientBodyCutShortIsNotUpstreamReset(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}))
		t.Cleanup(app.Close)
		d := newDirect(t, proto, strings.TrimPrefix(app.URL, "http://"), func(a *config.App) { a.RetryBodyLimit = 1 << 10 })
		part := strings.Repeat("a", 4000)
		var status int
		var cause string
		if proto == "h1" {
			conn, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+part)
			conn.(*net.TCPConn).CloseWrite()
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				status, cause = resp.StatusCode, resp.Header.Get("Gatehouse-Cause")
			}
		} else {
			// The body fails after part: the client resets the stream.
			body := &cutBody{part: part}
			req, _ := http.NewRequest("POST", protoURL(proto, d.addr)+"/upload", body)
			req.ContentLength = 100000
			if resp, err := protoClient(t, proto).Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status, cause = resp.StatusCode, resp.Header.Get("Gatehouse-Cause")
			}
		}
		if cause == "upstream_reset" || cause == "stale_connection" || status == 200 {
			t.Errorf("client cut its body short; it was answered %d %q", status, cause)
		}
		e := d.entry(t, "/upload")
		if e.Cause != "client_closed" {
			t.Errorf("access entry: cause %q status %d (%s), want client_closed", e.Cause, e.Status, e.Detail)
		}
		d.waitIdle(t)
	})
}

// cutBody is a request body that yields part and then fails, as a client
// that gives up on its upload.
type cutBody struct {
	part string
	done bool
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.done || len(b.part) == 0 {
		return 0, errors.New("the client gave up on its upload")
	}
	n := copy(p, b.part)
	b.part = b.part[n:]
	if len(b.part) == 0 {
		b.done = true
	}
	return n, nil
}

// A malformed chunked request body is the client's failure: answered 400
// bad_request and logged so, never with a 200 the app did not send, nor
// blamed on the instance (or on a client that left), whether the body was
// small enough to be kept for replay or streamed past the limit. Chunked
// framing is HTTP/1.1's.
func TestMalformedChunkedBody(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(201)
	}))
	t.Cleanup(app.Close)
	d := newDirect(t, "h1", strings.TrimPrefix(app.URL, "http://"), func(a *config.App) { a.RetryBodyLimit = 1 << 10 })
	for _, size := range []int{10, 4000} {
		path := fmt.Sprintf("/chunked-%d", size)
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\nhello\r\n0\r\n\r\n", path, size, strings.Repeat("a", size))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Gatehouse-Cause") != "bad_request" {
			t.Errorf("%d-byte chunk then a malformed one: answered %v %v, want 400 bad_request", size, resp, err)
		}
		if e := d.entry(t, path); e.Cause != "bad_request" || e.Status != http.StatusBadRequest {
			t.Errorf("%d-byte chunk then a malformed one: access entry cause %q status %d, want bad_request 400", size, e.Cause, e.Status)
		}
	}
	d.waitIdle(t)
}

// POST, PUT and PATCH without a body still say Content-Length: 0, as
// http.Transport does; some servers answer 411 otherwise.
func TestEmptyPostSendsContentLength(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		var got []string
		var mu sync.Mutex
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				mu.Lock()
				got = append(got, req.Method+" "+strings.Join(req.Header["Content-Length"], ","))
				mu.Unlock()
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			}
		})
		d := newDirect(t, proto, addr, nil)
		c := protoClient(t, proto)
		for _, m := range []string{"POST", "PUT", "PATCH"} {
			req, _ := http.NewRequest(m, protoURL(proto, d.addr)+"/e", http.NoBody)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 3 {
			t.Errorf("app saw %q; want the three requests", got)
		}
		for _, g := range got {
			if !strings.HasSuffix(g, " 0") {
				t.Errorf("app saw %q; want Content-Length: 0", g)
			}
		}
		d.waitIdle(t)
	})
}

// An app that refuses a large upload (413, 401) without reading it, and
// closes, has answered: the client gets that answer, not a 502.
func TestEarlyResponseToLargeUploadKept(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large")
			c.(*net.TCPConn).CloseWrite()
			time.Sleep(50 * time.Millisecond)
		})
		d := newDirect(t, proto, addr, func(a *config.App) { a.RetryBodyLimit = 64 << 20 })
		c := protoClient(t, proto)
		c.Timeout = 30 * time.Second // 32 MiB kept for replay: slow under the race detector
		resp, err := c.Post(protoURL(proto, d.addr)+"/upload", "application/octet-stream", strings.NewReader(strings.Repeat("x", 32<<20)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("got %d %q %q, want the app's 413", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), b)
		}
		d.waitIdle(t)
	})
}
