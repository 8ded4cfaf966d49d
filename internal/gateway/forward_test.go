package gateway_test

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// echoServer is an external upstream: it answers /healthz and echoes
// request bodies, naming itself in X-Instance.
func echoServer(t testing.TB, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Instance", name)
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// startFor starts cfg for clients speaking proto (one of
// frontProtocols): over h2 gatehouse gets an HTTPS listener, which the
// clients of newClientFor use; over h2c its plain listener takes HTTP/2
// with prior knowledge.
func startFor(t testing.TB, proto string, cfg *config.Config) *harness.Gatehouse {
	t.Helper()
	var roots *x509.CertPool
	switch proto {
	case "h2":
		roots = harness.TLS(t, cfg)
	case "h2c":
		cfg.H2C = true
	}
	g := harness.Start(t, cfg)
	g.H2Roots = roots
	return g
}

// startFaultFor is startFault for clients speaking proto (see startFor).
func startFaultFor(t testing.TB, proto string, n int, adjust func(*config.App), args ...string) *harness.Gatehouse {
	t.Helper()
	cfg, app := harness.FaultApp(t, n, args...)
	if adjust != nil {
		adjust(app)
	}
	g := startFor(t, proto, cfg)
	waitReady(t, g, n)
	return g
}

// newClientFor is newClient speaking proto to g, started by startFor:
// over h2c, HTTP/2 with prior knowledge (and nothing else) to g.URL.
func newClientFor(t testing.TB, g *harness.Gatehouse, proto string, timeout time.Duration) *client {
	c := newClient(t, g, timeout)
	if proto == "h2c" {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		t.Cleanup(tr.CloseIdleConnections)
		c.http = &http.Client{Transport: tr, Timeout: timeout}
	}
	return c
}

// One member's port goes dead while the supervisor still believes it
// ready: requests to it are connect_refused and retried on the other
// member, POSTs included, and the dead member is ejected. Serial: the
// dead port must stay dead, and a test running beside it could be given
// that port for a listener of its own.
func TestConnectRefusedRetried(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		good, bad := echoServer(t, "good"), echoServer(t, "bad")
		cfg, app := harness.FaultApp(t, 1)
		app.Command = nil
		app.Upstreams = []string{strings.TrimPrefix(good.URL, "http://"), strings.TrimPrefix(bad.URL, "http://")}
		app.Health.Interval = config.Duration(5 * time.Second) // the dead port stays "ready" meanwhile
		g := startFor(t, proto, cfg)
		waitReady(t, g, 2)
		bad.CloseClientConnections()
		bad.Listener.Close() // nothing listens on its port any more

		c := newClientFor(t, g, proto, 10*time.Second)
		refused := 0
		for i := 0; i < 10 && refused == 0; i++ {
			body := strings.Repeat("p", 100)
			r := c.do(req{method: "POST", path: "/echo", body: body})
			if r.status != 200 || r.body != body || r.header.Get("X-Instance") != "good" {
				t.Errorf("%v; want 200 from the live upstream", r)
				continue
			}
			if e, ok := accessFor(t, g, r.id); ok {
				for _, rc := range e.RetriedCauses {
					if rc == "connect_refused" {
						refused++
						if e.Attempts != 2 {
							t.Errorf("access entry: %d attempts after connect_refused, want 2", e.Attempts)
						}
					}
				}
			}
		}
		if refused == 0 {
			t.Errorf("no request met the dead port; nothing was tested")
		}
		for _, m := range g.Srv.Supervisor().App("web").Pool().Members() {
			if m.Addr == strings.TrimPrefix(bad.URL, "http://") && !m.Ejected() && m.Routable() {
				t.Errorf("dead member %s still routable after connect_refused", m.ID)
			}
		}
		checkCauses(t, g, c.all())
	})
}

// A body larger than retry_body_limit streams through intact, with and
// without a declared length.
func TestLargeBodyStreamed(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		g := startFaultFor(t, proto, 2, func(a *config.App) { a.RetryBodyLimit = 4 << 10 })
		c := newClientFor(t, g, proto, 20*time.Second)
		big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
		r := c.do(req{method: "POST", path: "/echo", body: big})
		if r.status != 200 || r.body != big {
			t.Errorf("POST of %d bytes (declared length): status %d, %d bytes echoed", len(big), r.status, len(r.body))
		}
		// Unknown length: the gateway reads past the limit before it knows.
		r = c.do(req{method: "POST", path: "/echo", bodyReader: io.MultiReader(strings.NewReader(big[:1000]), strings.NewReader(big[1000:]))})
		if r.status != 200 || r.body != big {
			t.Errorf("POST of %d bytes (undeclared length): status %d, %d bytes echoed", len(big), r.status, len(r.body))
		}
		// And a small one, kept for replay.
		r = c.do(req{method: "PUT", path: "/echo", body: "small"})
		if r.status != 200 || r.body != "small" || r.header.Get("X-Method") != "PUT" {
			t.Errorf("%v; want the small body echoed", r)
		}
		checkCauses(t, g, c.all())
	})
}

// X-Request-Id is kept from the client or made, and reaches the app with
// X-Forwarded-For, -Proto (https over TLS) and -Host.
func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		g := startFaultFor(t, proto, 1, nil)
		c := newClientFor(t, g, proto, 10*time.Second)

		headers := func(r result) http.Header {
			t.Helper()
			var h http.Header
			if err := json.Unmarshal([]byte(r.body), &h); err != nil {
				t.Fatalf("%v: %v", r, err)
			}
			return h
		}
		r := c.do(req{path: "/headers", header: map[string]string{"X-Request-Id": "client-id-42"}, noID: true})
		h := headers(r)
		if h.Get("X-Request-Id") != "client-id-42" || r.header.Get("X-Request-Id") != "client-id-42" {
			t.Errorf("client X-Request-Id: app saw %q, response has %q; want client-id-42 kept", h.Get("X-Request-Id"), r.header.Get("X-Request-Id"))
		}
		if e, ok := accessFor(t, g, "client-id-42"); !ok || e.Status != 200 {
			t.Errorf("access entry for the client's id: %+v %v", e, ok)
		}

		r = c.do(req{path: "/headers", noID: true})
		h = headers(r)
		id := h.Get("X-Request-Id")
		if id == "" || r.header.Get("X-Request-Id") != id {
			t.Errorf("generated X-Request-Id: app saw %q, response has %q; want one, the same", id, r.header.Get("X-Request-Id"))
		}
		if _, ok := accessFor(t, g, id); id != "" && !ok {
			t.Errorf("no access entry with the generated id %q", id)
		}
		r2 := c.do(req{path: "/headers", noID: true})
		if id2 := headers(r2).Get("X-Request-Id"); id2 == id {
			t.Errorf("two requests were given the same id %q", id)
		}

		hr, _ := http.NewRequest("GET", c.base+"/headers", nil)
		hr.Host = "shop.example.test"
		resp, err := c.http.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		if ip := h.Get("X-Forwarded-For"); net.ParseIP(ip) == nil || !net.ParseIP(ip).IsLoopback() {
			t.Errorf("X-Forwarded-For %q; want the loopback client address", ip)
		}
		scheme := "http"
		if proto == "h2" {
			scheme = "https"
		}
		if h.Get("X-Forwarded-Proto") != scheme {
			t.Errorf("X-Forwarded-Proto %q; want %s", h.Get("X-Forwarded-Proto"), scheme)
		}
		if h.Get("X-Forwarded-Host") != "shop.example.test" || h.Get("Host") != "shop.example.test" {
			t.Errorf("X-Forwarded-Host %q, Host %q; want shop.example.test for both", h.Get("X-Forwarded-Host"), h.Get("Host"))
		}
		checkCauses(t, g, c.all())
	})
}
