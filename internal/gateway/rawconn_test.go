package gateway_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
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

// The raw-wire tests' shared client side: an HTTP/1.1 connection the test
// writes bytes on itself, and the events those tests wait on instead of
// sleeping: the front has read what was sent, the gateway has let go of
// every request, the app has handled every byte it was sent.

// rawConn is a client connection that writes HTTP/1.1 bytes itself.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dialRaw opens a plain connection to addr; dialRawOver one over w.
func dialRaw(t *testing.T, addr string) *rawConn { t.Helper(); return dialRawOver(t, wireH1, addr) }

func dialRawOver(t *testing.T, w wire, addr string) *rawConn {
	t.Helper()
	c, err := dialH1(w, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// dialPlain is dialRaw with every read and write of the connection
// bounded by 5 s, for a test that reads and writes it directly.
func dialPlain(t *testing.T, addr string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	c.c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func (c *rawConn) send(s string) {
	c.c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c.c, s)
}

// sendRead sends s and waits until the front has read it (or closed the
// connection), up to 5 s: what comes next on the connection, bytes or
// its end, comes after, not with it.
func (c *rawConn) sendRead(s string) {
	c.send(s)
	testutil.AwaitPeerRead(c.c, 0, 5*time.Second)
}

// resp reads one response (interim ones included) within d.
func (c *rawConn) resp(d time.Duration) (*http.Response, string, error) {
	c.c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode < 200 || resp.StatusCode == 101 {
		return resp, "", nil
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// final reads responses within d each until a final one.
func (c *rawConn) final(d time.Duration) (*http.Response, string, error) {
	for {
		resp, body, err := c.resp(d)
		if err != nil || resp.StatusCode >= 200 {
			return resp, body, err
		}
	}
}

// answers reads the next final answer and wants its body to start with
// want.
func (c *rawConn) answers(want string) {
	c.t.Helper()
	resp, got, err := c.final(5 * time.Second)
	if err != nil {
		c.t.Fatalf("%s: %v", want, err)
	}
	if !strings.HasPrefix(got, want) {
		c.t.Errorf("got %d %.60q, want %q", resp.StatusCode, got, want)
	}
}

// upgraded reads the answer to an upgrade and fails the test unless it
// is a 101.
func (c *rawConn) upgraded() {
	c.t.Helper()
	if resp, _, err := c.resp(3 * time.Second); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		c.t.Fatalf("upgrade: %v %v", resp, err)
	}
}

// drain reads until the front closes the connection, up to d.
func (c *rawConn) drain(d time.Duration) {
	c.c.SetReadDeadline(time.Now().Add(d))
	io.Copy(io.Discard, c.br)
}

func (c *rawConn) close() { c.c.Close() }

// tcp is the TCP connection under c (under its TLS, if any).
func (c *rawConn) tcp() *net.TCPConn {
	if tc, ok := c.c.(*tls.Conn); ok {
		under := tc.NetConn()
		if h, ok := under.(*testutil.HeldConn); ok {
			under = h.Conn
		}
		return under.(*net.TCPConn)
	}
	return c.c.(*net.TCPConn)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// An upgrade request for a websocket, on a connection that stays open.
const wsUpgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

// servingCount is a front.Handler that counts the requests h serves at
// once: zero is the event that the gateway is done with every request
// the front handed it.
type servingCount struct {
	h front.Handler
	n atomic.Int64
}

func (s *servingCount) Serve(x *front.Exchange) {
	s.n.Add(1)
	defer s.n.Add(-1)
	s.h.Serve(x)
}

// appConns follows an app's connections for quiet: each is busy from
// the first byte of a request until the app has recorded it.
type appConns struct {
	mu    sync.Mutex
	conns map[net.Conn]bool // busy
}

// serve runs handle on c, a connection of the app, followed.
func (a *appConns) serve(c net.Conn, br *bufio.Reader, handle func(c net.Conn, br *bufio.Reader)) {
	a.mu.Lock()
	if a.conns == nil {
		a.conns = map[net.Conn]bool{}
	}
	a.conns[c] = false
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
	}()
	handle(c, br)
}

// state follows c, a connection of a net/http app, into st: busy from
// the first byte of a request until the handler is done with it.
func (a *appConns) state(c net.Conn, st http.ConnState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conns == nil {
		a.conns = map[net.Conn]bool{}
	}
	switch st {
	case http.StateNew, http.StateIdle:
		a.conns[c] = false
	case http.StateActive:
		a.conns[c] = true
	default:
		delete(a.conns, c)
	}
}

// busy marks c as in the middle of a request, or done with it.
func (a *appConns) busy(c net.Conn, b bool) {
	a.mu.Lock()
	if _, ok := a.conns[c]; ok {
		a.conns[c] = b
	}
	a.mu.Unlock()
}

// quiet reports whether the app has handled every byte sent to it: no
// connection is in the middle of a request, and none holds bytes it has
// not read.
func (a *appConns) quiet() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c, busy := range a.conns {
		if busy {
			return false
		}
		if unread, err := testutil.PeerUnread(peerOf{c}); err != nil || unread > 0 {
			return false
		}
	}
	return true
}

// peerOf is the app's connection c seen from the gateway's side, whose
// peer c is: PeerUnread of it is what c has not read.
type peerOf struct{ net.Conn }

func (p peerOf) LocalAddr() net.Addr  { return p.Conn.RemoteAddr() }
func (p peerOf) RemoteAddr() net.Addr { return p.Conn.LocalAddr() }

// quiesce waits, up to within, until the gateway has let go of d's
// member and every request the front handed it, and appQuiet (if set)
// holds; then, if grace is set, a moment more. Over HTTP/1.1 those events
// are the whole story: the front reads a connection's requests one at a
// time, so a forward cannot start behind them. An HTTP/2 stream reset
// by its client may have its handler started but not yet running, which
// nothing outside the front can see: grace is how long such a forward is
// given to show at the app. It reports whether the events came.
func quiesce(d *direct, within time.Duration, appQuiet func() bool, grace time.Duration) bool {
	ok := testutil.Eventually(within, func() bool {
		return d.m.Inflight() == 0 && d.serving.n.Load() == 0 && (appQuiet == nil || appQuiet())
	})
	if grace > 0 {
		// Time must pass: a forward that has not started cannot be waited for.
		time.Sleep(grace)
	}
	return ok
}

// fetch does req with c, fails the test if it gets no answer, and
// returns the answer (its trailers read) and body.
func fetch(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// fetchGet is fetch of a GET of url.
func fetchGet(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fetch(t, c, req)
}

// The gateway under test, and raw apps behind it.

// direct is a gateway in front of one ready member at addr, served on a
// loopback listener, with its access entries kept.
type direct struct {
	url  string // http://addr (protoURL(proto, addr) is the URL for any protocol)
	addr string
	p    *pool.Pool
	m    *pool.Member
	// serving counts the requests the gateway serves at once.
	serving *servingCount
	// h2: the front serves HTTP/2 too (h2c, or h2 offered over TLS).
	h2 bool

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
	d := &direct{h2: opts.H2C || opts.TLS != nil && slices.Contains(opts.TLS.NextProtos, "h2")}
	var gw *gateway.Gateway
	gw, d.p, d.m = oneMemberIn(t, addr, adjust, gateway.Options{Observe: d.observe})
	d.serving = &servingCount{h: gw}
	_, d.addr = serveWith(t, d.serving, opts)
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
	gw, _, m := oneMemberIn(t, addr, adjust, opts)
	return gw, m
}

// oneMemberIn is oneMember with the member's pool.
func oneMemberIn(t testing.TB, addr string, adjust func(*config.App), opts gateway.Options) (*gateway.Gateway, *pool.Pool, *pool.Member) {
	return oneMemberUnder(t, config.Default(), addr, adjust, opts)
}

// oneMemberUnder is oneMemberIn with cfg's top-level settings (trusted
// proxies, limits).
func oneMemberUnder(t testing.TB, cfg *config.Config, addr string, adjust func(*config.App), opts gateway.Options) (*gateway.Gateway, *pool.Pool, *pool.Member) {
	app := config.NewApp("web")
	app.Routes = config.PlainRoutes("/")
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
	return gateway.New(cfg, map[string]*pool.Pool{"web": p}, opts), p, m
}

// entry waits for the access entry of path.
func (d *direct) entry(t *testing.T, path string) telemetry.AccessEntry {
	t.Helper()
	var e telemetry.AccessEntry
	testutil.WaitFor(t, 3*time.Second, "the access entry of "+path, func() bool {
		var ok bool
		e, ok = d.find(func(e telemetry.AccessEntry) bool { return e.Path == path })
		return ok
	})
	return e
}

// find is the first access entry that match holds of.
func (d *direct) find(match func(telemetry.AccessEntry) bool) (telemetry.AccessEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.entries {
		if match(e) {
			return e, true
		}
	}
	return telemetry.AccessEntry{}, false
}

// waitIdle waits for the member's in-flight count to come back to 0.
func (d *direct) waitIdle(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, 3*time.Second, "the member's in-flight count to come back to 0 after every request ended",
		func() bool { return d.m.Inflight() == 0 })
}

// rawBackend serves each loopback connection with serve, and closes it
// when serve returns.
func rawBackend(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) string {
	return testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		serve(c, bufio.NewReader(c))
	})
}

// rawApp is a raw app that reads each request on a loopback connection,
// its body whole, and has answer write the answer; the connection closes
// when the gateway closes it.
func rawApp(t testing.TB, answer func(c net.Conn, req *http.Request, body []byte)) string {
	return rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			answer(c, req, body)
		}
	})
}

// rawFirst is a raw app that reads the head of the first request on each
// loopback connection and leaves the rest to answer (br holds what was
// read past the head); the connection closes when answer returns.
func rawFirst(t testing.TB, answer func(c net.Conn, br *bufio.Reader)) string {
	return rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			answer(c, br)
		}
	})
}

// acceptWebsocket, in an app's handler, switches the connection to a
// websocket (101) and hands it over; nil if it cannot.
func acceptWebsocket(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	brw.Flush()
	return c, brw
}

// sampleApp answers by path: /upgrade switches to a line echo, /sse
// streams two events 2 s apart and /chunks two lines, /hints sends 103
// then 200, /big 64 MiB, /echoid answers with the request's X-Request-Id, /ownid
// with two ids of its own,
// /slow after 600 ms; anything else reads the body and answers its size.
func sampleApp(t *testing.T) string {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upgrade":
			c, brw := acceptWebsocket(w)
			if c == nil {
				return
			}
			defer c.Close()
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					return
				}
				brw.WriteString("echo " + line)
				if brw.Flush() != nil {
					return
				}
			}
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			twoParts(w, r, "data: 1\n\n", "data: 2\n\n")
		case "/chunks":
			twoParts(w, r, "first\n", "second\n")
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
		case "/big":
			buf := make([]byte, 64<<10)
			for range 1024 { // 64 MiB
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		case "/echoid":
			w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
			io.WriteString(w, "ok")
		case "/ownid":
			w.Header()["X-Request-Id"] = []string{"app-1", "app-2"}
			io.WriteString(w, "ok")
		case "/slow":
			io.Copy(io.Discard, r.Body)
			time.Sleep(600 * time.Millisecond)
			io.WriteString(w, "slow")
		default:
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			fmt.Fprintf(w, "%s %s body=%d", r.Method, r.URL.Path, len(b))
		}
	}))
	t.Cleanup(app.Close)
	return strings.TrimPrefix(app.URL, "http://")
}

// twoParts answers first, flushed, and second 2 s later, unless the
// request ends before.
func twoParts(w http.ResponseWriter, r *http.Request, first, second string) {
	io.WriteString(w, first)
	http.NewResponseController(w).Flush()
	select {
	case <-r.Context().Done():
	case <-time.After(2 * time.Second):
		io.WriteString(w, second)
	}
}

// countingHandler is the gateway with a panic on /panic and a count of
// the requests it serves at once.
type countingHandler struct {
	gw              *gateway.Gateway
	active, maxSeen atomic.Int32
}

func (h *countingHandler) enter() func() {
	n := h.active.Add(1)
	for {
		m := h.maxSeen.Load()
		if n <= m || h.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { h.active.Add(-1) }
}

func (h *countingHandler) Serve(x *front.Exchange) {
	if x.Reject == nil && x.Req.URL.Path == "/upgrade" {
		// Not counted: a tunnel is no request the slot test follows.
		h.gw.Serve(x)
		return
	}
	defer h.enter()()
	if x.Reject == nil && x.Req.URL.Path == "/panic" {
		panic("countingHandler: /panic")
	}
	h.gw.Serve(x)
}

// countedFront is a front serving a countingHandler.
type countedFront struct {
	addr string
	f    *front.Server
	h    *countingHandler
	m    *pool.Member
}

// serveCounted serves a gateway in front of app with the front's opts;
// adjust changes the app's config.
func serveCounted(t *testing.T, app string, opts front.Options, adjust func(*config.App)) *countedFront {
	t.Helper()
	gw, m := oneMember(t, app, adjust, gateway.Options{})
	s := &countedFront{h: &countingHandler{gw: gw}, m: m}
	s.f, s.addr = serveWith(t, s.h, opts)
	return s
}
