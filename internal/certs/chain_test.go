package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// intermediateURL is where the test intermediate's certificate would be
// published (Authority Information Access); nothing is fetched from it.
const intermediateURL = "http://ca.gatehouse.test/intermediate.der"

// pki is a root, an intermediate it issued, and certificates for
// siteName, as a public CA's hierarchy.
type pki struct {
	root, inter *testCA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	root := newTestCA(t)
	return &pki{root: root, inter: root.intermediate(t, "gatehouse test intermediate")}
}

// intermediate issues a CA certificate under ca.
func (ca *testCA) intermediate(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nextSerial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(nextSerial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pool: ca.pool}
}

// leaf is a certificate for siteName and its key, in PEM. issuer nil
// makes it self-signed; aia names where its issuer's certificate is
// published.
func leaf(t *testing.T, issuer *testCA, aia bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nextSerial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(nextSerial), Subject: pkix.Name{CommonName: siteName}, DNSNames: []string{siteName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if aia {
		tmpl.IssuingCertificateURL = []string{intermediateURL}
	}
	parent, signer := tmpl, any(key)
	if issuer != nil {
		parent, signer = issuer.cert, issuer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemCert(der), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// A cert_file that holds its certificate without the intermediate that
// issued it is loaded and served, but reported: an event naming the file
// and the missing issuer, and a diagnose warning saying to serve the full
// chain. A full chain, a self-signed certificate and a private CA's
// certificate issued by its root are not reported.
func TestFilesChainCheckedAtLoad(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name  string
		chain func() (certPEM, keyPEM []byte)
		want  bool
	}{
		{"the intermediate cut off", func() ([]byte, []byte) { return leaf(t, p.inter, true) }, true},
		{"the full chain", func() ([]byte, []byte) {
			c, k := leaf(t, p.inter, true)
			return append(c, pemCert(p.inter.cert.Raw)...), k
		}, false},
		{"the full chain and the root", func() ([]byte, []byte) {
			c, k := leaf(t, p.inter, true)
			return append(append(c, pemCert(p.inter.cert.Raw)...), pemCert(p.root.cert.Raw)...), k
		}, false},
		{"the root instead of the intermediate", func() ([]byte, []byte) {
			c, k := leaf(t, p.inter, true)
			return append(c, pemCert(p.root.cert.Raw)...), k
		}, true},
		{"self-signed", func() ([]byte, []byte) { return leaf(t, nil, false) }, false},
		{"a private CA's, issued by its root", func() ([]byte, []byte) { return leaf(t, p.root, false) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := config.NewTLS()
			cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key")
			certPEM, keyPEM := tt.chain()
			if err := os.WriteFile(cfg.CertFile, certPEM, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.KeyFile, keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			ev := telemetry.NewEvents(nil, 0)
			m, err := certs.New(cfg, certs.Options{Events: ev})
			if err != nil {
				t.Fatalf("New refused the pair: %v", err)
			}
			if st := m.Status(); len(st) != 1 || st[0].Serial == "" {
				t.Errorf("Status() = %+v; want the certificate loaded", st)
			}
			es := eventsOf(ev, telemetry.EventCertChainIncomplete)
			f := finding(t, ev, "certificate_chain_incomplete")
			if !tt.want {
				if len(es) > 0 || f != nil {
					t.Errorf("reported: events %v, finding %+v; want nothing", es, f)
				}
				return
			}
			if len(es) != 1 {
				t.Fatalf("cert_chain_incomplete events: %v; want 1", es)
			}
			for _, w := range []string{cfg.CertFile, `"gatehouse test intermediate"`, intermediateURL} {
				if !strings.Contains(es[0].Detail, w) || es[0].Value != siteName {
					t.Errorf("cert_chain_incomplete = %+v; want it for %s, naming %s", es[0], siteName, w)
				}
			}
			if f == nil || f.Severity != diagnose.Warning || !strings.Contains(f.Fix, "full chain") ||
				!strings.Contains(strings.Join(f.Evidence, "\n"), cfg.CertFile) {
				t.Errorf("diagnose: %+v; want a warning naming %s and saying to serve the full chain", f, cfg.CertFile)
			}
		})
	}
}

// Files replaced by ones without the intermediate are served (the
// reload is not refused) and reported after cert_reloaded; putting the
// full chain back clears diagnose's warning.
func TestFilesChainCheckedAtReload(t *testing.T) {
	p := newPKI(t)
	s, _ := newFileSetup(t, time.Now().Add(24*time.Hour))
	write := func(full bool) *big.Int {
		t.Helper()
		c, k := leaf(t, p.inter, true)
		block, _ := pem.Decode(c)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if full {
			c = append(c, pemCert(p.inter.cert.Raw)...)
		}
		if err := os.WriteFile(s.certFile, c, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.keyFile, k, 0o600); err != nil {
			t.Fatal(err)
		}
		return cert.SerialNumber
	}
	s.ca = p.root // handshakes verify against the hierarchy's root
	write(true)
	ev := telemetry.NewEvents(nil, 0)
	m := s.manager(t, ev, certs.Options{FileCheckInterval: time.Hour})
	run(t, m)

	cut := write(false)
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload of a certificate without its intermediate: %v; want it loaded", err)
	}
	if got := m.Status()[0].Serial; got != cut.Text(16) {
		t.Errorf("serving serial %s, want the reloaded %x", got, cut)
	}
	var types []string
	for _, e := range ev.Since(time.Time{}) {
		if e.Type != telemetry.EventCertExpiring { // a day-long test certificate is always about to expire
			types = append(types, e.Type)
		}
	}
	if strings.Join(types, " ") != "cert_reloaded cert_chain_incomplete" {
		t.Errorf("events %v; want cert_reloaded, then cert_chain_incomplete", types)
	}
	if f := finding(t, ev, "certificate_chain_incomplete"); f == nil {
		t.Error("diagnose has no certificate_chain_incomplete finding")
	}

	full := write(true)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	s.waitSerial(t, full, time.Second)
	if f := finding(t, ev, "certificate_chain_incomplete"); f != nil {
		t.Errorf("diagnose still reports the chain after the full chain was put back: %+v", f)
	}
}
