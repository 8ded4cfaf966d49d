package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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

// testCA issues ECDSA P-256 certificates, as an operator's CA would.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

var nextSerial = time.Now().UnixNano()

// issue returns a certificate for name valid until notAfter, and its key,
// in PEM.
func (ca *testCA) issue(t *testing.T, name string, notAfter time.Time) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nextSerial++
	serial = big.NewInt(nextSerial)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), serial
}

// fileSetup is a certificate pair on disk and its config.
type fileSetup struct {
	ca                *testCA
	edge              *edge
	cfg               *config.TLS
	certFile, keyFile string
}

const siteName = "site.gatehouse.test"

func newFileSetup(t *testing.T, notAfter time.Time) (*fileSetup, *big.Int) {
	t.Helper()
	dir := t.TempDir()
	s := &fileSetup{ca: newTestCA(t), edge: startEdge(t), certFile: filepath.Join(dir, "site.pem"), keyFile: filepath.Join(dir, "site.key")}
	serial := s.write(t, notAfter)
	s.cfg = config.NewTLS()
	s.cfg.Listen = s.edge.tlsLn.Addr().String()
	s.cfg.CertFile, s.cfg.KeyFile = s.certFile, s.keyFile
	return s, serial
}

// write replaces the pair the way an operator's copy does: the
// certificate first, then the key, each file rewritten in place.
func (s *fileSetup) write(t *testing.T, notAfter time.Time) *big.Int {
	t.Helper()
	certPEM, keyPEM, serial := s.ca.issue(t, siteName, notAfter)
	if err := os.WriteFile(s.certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return serial
}

func (s *fileSetup) manager(t *testing.T, ev *telemetry.Events, opts certs.Options) *certs.Manager {
	t.Helper()
	opts.Events = ev
	m, err := certs.New(s.cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.edge.mgr.Store(m)
	return m
}

func (s *fileSetup) serial(t *testing.T) *big.Int {
	t.Helper()
	leaf, err := handshake(s.edge.tlsLn.Addr().String(), siteName, s.ca.pool)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return leaf.SerialNumber
}

// waitSerial polls until handshakes are served serial.
func (s *fileSetup) waitSerial(t *testing.T, serial *big.Int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := s.serial(t)
		if got.Cmp(serial) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %x after %v, want %x", got, within, serial)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A pair that does not load is a start-up error naming the file(s).
func TestFilesNewRejectsBadPair(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM, _ := ca.issue(t, siteName, time.Now().Add(time.Hour))
	_, otherKey, _ := ca.issue(t, siteName, time.Now().Add(time.Hour))
	tests := []struct {
		name       string
		cert, key  []byte
		noCert     bool
		wantInText []string
	}{
		{"key of another certificate", certPEM, otherKey, false, []string{"site.pem", "site.key", "private key does not match public key"}},
		{"garbage certificate", []byte("not PEM"), keyPEM, false, []string{"site.pem", "site.key"}},
		{"missing certificate", nil, keyPEM, true, []string{"cert_file", "site.pem", "no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := config.NewTLS()
			cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key")
			if !tt.noCert {
				os.WriteFile(cfg.CertFile, tt.cert, 0o644)
			}
			os.WriteFile(cfg.KeyFile, tt.key, 0o600)
			_, err := certs.New(cfg, certs.Options{})
			if err == nil {
				t.Fatal("New accepted the pair")
			}
			for _, w := range tt.wantInText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New: %v; want it to mention %q", err, w)
				}
			}
		})
	}
}

// Replaced files are served without a restart; a connection made before
// keeps working; a broken pair keeps the certificate being served, is
// reported once the files have settled, and is forgotten when the files
// are fixed.
func TestFilesFollowChanges(t *testing.T) {
	s, first := newFileSetup(t, time.Now().Add(24*time.Hour))
	ev := telemetry.NewEvents(nil, 0)
	m := s.manager(t, ev, certs.Options{FileCheckInterval: 50 * time.Millisecond})
	run(t, m)
	if got := s.serial(t); got.Cmp(first) != 0 {
		t.Fatalf("serving serial %x, want %x", got, first)
	}
	old, err := tls.Dial("tcp", s.edge.tlsLn.Addr().String(), &tls.Config{ServerName: siteName, RootCAs: s.ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	second := s.write(t, time.Now().Add(48*time.Hour))
	s.waitSerial(t, second, 5*time.Second)
	reloaded := waitEvent(t, ev, telemetry.EventCertReloaded, time.Second)
	if reloaded.Value != siteName || !strings.Contains(reloaded.Detail, second.Text(16)) {
		t.Errorf("cert_reloaded = %+v; want the new serial %x", reloaded, second)
	}
	if es := eventsOf(ev, telemetry.EventCertReloadFailed); len(es) > 0 {
		t.Errorf("replacing the certificate then the key reported a failure: %v", es)
	}
	if status, err := get(old, siteName); err != nil || status != "200 OK" {
		t.Errorf("a connection made before the change: %q, %v; want 200 OK", status, err)
	}

	if err := os.WriteFile(s.keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\ntruncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	failed := waitEvent(t, ev, telemetry.EventCertReloadFailed, 5*time.Second)
	if !strings.Contains(failed.Detail, s.keyFile) || !strings.Contains(failed.Detail, "still serving the previous one") {
		t.Errorf("cert_reload_failed = %q; want the files named and the old certificate kept", failed.Detail)
	}
	if got := s.serial(t); got.Cmp(second) != 0 {
		t.Errorf("after a broken key: serving %x, want the previous %x", got, second)
	}
	time.Sleep(300 * time.Millisecond) // several more looks at the same broken files
	if n := len(eventsOf(ev, telemetry.EventCertReloadFailed)); n != 1 {
		t.Errorf("%d cert_reload_failed events for one broken pair, want 1", n)
	}
	if st := m.Status(); st[0].LastError == "" || st[0].Serial != second.Text(16) {
		t.Errorf("Status() = %+v; want the error and the served serial %x", st, second)
	}
	f := finding(t, ev, "certificate_reload_failed")
	if f == nil || f.Severity != diagnose.Warning || !strings.Contains(f.Fix, "cert_file") {
		t.Errorf("diagnose: %+v; want a warning saying to fix cert_file and key_file", f)
	}

	third := s.write(t, time.Now().Add(72*time.Hour))
	s.waitSerial(t, third, 5*time.Second)
	if st := m.Status(); st[0].LastError != "" {
		t.Errorf("Status() after the fix still has an error: %+v", st)
	}
	if f := finding(t, ev, "certificate_reload_failed"); f != nil {
		t.Errorf("diagnose still reports the fixed files: %+v", f)
	}
}

// Reload (SIGHUP) reads the files at once, and reports a broken pair at
// once, keeping the certificate being served.
func TestFilesReload(t *testing.T) {
	s, first := newFileSetup(t, time.Now().Add(24*time.Hour))
	ev := telemetry.NewEvents(nil, 0)
	m := s.manager(t, ev, certs.Options{FileCheckInterval: time.Hour})
	run(t, m)
	second := s.write(t, time.Now().Add(48*time.Hour))
	if got := s.serial(t); got.Cmp(first) != 0 {
		t.Fatalf("serving %x before Reload with the watcher asleep, want %x", got, first)
	}
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := s.serial(t); got.Cmp(second) != 0 {
		t.Errorf("after Reload: serving %x, want %x", got, second)
	}
	if err := os.WriteFile(s.certFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), s.certFile) {
		t.Errorf("Reload of a broken certificate: %v; want an error naming %s", err, s.certFile)
	}
	if es := eventsOf(ev, telemetry.EventCertReloadFailed); len(es) != 1 {
		t.Errorf("cert_reload_failed events: %v; want 1 at once", es)
	}
	if got := s.serial(t); got.Cmp(second) != 0 {
		t.Errorf("after a failed Reload: serving %x, want %x", got, second)
	}
}

// A certificate from files with little time left warns once (not on every
// check), and diagnose says to replace the files; an expired one is
// critical.
func TestFilesExpiring(t *testing.T) {
	for _, tt := range []struct {
		name     string
		left     time.Duration
		trigger  string
		severity diagnose.Severity
	}{
		{"expiring", 2 * time.Hour, certs.TriggerFileExpiring, diagnose.Warning},
		{"expired", -time.Minute, certs.TriggerFileExpired, diagnose.Critical},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newFileSetup(t, time.Now().Add(tt.left))
			ev := telemetry.NewEvents(nil, 0)
			m := s.manager(t, ev, certs.Options{RenewCheckInterval: 10 * time.Millisecond})
			run(t, m)
			e := waitEvent(t, ev, telemetry.EventCertExpiring, 2*time.Second)
			if e.Trigger != tt.trigger || e.Value != siteName {
				t.Errorf("cert_expiring = %+v; want trigger %s for %s", e, tt.trigger, siteName)
			}
			time.Sleep(200 * time.Millisecond) // about 20 more checks
			if n := len(eventsOf(ev, telemetry.EventCertExpiring)); n != 1 {
				t.Errorf("%d cert_expiring events, want 1 a day", n)
			}
			f := finding(t, ev, "certificate_expiring")
			if f == nil || f.Severity != tt.severity || !strings.Contains(f.Fix, "replace cert_file") {
				t.Errorf("diagnose: %+v; want %s, saying to replace the files", f, tt.severity)
			}
		})
	}
	// And one with most of its life left does not warn.
	s, _ := newFileSetup(t, time.Now().Add(30*24*time.Hour))
	ev := telemetry.NewEvents(nil, 0)
	run(t, s.manager(t, ev, certs.Options{RenewCheckInterval: 10 * time.Millisecond}))
	time.Sleep(100 * time.Millisecond)
	if es := eventsOf(ev, telemetry.EventCertExpiring); len(es) > 0 {
		t.Errorf("a certificate with 30 of its 30 days left warned: %v", es)
	}
}

// finding is diagnose's finding id over the events, or nil.
func finding(t *testing.T, ev *telemetry.Events, id string) *diagnose.Finding {
	t.Helper()
	r := diagnose.Run(&diagnose.Evidence{Events: ev.Since(time.Time{}), Until: time.Now()})
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}
