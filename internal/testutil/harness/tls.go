package harness

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TLS gives cfg an HTTPS listener on loopback (HTTP/2 offered, the plain
// listener still serving rather than redirecting) with an ECDSA P-256
// certificate for 127.0.0.1 and localhost, issued by a CA made for the
// test; it returns the roots a client must trust.
func TLS(t testing.TB, cfg *config.Config) *x509.CertPool {
	t.Helper()
	ca := testutil.NewCA(t, "gatehouse test CA")
	certFile, keyFile := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1", "localhost"}}))
	cfg.TLS = config.NewTLS()
	cfg.TLS.Listen = "127.0.0.1:0"
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	cfg.TLS.RedirectHTTP = false
	return ca.Pool()
}

// H2Client returns a client that speaks HTTP/2 only, over TLS trusting
// roots, with a bounded timeout.
func H2Client(roots *x509.CertPool, timeout time.Duration) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	return &http.Client{Timeout: timeout, Transport: tr}
}
