package server_test

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// TestTLS12CipherSuitesModern: over TLS 1.2 the HTTPS listener offers
// only forward-secret AEAD suites (Mozilla's intermediate profile): a
// client that offers nothing but CBC-SHA1 suites is refused, one with
// AES-GCM or ChaCha20-Poly1305 is served. (TLS 1.3's suites are all AEAD.)
func TestTLS12CipherSuitesModern(t *testing.T) {
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
