package upstreamtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Config returns the client config for the upstream at addr (host:port)
// under u: the roots of u's ca_file (else the system's), its client
// certificate, TLS 1.2 or later, ALPN http/1.1, and as server name u's
// server_name or else addr's host (sent as SNI unless an IP address, and
// verified against the certificate). Each call builds a new config: the
// caller keeps one per upstream.
func Config(u *config.UpstreamTLS, addr string) *tls.Config {
	c := &tls.Config{
		RootCAs:            u.Roots(),
		ServerName:         u.ServerName,
		InsecureSkipVerify: u.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
	}
	if c.ServerName == "" {
		c.ServerName = addr
		if host, _, err := net.SplitHostPort(addr); err == nil {
			c.ServerName = host
		}
	}
	if cc := u.ClientCertificate(); cc != nil {
		c.Certificates = []tls.Certificate{*cc}
	}
	return c
}

// HandshakeError is a TLS handshake with an upstream that failed: the
// request was never sent on that connection. Err says why (see Classify).
type HandshakeError struct {
	Addr string
	Err  error
}

func (e *HandshakeError) Error() string {
	return "TLS handshake with " + e.Addr + " failed: " + Describe(e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Handshake runs the client handshake over raw, a fresh connection to
// addr, within ctx and raw's deadline. On failure raw is closed and the
// error is a *HandshakeError.
func Handshake(ctx context.Context, raw net.Conn, addr string, c *tls.Config) (*tls.Conn, error) {
	tc := tls.Client(raw, c)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &HandshakeError{Addr: addr, Err: err}
	}
	return tc, nil
}

// Verify checks the certificate a connection was offered for name as the
// handshake would have, for a config with InsecureSkipVerify: a probe
// still reports what is wrong with a certificate that the gateway accepts.
func Verify(cs tls.ConnectionState, roots *x509.CertPool, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}
