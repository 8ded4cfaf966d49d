package server_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// The listeners: the public one behind a load balancer speaking the PROXY
// protocol, the admin one bounding what a client may hold, the HTTPS one
// offering only modern TLS 1.2 suites.

// With proxy_protocol, gatehouse's public listener reads the PROXY header
// of a trusted load balancer, and access.log names the client it gave.
func TestProxyProtocolListener(t *testing.T) {
	t.Parallel()
	var dataDir string
	g := serving(t, 1, func(cfg *config.Config, _ *config.App) {
		cfg.TrustedProxies = []string{"127.0.0.1"}
		cfg.ProxyProtocol = true
		dataDir = cfg.DataDir
	})

	c := dial(t, g.Srv.Addr())
	io.WriteString(c, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\nGET /?id=pp HTTP/1.1\r\nHost: a\r\nX-Request-Id: pp-1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var client string
	testutil.WaitFor(t, 5*time.Second, "the request in access.log", func() bool {
		b, _ := os.ReadFile(filepath.Join(dataDir, "access.log"))
		for line := range strings.Lines(string(b)) {
			var e struct {
				RequestID string `json:"request_id"`
				Client    string `json:"client"`
			}
			if json.Unmarshal([]byte(line), &e) == nil && e.RequestID == "pp-1" {
				client = e.Client
				return true
			}
		}
		return false
	})
	if client != "203.0.113.7" {
		t.Errorf("access.log client %q, want the PROXY header's 203.0.113.7", client)
	}

	// The load balancer's connection without a header is refused.
	c2 := dial(t, g.Srv.Addr())
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	// (Closed or reset: either way, not answered.)
	if b, err := io.ReadAll(c2); len(b) > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a trusted peer without a header got %q, %v; want the connection closed", b, err)
	}
}

// TestAdminConnectionsBounded: the admin listener holds a client no
// longer than the public one would: a head not finished within
// head_timeout, a connection idle after its answer past
// keepalive_timeout, a body stalled past body_timeout (a sign-in form
// posted by half) are each closed. Without it one unauthenticated client
// holds admin connections for ever.
func TestAdminConnectionsBounded(t *testing.T) {
	t.Parallel()
	const limit = time.Second
	cfg, _ := harness.FaultApp(t, 1)
	cfg.AdminToken = "s3cret-token-for-tests"
	cfg.Limits.HeadTimeout = config.Duration(limit)
	cfg.Limits.BodyTimeout = config.Duration(limit)
	cfg.Limits.KeepaliveTimeout = config.Duration(limit)
	for _, a := range cfg.Apps {
		a.Limits.BodyTimeout = config.Duration(limit)
	}
	g := harness.Start(t, cfg)
	addr := strings.TrimPrefix(g.AdminURL, "http://")

	cases := []struct {
		name string
		// send writes to the connection; it returns when the client
		// starts waiting.
		send func(t *testing.T, c net.Conn, br *bufio.Reader)
	}{
		{"head never finished", func(t *testing.T, c net.Conn, _ *bufio.Reader) {
			io.WriteString(c, "GET /api/status HTTP/1.1\r\nHost: x\r\n")
		}},
		{"idle after a 401", func(t *testing.T, c net.Conn, br *bufio.Reader) {
			io.WriteString(c, "GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (no token)", resp.StatusCode)
			}
		}},
		{"sign-in body stalled", func(t *testing.T, c net.Conn, _ *bufio.Reader) {
			io.WriteString(c, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=abc")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			tc.send(t, c, br)
			start := time.Now()
			c.SetReadDeadline(start.Add(limit + 4*time.Second))
			_, err = io.Copy(io.Discard, br)
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the admin connection is still open %v later; want it closed within about %v", took.Round(time.Millisecond), limit)
			}
			if took < limit*8/10 {
				t.Errorf("closed after %v; want no sooner than about %v", took, limit)
			}
		})
	}
}

// TestTLS12CipherSuitesModern: over TLS 1.2 the HTTPS listener offers
// only forward-secret AEAD suites (Mozilla's intermediate profile): a
// client that offers nothing but CBC-SHA1 suites is refused, one with
// AES-GCM or ChaCha20-Poly1305 is served. (TLS 1.3's suites are all AEAD.)
func TestTLS12CipherSuitesModern(t *testing.T) {
	t.Parallel()
	cfg, _ := harness.FaultApp(t, 1)
	roots := harness.TLS(t, cfg)
	g := harness.Start(t, cfg)
	addr := strings.TrimPrefix(g.SecureURL, "https://")
	dial := func(suites []uint16) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
			RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites,
		})
		if err == nil {
			c.Close()
		}
		return err
	}
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	}
	if err := dial(cbc); err == nil {
		t.Error("a TLS 1.2 client offering only CBC-SHA1 suites was served; want the handshake refused")
	}
	for _, s := range [][]uint16{
		{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
	} {
		if err := dial(s); err != nil {
			t.Errorf("a TLS 1.2 client offering %s: %v; want it served", tls.CipherSuiteName(s[0]), err)
		}
	}
}
