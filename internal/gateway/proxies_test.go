package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pires/go-proxyproto"
	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/trust"
)

// seen is what the app's net/http parsed of the forwarded fields: the
// oracle of what gatehouse sent.
type seen struct {
	XFF, XFP, XFH, Forwarded []string
}

// proxied is a gateway with trusted_proxies (and, with a header timeout,
// proxy_protocol) in front of a net/http app that answers with what it
// saw, served on loopback.
type proxied struct {
	addr     string
	requests atomic.Int64 // requests the app got

	mu      sync.Mutex
	entries map[string]telemetry.AccessEntry // by path
}

// newProxied serves the gateway to clients speaking proto (see
// protoOptions). headerTimeout > 0 wraps the listener for the PROXY
// protocol.
func newProxied(t *testing.T, proto string, trusted []string, headerTimeout time.Duration) *proxied {
	t.Helper()
	px := &proxied{entries: map[string]telemetry.AccessEntry{}}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		px.requests.Add(1)
		h := r.Header
		json.NewEncoder(w).Encode(seen{XFF: h["X-Forwarded-For"], XFP: h["X-Forwarded-Proto"], XFH: h["X-Forwarded-Host"], Forwarded: h["Forwarded"]})
	}))
	t.Cleanup(app.Close)
	cfg := config.Default()
	cfg.TrustedProxies = trusted
	cfg.ProxyProtocol = headerTimeout > 0
	ac := config.NewApp("web")
	ac.Routes = config.PlainRoutes("/")
	ac.Upstreams = []string{strings.TrimPrefix(app.URL, "http://")}
	cfg.Apps = map[string]*config.App{"web": ac}
	cfg.Order = []string{"web"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := pool.New("web", 100)
	m := pool.NewMember("web-1", ac.Upstreams[0])
	p.Add(m)
	m.SetState(pool.Ready)
	t.Cleanup(func() { p.Remove(m) })
	gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{Observe: func(e *telemetry.AccessEntry) {
		px.mu.Lock()
		px.entries[e.Path] = *e
		px.mu.Unlock()
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if headerTimeout > 0 {
		ln = trust.ProxyProtocolListener(ln, trust.New(cfg.TrustedPrefixes()), headerTimeout)
	}
	f := front.New(gw, protoOptions(t, proto))
	done := make(chan struct{})
	go func() { defer close(done); f.Serve(ln) }()
	t.Cleanup(func() { f.Close(); <-done })
	px.addr = ln.Addr().String()
	return px
}

// accessClient is the access entry's client address for path.
func (px *proxied) accessClient(t *testing.T, path string) string {
	t.Helper()
	var client string
	if !waitUntil(3*time.Second, func() bool {
		px.mu.Lock()
		defer px.mu.Unlock()
		e, ok := px.entries[path]
		client = e.Client
		return ok
	}) {
		t.Fatalf("no access entry for %s", path)
	}
	return client
}

// dialFrom connects to addr from the loopback address from (127.0.0.2
// is a peer other than 127.0.0.1 on the same machine).
func dialFrom(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// askRaw sends prefix and an HTTP/1.1 GET of path with the header lines
// fields on c, and returns what the app saw.
func askRaw(t *testing.T, c net.Conn, br *bufio.Reader, prefix []byte, path, fields string) seen {
	t.Helper()
	req := append(append([]byte(nil), prefix...), "GET "+path+" HTTP/1.1\r\nHost: site.example\r\n"+fields+"\r\n"...)
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: status %d, %v", path, resp.StatusCode, err)
	}
	io.Copy(io.Discard, resp.Body)
	return s
}

// proxiedClient is a client speaking proto that connects from the
// loopback address from and opens each connection with prefix (a PROXY
// header; nil: none); dials counts the connections it opened.
func proxiedClient(t *testing.T, proto, from string, prefix []byte) (c *http.Client, dials *atomic.Int32) {
	t.Helper()
	c = protoClient(t, proto)
	dials = new(atomic.Int32)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		conn, err := d.DialContext(ctx, network, addr)
		if err == nil && len(prefix) > 0 {
			if _, err = conn.Write(prefix); err != nil {
				conn.Close()
			}
		}
		return conn, err
	}
	return c, dials
}

// askProxied sends a GET of path with Host site.example and the header lines
// fields ("Name: value\r\n" each) through c to base, and returns what
// the app saw.
func askProxied(t *testing.T, c *http.Client, base, path, fields string) seen {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Host = "site.example"
	for _, line := range strings.Split(strings.TrimSuffix(fields, "\r\n"), "\r\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: status %d, %v", path, resp.StatusCode, err)
	}
	io.Copy(io.Discard, resp.Body)
	return s
}

// From a trusted proxy the forwarded fields are kept (X-Forwarded-For
// appended to) and the access log's client is the one the chain names;
// from anyone else they are replaced with what gatehouse sees (the
// scheme https over TLS).
func TestForwardedTrust(t *testing.T) {
	t.Parallel()
	const forged = "X-Forwarded-For: 203.0.113.7, 198.51.100.1\r\nX-Forwarded-For: 192.0.2.1\r\n" +
		"X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nForwarded: for=6.6.6.6\r\n"
	mine := seen{XFF: []string{"127.0.0.1"}, XFP: []string{"http"}, XFH: []string{"site.example"}}
	tests := []struct {
		name    string
		trusted []string
		from    string
		fields  string
		want    seen // X-Forwarded-Proto "http": gatehouse's own, the connection's scheme
		client  string
	}{
		{"no trusted_proxies: replaced", nil, "127.0.0.1", forged, mine, "127.0.0.1"},
		{"untrusted peer: replaced", []string{"127.0.0.1/32"}, "127.0.0.2", forged,
			seen{XFF: []string{"127.0.0.2"}, XFP: []string{"http"}, XFH: []string{"site.example"}}, "127.0.0.2"},
		{"trusted peer: kept and appended", []string{"127.0.0.1/32"}, "127.0.0.1", forged,
			seen{XFF: []string{"203.0.113.7, 198.51.100.1, 192.0.2.1, 127.0.0.1"}, XFP: []string{"https"}, XFH: []string{"public.example"}},
			"192.0.2.1"},
		{"trusted peer as a bare address", []string{"127.0.0.1"}, "127.0.0.1", "X-Forwarded-For: 203.0.113.7\r\n",
			seen{XFF: []string{"203.0.113.7, 127.0.0.1"}, XFP: []string{"http"}, XFH: []string{"site.example"}}, "203.0.113.7"},
		{"trusted hops are skipped", []string{"127.0.0.0/8"}, "127.0.0.1", "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 127.0.0.9\r\n",
			seen{XFF: []string{"6.6.6.6, 203.0.113.7, 127.0.0.9, 127.0.0.1"}, XFP: []string{"http"}, XFH: []string{"site.example"}}, "203.0.113.7"},
		{"trusted peer without the fields", []string{"127.0.0.1/32"}, "127.0.0.1", "", mine, "127.0.0.1"},
		{"trusted peer, fields that are not plain", []string{"127.0.0.1/32"}, "127.0.0.1",
			"X-Forwarded-Proto: https, http\r\nX-Forwarded-Host: a.example, b.example\r\n", mine, "127.0.0.1"},
		{"trusted peer, two proto lines", []string{"127.0.0.1/32"}, "127.0.0.1",
			"X-Forwarded-Proto: https\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: a b\r\n", mine, "127.0.0.1"},
		{"trusted peer, garbage in the chain", []string{"127.0.0.1/32"}, "127.0.0.1", "X-Forwarded-For: 6.6.6.6, unknown\r\n",
			seen{XFF: []string{"6.6.6.6, unknown, 127.0.0.1"}, XFP: []string{"http"}, XFH: []string{"site.example"}}, "127.0.0.1"},
	}
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		scheme := "http"
		if proto == "h2" {
			scheme = "https"
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want := tt.want
				if slices.Equal(want.XFP, []string{"http"}) {
					want.XFP = []string{scheme}
				}
				px := newProxied(t, proto, tt.trusted, 0)
				c, _ := proxiedClient(t, proto, tt.from, nil)
				path := fmt.Sprintf("/case/%d", i)
				got := askProxied(t, c, protoURL(proto, px.addr), path, tt.fields)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("the app saw (-want +got):\n%s", diff)
				}
				if got := px.accessClient(t, path); got != tt.client {
					t.Errorf("access log client %q, want %q", got, tt.client)
				}
			})
		}
	})
}

// v2 builds a PROXY v2 header with the library's own writer.
func v2(t *testing.T, cmd proxyproto.ProtocolVersionAndCommand, src, dst string) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: 2, Command: cmd, TransportProtocol: proxyproto.UNSPEC}
	if cmd == proxyproto.PROXY {
		s, d := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst))
		h = proxyproto.HeaderProxyFromAddrs(2, s, d)
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With proxy_protocol, the client is the one the header names: the app
// sees it in X-Forwarded-For and the access log shows it, for each
// request of the connection. A LOCAL header (the load balancer's own
// check) leaves the load balancer as the peer, a trusted one. The
// header comes before TLS, and an HTTP/2 connection's streams are its
// client's as HTTP/1.1 keep-alive requests are.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		from   string
		prefix []byte
		fields string
		want   []string // X-Forwarded-For
		client string
	}{
		{"v1", "127.0.0.1", []byte("PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\n"), "X-Forwarded-For: 6.6.6.6\r\n",
			[]string{"203.0.113.7"}, "203.0.113.7"},
		{"v1 IPv6", "127.0.0.1", []byte("PROXY TCP6 2001:db8::7 ::1 5555 8080\r\n"), "", []string{"2001:db8::7"}, "2001:db8::7"},
		{"v2", "127.0.0.1", v2(t, proxyproto.PROXY, "203.0.113.8:5555", "127.0.0.1:8080"), "X-Forwarded-For: 6.6.6.6\r\n",
			[]string{"203.0.113.8"}, "203.0.113.8"},
		{"v2 IPv6", "127.0.0.1", v2(t, proxyproto.PROXY, "[2001:db8::8]:5555", "[2001:db8::1]:8080"), "",
			[]string{"2001:db8::8"}, "2001:db8::8"},
		{"v2 LOCAL", "127.0.0.1", v2(t, proxyproto.LOCAL, "", ""), "X-Forwarded-For: 203.0.113.9\r\n",
			[]string{"203.0.113.9, 127.0.0.1"}, "203.0.113.9"},
		{"v1 UNKNOWN", "127.0.0.1", []byte("PROXY UNKNOWN\r\n"), "", []string{"127.0.0.1"}, "127.0.0.1"},
		{"untrusted peer without a header", "127.0.0.2", nil, "X-Forwarded-For: 6.6.6.6\r\n", []string{"127.0.0.2"}, "127.0.0.2"},
	}
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		px := newProxied(t, proto, []string{"127.0.0.1/32"}, 5*time.Second)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c, dials := proxiedClient(t, proto, tt.from, tt.prefix)
				for j := range 2 { // the header comes once per connection; each request is its client's
					path := fmt.Sprintf("/pp/%d/%d", i, j)
					got := askProxied(t, c, protoURL(proto, px.addr), path, tt.fields)
					if diff := cmp.Diff(tt.want, got.XFF); diff != "" {
						t.Errorf("request %d: X-Forwarded-For the app saw (-want +got):\n%s", j+1, diff)
					}
					if got := px.accessClient(t, path); got != tt.client {
						t.Errorf("request %d: access log client %q, want %q", j+1, got, tt.client)
					}
				}
				if n := dials.Load(); n != 1 {
					t.Errorf("two requests took %d connections, want one: the front closed the connection after the first", n)
				}
			})
		}
	})
}

// A connection whose PROXY header is missing, refused or malformed is
// closed before anything of it is read as HTTP: no answer, nothing for
// the app, no goroutine left behind.
func TestProxyProtocolRefused(t *testing.T) {
	const plain = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
	v1 := "PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\n"
	good := v2(t, proxyproto.PROXY, "203.0.113.8:5555", "127.0.0.1:8080")
	tests := []struct {
		name    string
		from    string
		send    string
		silence bool // leave the write side open: the header timeout ends it
	}{
		{"trusted peer without a header", "127.0.0.1", plain, false},
		{"untrusted peer with a v1 header", "127.0.0.2", v1 + plain, false},
		{"untrusted peer with a v2 header", "127.0.0.2", string(good) + plain, false},
		{"truncated v1", "127.0.0.1", v1[:20], false},
		{"truncated v1, then silence", "127.0.0.1", v1[:20], true},
		{"truncated v2", "127.0.0.1", string(good[:20]), false},
		{"truncated v2 signature", "127.0.0.1", string(good[:8]), false},
		{"truncated v2, then silence", "127.0.0.1", string(good[:20]), true},
		{"oversized v1 line", "127.0.0.1", "PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n" + plain, false},
		{"v1 without CR", "127.0.0.1", strings.TrimSuffix(v1, "\r\n") + "\n" + plain, false},
		{"v1 bad address", "127.0.0.1", "PROXY TCP4 203.0.113 127.0.0.1 5555 8080\r\n" + plain, false},
		{"v1 IPv6 address as TCP4", "127.0.0.1", "PROXY TCP4 2001:db8::7 127.0.0.1 5555 8080\r\n" + plain, false},
		{"v1 port out of range", "127.0.0.1", "PROXY TCP4 203.0.113.7 127.0.0.1 99999 8080\r\n" + plain, false},
		{"v1 garbage", "127.0.0.1", "PROXY garbage\r\n" + plain, false},
		{"v2 bad version", "127.0.0.1", string(append(append([]byte(nil), good[:12]...), 0x31)) + string(good[13:]) + plain, false},
		{"v2 length past the data", "127.0.0.1", string(append(append([]byte(nil), good[:14]...), 0xff, 0xff)) + "x", false},
		{"v2 unix source", "127.0.0.1", string(append([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\xd8"), make([]byte, 216)...)) + plain, false},
		{"v2 udp source", "127.0.0.1", "\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c\xcb\x00\x71\x07\x7f\x00\x00\x01\x15\xb3\x1f\x90" + plain, false},
		{"garbage", "127.0.0.1", "\x00\x01\x02\x03 not http, not a header\r\n\r\n", false},
		{"nothing", "127.0.0.1", "", false},
	}
	// Serial: goleak sees every goroutine of the process.
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) }) // runs last, after the servers closed
	px := newProxied(t, "h1", []string{"127.0.0.1/32"}, 300*time.Millisecond)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialFrom(t, px.addr, tt.from)
			io.WriteString(c, tt.send)
			if !tt.silence {
				c.(*net.TCPConn).CloseWrite()
			}
			got, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the connection stays open (read %q)", got)
			}
			if len(got) > 0 {
				t.Errorf("answered %q", got)
			}
		})
	}
	// A good connection after them all is served: the listener goes on.
	c := dialFrom(t, px.addr, "127.0.0.1")
	if got := askRaw(t, c, bufio.NewReader(c), good, "/after", ""); !cmp.Equal(got.XFF, []string{"203.0.113.8"}) {
		t.Errorf("after the refusals: X-Forwarded-For %q", got.XFF)
	}
	c.Close()
	if n := px.requests.Load(); n != 1 {
		t.Errorf("the app got %d requests, want only the good one", n)
	}
}

// A client that connects and sends no header holds up no one else: the
// header is read on the connection's goroutine, not in the accept loop.
// Both kinds of peer are waited on for a header (a trusted one must send
// it; an untrusted one's first bytes are looked at to refuse one).
func TestProxyProtocolSilentClientDoesNotBlockAccept(t *testing.T) {
	t.Parallel()
	// A header timeout far past the client's patience below: were the
	// accept loop waiting on the silent clients, the request would
	// time out.
	px := newProxied(t, "h1", []string{"127.0.0.1/32"}, time.Minute)
	dialFrom(t, px.addr, "127.0.0.1")
	dialFrom(t, px.addr, "127.0.0.2")
	c := dialFrom(t, px.addr, "127.0.0.1")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	got := askRaw(t, c, bufio.NewReader(c), []byte("PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\n"), "/busy", "")
	if !cmp.Equal(got.XFF, []string{"203.0.113.7"}) {
		t.Errorf("X-Forwarded-For %q", got.XFF)
	}
	t.Logf("answered in %v beside two silent clients", time.Since(start).Round(time.Millisecond))
}

// BenchmarkProxyTrusted is BenchmarkProxy's hot path on the front from a
// trusted proxy: one that sends X-Forwarded-For (kept and appended to,
// and read for the client), and one that opens each connection with a
// PROXY header.
func BenchmarkProxyTrusted(b *testing.B) {
	for _, pp := range []bool{false, true} {
		name := "xff"
		if pp {
			name = "proxy_protocol"
		}
		b.Run(name, func(b *testing.B) {
			cfg := config.Default()
			cfg.TrustedProxies = []string{"127.0.0.1"}
			app := config.NewApp("web")
			app.Routes = config.PlainRoutes("/")
			cfg.Apps = map[string]*config.App{"web": app}
			cfg.Order = []string{"web"}
			p := pool.New("web", 1000)
			m := pool.NewMember("web-1", backend(b))
			p.Add(m)
			m.SetState(pool.Ready)
			b.Cleanup(func() { p.Remove(m) })
			gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			if pp {
				ln = trust.ProxyProtocolListener(ln, trust.New(cfg.TrustedPrefixes()), time.Second)
				tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if err == nil {
						_, err = io.WriteString(c, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\n")
					}
					return c, err
				}
			}
			f := front.New(gw, front.Options{})
			done := make(chan struct{})
			go func() { defer close(done); f.Serve(ln) }()
			b.Cleanup(func() { f.Close(); <-done })
			c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
			b.Cleanup(c.CloseIdleConnections)
			req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/x", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			do := func() {
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			do()
			b.ReportAllocs()
			for b.Loop() {
				do()
			}
		})
	}
}
