package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/acmetest"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

const acmeHost = "app.gatehouse.test"

// curlH2 is the curl binary, which must speak HTTP/2 (.ci/run installs
// it).
func curlH2(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil || !strings.Contains(string(out), "HTTP2") {
		t.Fatalf("curl lacks HTTP/2: %s %v", out, err)
	}
	return path
}

// With only an ACME directory (a real Pebble on loopback) and a host name
// in the config, curl --http2 reaches the app through a certificate
// gatehouse obtained itself; the plain listener redirects; a restart
// reuses the stored certificate (no new order); a short-lived certificate
// is renewed under load with no failed request.
func TestACMEEndToEnd(t *testing.T) {
	testutil.SkipInShort(t) // runs curl
	t.Parallel()
	curl := curlH2(t)
	// Pebble must know gatehouse's ports before gatehouse's config can
	// name Pebble.
	httpPort, tlsPort := testutil.FreePort(t), testutil.FreePort(t)
	pebble := acmetest.StartPebble(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort, Validity: 40 * time.Second})
	rootsFile := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(rootsFile, pebble.RootsPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := harness.FaultApp(t, 2)
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", httpPort)
	cfg.TLS = config.NewTLS()
	cfg.TLS.Listen = fmt.Sprintf("127.0.0.1:%d", tlsPort)
	cfg.TLS.ACME = config.NewACME()
	cfg.TLS.ACME.Domains = []string{acmeHost}
	cfg.TLS.ACME.Directory = pebble.Directory
	cfg.TLS.ACME.CARoots = pebble.DirectoryRootsFile
	// A 40 s certificate, due for renewal 20 s after it is issued: after
	// the restart below, under the test's load.
	cfg.TLS.ACME.RenewBefore = "50%"
	opts := server.Options{CertRenewCheck: 500 * time.Millisecond, CertIgnoreARI: true}
	url := fmt.Sprintf("https://%s:%d/", acmeHost, tlsPort)
	resolve := fmt.Sprintf("%s:%d:127.0.0.1", acmeHost, tlsPort)

	g := harness.StartWith(t, cfg, opts)
	waitEvent(t, g, 60*time.Second, telemetry.EventCertObtained, "", nil)
	g.WaitReady(t, "web", 2, 20*time.Second)
	out, err := exec.Command(curl, "-sS", "--http2", "--cacert", rootsFile, "--resolve", resolve,
		"-w", "\n%{http_version} %{http_code}", url).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "\n2 200") {
		t.Fatalf("curl --http2 %s: %v\n%s", url, err, out)
	}
	out, _ = exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
		fmt.Sprintf("http://%s:%d/a?b=c", acmeHost, httpPort), "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", acmeHost, httpPort)).Output()
	if want := fmt.Sprintf("308 https://%s:%d/a?b=c", acmeHost, tlsPort); string(out) != want {
		t.Errorf("plain listener: %q, want %q", out, want)
	}
	first := leafOf(t, tlsPort, pebble.Roots())
	g.Stop(t)

	// A restart finds the certificate in data_dir: served at once, no
	// order sent.
	orders := pebble.Orders()
	g = harness.StartWith(t, cfg, opts)
	g.WaitReady(t, "web", 2, 20*time.Second)
	if again := leafOf(t, tlsPort, pebble.Roots()); again.SerialNumber.Cmp(first.SerialNumber) != 0 || pebble.Orders() != orders {
		t.Errorf("after a restart the served certificate is %x (was %x), and %d new orders were sent; want the stored one, no order",
			again.SerialNumber, first.SerialNumber, pebble.Orders()-orders)
	}
	if len(g.Events(telemetry.EventCertObtained)) > 0 {
		t.Errorf("a restart obtained a new certificate; the stored one should be reused")
	}

	// Renewal under load: new verified connections and kept-alive HTTP/2
	// ones, until a renewed certificate is served.
	before := leafOf(t, tlsPort, pebble.Roots())
	l := startLoad(t, 4, func(w int) *http.Client { return loadClient(pebble.Roots(), tlsPort, w%2 == 0) },
		func(c *http.Client, _, _ int) error { return getOK(c, url) })
	testutil.WaitFor(t, 45*time.Second, fmt.Sprintf("the certificate (until %s) to be renewed", before.NotAfter), func() bool {
		return leafOf(t, tlsPort, pebble.Roots()).SerialNumber.Cmp(before.SerialNumber) != 0
	})
	l.waitMore(t, 40, "after the swap") // load across the swap, not just up to it
	l.end()
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during the renewal; last: %v", n, l.sent.Load(), l.last())
	}
	t.Logf("%d requests during the renewal, 0 failed", l.sent.Load())
}

// leafOf is the certificate the HTTPS listener serves for acmeHost,
// verified against roots.
func leafOf(t *testing.T, port int, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{ServerName: acmeHost, RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// loadClient dials acmeHost at the loopback port; fresh makes every
// request a new connection (a new handshake), else HTTP/2 is kept alive.
func loadClient(roots *x509.CertPool, port int, fresh bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: !fresh,
		DisableKeepAlives: fresh,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func getOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s (%s)", resp.Status, resp.Header.Get("Gatehouse-Cause"))
	}
	return nil
}
