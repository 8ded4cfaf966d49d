// Package upstreamtlstest holds what the tests of TLS to external
// upstreams share: the upstream_tls: block as the config's validation
// leaves it, and upstreams on loopback whose handshakes go wrong.
//
// It lives apart from testutil because it imports config, whose own
// tests import testutil.
package upstreamtlstest

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Validated returns u as Validate leaves it for an external pool: its
// files read and parsed.
func Validated(t testing.TB, u config.UpstreamTLS) *config.UpstreamTLS {
	t.Helper()
	c := config.Default()
	app := config.NewApp("api")
	app.Upstreams = []string{"127.0.0.1:443"}
	app.UpstreamTLS = &u
	c.Apps, c.Order = map[string]*config.App{"api": app}, []string{"api"}
	if err := c.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return app.UpstreamTLS
}

// Stalled is an upstream that accepts a connection and never answers its
// handshake, until the test ends.
func Stalled(t testing.TB) string {
	t.Helper()
	return testutil.ServeRaw(t, func(c net.Conn) { io.Copy(io.Discard, c) })
}

// ClientCertRequired is an upstream on 127.0.0.1 with a certificate ca
// issued, serving h only to a client with a certificate of ca's.
func ClientCertRequired(t testing.TB, ca *testutil.CA, h http.Handler) string {
	t.Helper()
	return testutil.ServeHTTPS(t, &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}})},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
	}, h)
}
