package gateway_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/trust"
)

// TestProxyUnknownTrustsNoClientField: a trusted load balancer that
// sends "PROXY UNKNOWN" says it does not know the client. The connection
// is served with the balancer as its peer, but what the client wrote in
// X-Forwarded-For, -Proto and -Host is not taken as the balancer's word:
// the app gets gatehouse's own, and the access log's client is the
// balancer, on the plain listener and on the TLS one alike. (A LOCAL
// header, the balancer's own health check, keeps it a trusted peer: that
// is the balancer speaking.)
func TestProxyUnknownTrustsNoClientField(t *testing.T) {
	t.Parallel()
	for _, overTLS := range []bool{false, true} {
		name := "plain"
		if overTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			proxyUnknownTrustsNoClientField(t, overTLS)
		})
	}
}

func proxyUnknownTrustsNoClientField(t *testing.T, overTLS bool) {
	app := newNetApp(t, nil)
	cfg := config.Default()
	cfg.TrustedProxies = []string{"127.0.0.1/32"}
	cfg.ProxyProtocol = true
	ac := config.NewApp("web")
	ac.Routes = config.PlainRoutes("/")
	cfg.Apps = map[string]*config.App{"web": ac}
	cfg.Order = []string{"web"}
	p := pool.New("web", 100)
	m := pool.NewMember("web-1", app.addr)
	p.Add(m)
	m.SetState(pool.Ready)
	t.Cleanup(func() { p.Remove(m) })
	d := &direct{m: m}
	gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{Observe: d.observe})
	d.serving = &servingCount{h: gw}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts front.Options
	var cli *tls.Config
	proto := "http"
	if overTLS {
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.StartTLS()
		t.Cleanup(srv.Close)
		opts.TLS = &tls.Config{Certificates: srv.TLS.Certificates, NextProtos: []string{"http/1.1"}}
		cli = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		cli.ServerName = "example.com" // what httptest's certificate is for
		proto = "https"
	}
	f := front.New(d.serving, opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Serve(trust.ProxyProtocolListener(ln, trust.New(cfg.TrustedPrefixes()), 5*time.Second))
	}()
	t.Cleanup(func() { f.Close(); <-done })

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "PROXY UNKNOWN\r\n")
	var c net.Conn = raw
	if overTLS {
		c = tls.Client(raw, cli)
	}
	io.WriteString(c, "GET /u HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, cause %q", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
	}
	seen := app.settle(d)
	if len(seen) != 1 {
		t.Fatalf("the app got %d requests, want 1", len(seen))
	}
	h := seen[0].Header
	for k, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": proto, "X-Forwarded-Host": "app.example"} {
		if got := h.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("the app got %s %q, want gatehouse's own %q: the client is unknown, its fields are not the balancer's word", k, got, want)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.entries) != 1 || d.entries[0].Client != "127.0.0.1" {
		t.Errorf("access entries %+v; want one, whose client is the balancer 127.0.0.1", d.entries)
	}
}
