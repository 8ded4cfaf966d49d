package gateway_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// httpsUpstream is an external HTTPS upstream whose certificate the test
// can change; it names itself in X-Instance and records the SNI and the
// client certificate of each request. Session tickets are off, so that
// every new connection verifies the certificate served now.
type httpsUpstream struct {
	addr   string
	cert   atomic.Pointer[tls.Certificate]
	sni    atomic.Value // string
	client atomic.Value // string: the client certificate's common name
}

func newHTTPSUpstream(t *testing.T, name string, cert tls.Certificate, tweak func(*tls.Config)) *httpsUpstream {
	u := &httpsUpstream{}
	u.cert.Store(&cert)
	cfg := &tls.Config{
		SessionTicketsDisabled: true,
		GetCertificate:         func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return u.cert.Load(), nil },
	}
	if tweak != nil {
		tweak(cfg)
	}
	u.addr = testutil.ServeHTTPS(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.sni.Store(r.TLS.ServerName)
		if len(r.TLS.PeerCertificates) > 0 {
			u.client.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		w.Header().Set("X-Instance", name)
		w.Write([]byte(name))
	}))
	return u
}

// instance returns the status of the member at upstream addr.
func instance(g *harness.Gatehouse, addr string) supervisor.InstanceStatus {
	for _, in := range g.Instances("web") {
		if in.Upstream == addr {
			return in
		}
	}
	return supervisor.InstanceStatus{}
}

// Of an external pool of two HTTPS upstreams, one starts serving an
// expired certificate. Requests that meet it fail their handshake, before
// anything was sent, and are retried on the other: none fails. The expired
// one is shown unhealthy with the probe's detail "certificate expired",
// and diagnose names it.
func TestUpstreamTLSExpiredCertificate(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	loopback := testutil.Leaf{Names: []string{"127.0.0.1"}}
	good := newHTTPSUpstream(t, "good", ca.Issue(t, loopback), nil)
	bad := newHTTPSUpstream(t, "bad", ca.Issue(t, loopback), nil)
	cfg, app := harness.FaultApp(t, 1)
	app.Command = nil
	app.Upstreams = []string{good.addr, bad.addr}
	app.UpstreamTLS = &config.UpstreamTLS{CAFile: ca.File(t)}
	app.Health.Interval = config.Duration(time.Minute) // the switch is met by requests first
	app.Health.UnhealthyThreshold = 1
	app.UpstreamIdleTimeout = config.Duration(50 * time.Millisecond)
	since := time.Now().Add(-time.Second)
	g := harness.Start(t, cfg)
	waitReady(t, g, 2)
	c := newClient(t, g, 10*time.Second)
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		r := c.get("/")
		if r.status != 200 {
			t.Fatalf("before the switch: %v", r)
		}
		seen[r.body] = true
	}
	if !seen["good"] || !seen["bad"] {
		t.Fatalf("both upstreams serve over TLS before the switch: answers from %v", seen)
	}

	expiredOn := time.Now().Add(-24 * time.Hour).UTC()
	expired := ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}, NotBefore: expiredOn.Add(-time.Hour), NotAfter: expiredOn})
	bad.cert.Store(&expired)
	time.Sleep(150 * time.Millisecond) // pooled connections to bad expire: the next ones shake hands anew

	retried := 0
	for i := 0; i < 20; i++ {
		method := []string{"GET", "POST"}[i%2] // a handshake failure is retried whatever the method
		r := c.do(req{method: method, path: "/", body: "x"})
		if r.status != 200 || r.body != "good" {
			t.Errorf("after the switch: %v, want 200 from good", r)
			continue
		}
		if e, ok := accessFor(t, g, r.id); ok && slices.Contains(e.RetriedCauses, "upstream_tls") {
			retried++
			if e.Attempts != 2 || e.Cause != "" {
				t.Errorf("access entry after upstream_tls: %d attempts, cause %q; want 2 and none", e.Attempts, e.Cause)
			}
		}
	}
	if retried == 0 {
		t.Errorf("no request met the expired certificate; nothing was tested")
	}
	checkCauses(t, g, c.all())

	want := "certificate expired on " + expiredOn.Format(time.DateOnly)
	testutil.WaitFor(t, 10*time.Second, "the expired upstream shown unhealthy", func() bool {
		in := instance(g, bad.addr)
		return in.State == "unhealthy" && in.Health == want
	})
	if in := instance(g, good.addr); in.State != "ready" {
		t.Errorf("the good upstream: %s %q", in.State, in.Health)
	}

	rep, err := g.Srv.Diagnose(since)
	if err != nil {
		t.Fatal(err)
	}
	badID := instance(g, bad.addr).ID
	if len(rep.Findings) == 0 {
		t.Fatal("diagnose found nothing")
	}
	f := rep.Findings[0]
	if f.ID != "upstream_tls" || f.Instance != badID || !strings.Contains(f.Title, bad.addr) || !strings.Contains(f.Title, want) ||
		!strings.Contains(f.Fix, "renew") || f.RequestsAffected != retried {
		t.Errorf("first finding: %+v\nwant upstream_tls for %s (%s) naming %q, a fix that renews, %d requests affected", f, badID, bad.addr, want, retried)
	}
}

// The gateway sends server_name as SNI and offers the client certificate
// to an upstream that requires one; a single upstream whose certificate
// fails leaves requests with an answer that says why.
func TestUpstreamTLSServerNameAndClientCertificate(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	up := newHTTPSUpstream(t, "api", ca.Issue(t, testutil.Leaf{Names: []string{"api.internal"}}), func(c *tls.Config) {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool()
	})
	certFile, keyFile := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"gatehouse-edge"}, Client: true}))
	cfg, app := harness.FaultApp(t, 1)
	app.Command = nil
	app.Upstreams = []string{up.addr}
	app.UpstreamTLS = &config.UpstreamTLS{CAFile: ca.File(t), ServerName: "api.internal", CertFile: certFile, KeyFile: keyFile}
	g := harness.Start(t, cfg)
	waitReady(t, g, 1)
	c := newClient(t, g, 10*time.Second)
	if r := c.get("/"); r.status != 200 || r.body != "api" {
		t.Fatalf("GET / = %v", r)
	}
	if sni, cn := up.sni.Load(), up.client.Load(); sni != "api.internal" || cn != "gatehouse-edge" {
		t.Errorf("the upstream saw SNI %v and client certificate %v; want api.internal and gatehouse-edge", sni, cn)
	}
	if h := instance(g, up.addr).Health; !strings.HasPrefix(h, "200 OK in ") {
		t.Errorf("probe detail %q, want 200 OK over TLS", h)
	}
}

// An upstream that is not ready because its certificate fails: the 503
// that a request gets after hold_timeout says so. (Written https://, the
// upstream is its address with the app's upstream_tls:.)
func TestUpstreamTLSNoReadyInstanceSaysWhy(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	up := newHTTPSUpstream(t, "api", testutil.NewCA(t, "Other CA").Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}}), nil)
	cfg, app := harness.FaultApp(t, 1)
	app.Command = nil
	app.Upstreams = []string{"https://" + up.addr}
	app.UpstreamTLS = &config.UpstreamTLS{CAFile: ca.File(t)}
	app.HoldTimeout = config.Duration(300 * time.Millisecond)
	g := harness.Start(t, cfg)
	testutil.WaitFor(t, 10*time.Second, "the upstream probed", func() bool {
		return strings.HasPrefix(instance(g, up.addr).Health, "unknown authority")
	})
	c := newClient(t, g, 10*time.Second)
	r := c.get("/")
	if r.status != 503 || r.cause != "no_ready_instance" || !strings.Contains(r.body, "unknown authority") {
		t.Errorf("GET / = %v; want 503 no_ready_instance saying the probe found an unknown authority", r)
	}
	checkCauses(t, g, c.all())
}

// A reload re-reads upstream_tls: and its files, and the connections made
// after it use them: pooled ones made before are not reused.
func TestUpstreamTLSReload(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	up := newHTTPSUpstream(t, "api", ca.Issue(t, testutil.Leaf{Names: []string{"a.internal", "b.internal"}}), nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	write := func(serverName string) {
		t.Helper()
		yaml := fmt.Sprintf("listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\ndata_dir: data\napps:\n  web:\n    upstreams: [%q]\n"+
			"    upstream_tls: {ca_file: %q, server_name: %s}\n    upstream_idle_timeout: 1m\n", up.addr, ca.File(t), serverName)
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.internal")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, cfg)
	waitReady(t, g, 1)
	c := newClient(t, g, 10*time.Second)
	if r := c.get("/"); r.status != 200 || up.sni.Load() != "a.internal" {
		t.Fatalf("before the reload: %v with SNI %v", r, up.sni.Load())
	}
	write("b.internal")
	if err := g.Srv.Reload(context.Background(), "web", func(string, ...any) {}); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if r := c.get("/"); r.status != 200 || up.sni.Load() != "b.internal" {
		t.Errorf("after the reload: %v with SNI %v, want b.internal on a new connection", r, up.sni.Load())
	}
}
