package upstreamtls_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/upstreamtlstest"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fetch makes a TLS connection to addr with u's config, as the gateway
// does, and reads one answer over it: a TLS 1.3 server's verdict on a
// client certificate comes on the first read.
func fetch(t *testing.T, u *config.UpstreamTLS, addr string) (tls.ConnectionState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	tc, err := upstreamtls.Handshake(ctx, raw, addr, upstreamtls.Config(u, addr))
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer tc.Close()
	if _, err := tc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return tc.ConnectionState(), err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return tc.ConnectionState(), err
	}
	resp.Body.Close()
	return tc.ConnectionState(), nil
}

// plainHTTP is an upstream that speaks plain HTTP.
func plainHTTP(t *testing.T) string {
	s := httptest.NewServer(ok)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })

func TestHandshakeFailures(t *testing.T) {
	ca, other := testutil.NewCA(t, "Test CA"), testutil.NewCA(t, "Other CA")
	loopback := []string{"127.0.0.1"}
	serve := func(c tls.Certificate) string {
		return testutil.ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{c}}, ok)
	}
	expiredOn := time.Now().Add(-48 * time.Hour).UTC()
	validFrom := time.Now().Add(48 * time.Hour).UTC()
	client := ca.Issue(t, testutil.Leaf{Names: []string{"gatehouse"}, Client: true})
	certFile, keyFile := testutil.KeyPairFiles(t, client)
	strangerFile, strangerKey := testutil.KeyPairFiles(t, other.Issue(t, testutil.Leaf{Names: []string{"gatehouse"}, Client: true}))
	mtls := func() string {
		return testutil.ServeHTTPS(t, &tls.Config{
			Certificates: []tls.Certificate{ca.Issue(t, testutil.Leaf{Names: loopback})},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
		}, ok)
	}
	trust := config.UpstreamTLS{CAFile: ca.File(t)}
	tests := []struct {
		name   string
		addr   string
		u      config.UpstreamTLS
		kind   upstreamtls.Kind
		detail string
	}{
		{"valid", serve(ca.Issue(t, testutil.Leaf{Names: loopback})), trust, upstreamtls.None, ""},
		{"expired", serve(ca.Issue(t, testutil.Leaf{Names: loopback, NotBefore: expiredOn.Add(-time.Hour), NotAfter: expiredOn})), trust,
			upstreamtls.Expired, "certificate expired on " + expiredOn.Format(time.DateOnly)},
		{"not yet valid", serve(ca.Issue(t, testutil.Leaf{Names: loopback, NotBefore: validFrom, NotAfter: validFrom.Add(time.Hour)})), trust,
			upstreamtls.NotYetValid, "certificate not yet valid (valid from " + validFrom.Format(time.DateOnly) + ")"},
		{"wrong name", serve(ca.Issue(t, testutil.Leaf{Names: []string{"api.example", "10.9.9.9"}})), trust,
			upstreamtls.NameMismatch, "name mismatch (certificate is for api.example, 10.9.9.9, not 127.0.0.1)"},
		{"signed by another CA", serve(other.Issue(t, testutil.Leaf{Names: loopback})), trust,
			upstreamtls.UnknownAuthority, `unknown authority (certificate issued by "Other CA")`},
		{"a private CA without ca_file", serve(ca.Issue(t, testutil.Leaf{Names: loopback})), config.UpstreamTLS{},
			upstreamtls.UnknownAuthority, `unknown authority (certificate issued by "Test CA")`},
		{"client certificate required, none configured", mtls(), trust,
			upstreamtls.ClientCertRefused, "client certificate refused: certificate required (the upstream wants one, and none it accepts was sent)"},
		{"client certificate of a CA the upstream does not trust", mtls(), config.UpstreamTLS{CAFile: trust.CAFile, CertFile: strangerFile, KeyFile: strangerKey},
			upstreamtls.ClientCertRefused, "client certificate refused: certificate required (the upstream wants one, and none it accepts was sent)"},
		{"client certificate refused by the upstream's own check", testutil.ServeHTTPS(t, &tls.Config{
			Certificates: []tls.Certificate{ca.Issue(t, testutil.Leaf{Names: loopback})}, ClientAuth: tls.RequireAnyClientCert,
			VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return errors.New("not this one") },
		}, ok), config.UpstreamTLS{CAFile: trust.CAFile, CertFile: strangerFile, KeyFile: strangerKey},
			upstreamtls.ClientCertRefused, "client certificate refused: bad certificate"},
		{"client certificate presented", mtls(), config.UpstreamTLS{CAFile: trust.CAFile, CertFile: certFile, KeyFile: keyFile}, upstreamtls.None, ""},
		{"plain HTTP", plainHTTP(t), trust,
			upstreamtls.NotTLS, "not TLS (the upstream answered plain HTTP)"},
		{"closes at once", testutil.ServeRaw(t, func(c net.Conn) {
			c.Read(make([]byte, 64<<10)) // the ClientHello: unread, the close would be a reset
			c.Close()
		}), trust,
			upstreamtls.Failed, "handshake failed: the upstream closed the connection (is it TLS on that port?)"},
		{"only TLS 1.1", testutil.ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, testutil.Leaf{Names: loopback})}, MaxVersion: tls.VersionTLS11}, ok), trust,
			upstreamtls.Refused, "handshake failed: protocol version not supported"},
		{"insecure_skip_verify accepts an expired certificate", serve(ca.Issue(t, testutil.Leaf{Names: loopback, NotAfter: expiredOn})),
			config.UpstreamTLS{CAFile: trust.CAFile, InsecureSkipVerify: true}, upstreamtls.None, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fetch(t, upstreamtlstest.Validated(t, tc.u), tc.addr)
			if got := upstreamtls.Classify(err); got != tc.kind {
				t.Errorf("Classify(%v) = %d, want %d", err, got, tc.kind)
			}
			if tc.kind == upstreamtls.None {
				if err != nil {
					t.Errorf("fetch: %v, want none", err)
				}
				return
			}
			if got := upstreamtls.Describe(err); got != tc.detail {
				t.Errorf("Describe = %q, want %q (error %v)", got, tc.detail, err)
			}
			if got := upstreamtls.DetailKind("probe: " + upstreamtls.Describe(err)); got != tc.kind && !(tc.kind == upstreamtls.Refused && got == upstreamtls.Failed) {
				t.Errorf("DetailKind(%q) = %d, want %d", upstreamtls.Describe(err), got, tc.kind)
			}
		})
	}
}

// server_name is sent as SNI and verified; without it the upstream's host
// is, and ALPN offers http/1.1 alone (gatehouse speaks HTTP/1.1 to apps)
// even to a server that prefers h2.
func TestServerNameAndALPN(t *testing.T) {
	ca := testutil.NewCA(t, "Test CA")
	internal := ca.Issue(t, testutil.Leaf{Names: []string{"api.internal"}})
	hellos := make(chan *tls.ClientHelloInfo, 4)
	addr := testutil.ServeHTTPS(t, &tls.Config{
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			hellos <- h
			return &internal, nil
		},
	}, ok)
	tests := []struct {
		name      string
		u         config.UpstreamTLS
		wantSNI   string
		wantError upstreamtls.Kind
	}{
		{"server_name", config.UpstreamTLS{CAFile: ca.File(t), ServerName: "api.internal"}, "api.internal", upstreamtls.None},
		// An IP address is not sent as SNI, and is what is verified.
		{"the upstream's host", config.UpstreamTLS{CAFile: ca.File(t)}, "", upstreamtls.NameMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := fetch(t, upstreamtlstest.Validated(t, tc.u), addr)
			if got := upstreamtls.Classify(err); got != tc.wantError {
				t.Fatalf("Classify(%v) = %d, want %d", err, got, tc.wantError)
			}
			h := <-hellos
			if h.ServerName != tc.wantSNI {
				t.Errorf("the upstream saw SNI %q, want %q", h.ServerName, tc.wantSNI)
			}
			if diff := cmp.Diff([]string{"http/1.1"}, h.SupportedProtos); diff != "" {
				t.Errorf("ALPN offered (-want +got):\n%s", diff)
			}
			if !slices.Contains(h.SupportedVersions, tls.VersionTLS12) || slices.ContainsFunc(h.SupportedVersions, func(v uint16) bool { return v < tls.VersionTLS12 }) {
				t.Errorf("versions offered %x, want TLS 1.2 and later only", h.SupportedVersions)
			}
			if err == nil && cs.NegotiatedProtocol != "http/1.1" {
				t.Errorf("negotiated %q, want http/1.1", cs.NegotiatedProtocol)
			}
		})
	}
}

// With insecure_skip_verify the handshake accepts any certificate, and
// Verify still tells what is wrong with it, for the probe's detail.
func TestVerifyWhatInsecureAccepts(t *testing.T) {
	ca := testutil.NewCA(t, "Test CA")
	expiredOn := time.Now().Add(-24 * time.Hour)
	addr := testutil.ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{
		ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}, NotBefore: expiredOn.Add(-time.Hour), NotAfter: expiredOn}),
	}}, ok)
	u := upstreamtlstest.Validated(t, config.UpstreamTLS{CAFile: ca.File(t), InsecureSkipVerify: true})
	cs, err := fetch(t, u, addr)
	if err != nil {
		t.Fatalf("insecure_skip_verify: %v", err)
	}
	verr := upstreamtls.Verify(cs, u.Roots(), "127.0.0.1")
	if want := "certificate expired on " + expiredOn.UTC().Format(time.DateOnly); upstreamtls.Describe(verr) != want {
		t.Errorf("Verify: %q, want %q", upstreamtls.Describe(verr), want)
	}
	if err := upstreamtls.Verify(cs, u.Roots(), "other.example"); upstreamtls.Classify(err) != upstreamtls.Expired {
		t.Errorf("Verify for another name: %v; the expiry is found first, as crypto/tls finds it", err)
	}
}

// The gateway's classifier runs on every failed attempt: naming a TLS
// failure allocates nothing.
func TestClassifyAllocatesNothing(t *testing.T) {
	ca := testutil.NewCA(t, "Test CA")
	addr := testutil.ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{
		ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}, NotAfter: time.Now().Add(-time.Minute)}),
	}}, ok)
	_, expired := fetch(t, upstreamtlstest.Validated(t, config.UpstreamTLS{CAFile: ca.File(t)}), addr)
	for _, err := range []error{expired, &net.OpError{Op: "dial", Err: errors.New("refused")}} {
		if n := testing.AllocsPerRun(100, func() { upstreamtls.Classify(err) }); n != 0 {
			t.Errorf("Classify(%v): %v allocations", err, n)
		}
	}
	var he *upstreamtls.HandshakeError
	if !errors.As(expired, &he) || he.Addr != addr || !strings.HasPrefix(he.Error(), "TLS handshake with "+addr+" failed: certificate expired on ") {
		t.Errorf("handshake error %q (%T), want a *HandshakeError naming %s", expired, expired, addr)
	}
}
