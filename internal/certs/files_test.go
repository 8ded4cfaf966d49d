package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// testCA issues ECDSA P-256 certificates, as an operator's CA would.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool // its root's
}

// serials number the certificates of the process, from a start no earlier
// run of it used.
var (
	serialBase = time.Now().UnixNano()
	serials    atomic.Int64
)

// sign makes the certificate tmpl describes, with a key of its own,
// issued by issuer (nil: by itself); a zero validity is from an hour ago
// for a day.
func sign(t *testing.T, tmpl *x509.Certificate, issuer *testCA) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serialBase + serials.Add(1))
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	parent, signer := tmpl, any(key)
	if issuer != nil {
		parent, signer = issuer.cert, issuer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{pool: x509.NewCertPool()}
	ca.cert, ca.key = sign(t, caTemplate("gatehouse test CA"), nil)
	ca.pool.AddCert(ca.cert)
	return ca
}

// intermediate issues a CA certificate under ca.
func (ca *testCA) intermediate(t *testing.T, name string) *testCA {
	t.Helper()
	cert, key := sign(t, caTemplate(name), ca)
	return &testCA{cert: cert, key: key, pool: ca.pool}
}

func caTemplate(name string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
}

// issue returns a certificate for name valid until notAfter, and its key,
// in PEM.
func (ca *testCA) issue(t *testing.T, name string, notAfter time.Time) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	cert, key := sign(t, leafTemplate(name, notAfter), ca)
	return pemCert(cert.Raw), pemKey(t, key), cert.SerialNumber
}

// leaf is a certificate for siteName and its key, in PEM. issuer nil
// makes it self-signed; aia names where its issuer's certificate is
// published.
func leaf(t *testing.T, issuer *testCA, aia bool) (certPEM, keyPEM []byte) {
	t.Helper()
	tmpl := leafTemplate(siteName, time.Time{})
	if aia {
		tmpl.IssuingCertificateURL = []string{intermediateURL}
	}
	cert, key := sign(t, tmpl, issuer)
	return pemCert(cert.Raw), pemKey(t, key)
}

func leafTemplate(name string, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

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

// filesConfig is a TLS config whose cert_file and key_file (site.pem and
// site.key in a directory of the test's) hold certPEM and keyPEM; with
// certPEM nil there is no cert_file.
func filesConfig(t *testing.T, certPEM, keyPEM []byte) *config.TLS {
	t.Helper()
	dir := t.TempDir()
	cfg := config.NewTLS()
	cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key")
	if certPEM != nil {
		if err := os.WriteFile(cfg.CertFile, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(cfg.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
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
	testutil.WaitForNil(t, within, fmt.Sprintf("serial %x to be served", serial), func() error {
		if got := s.serial(t); got.Cmp(serial) != 0 {
			return fmt.Errorf("still serving serial %x", got)
		}
		return nil
	})
}

// A pair that does not load is a start-up error naming the file(s).
func TestFilesNewRejectsBadPair(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	certPEM, keyPEM, _ := ca.issue(t, siteName, time.Now().Add(time.Hour))
	_, otherKey, _ := ca.issue(t, siteName, time.Now().Add(time.Hour))
	tests := []struct {
		name       string
		cert, key  []byte // cert nil: none
		wantInText []string
	}{
		{"key of another certificate", certPEM, otherKey, []string{"site.pem", "site.key", "private key does not match public key"}},
		{"garbage certificate", []byte("not PEM"), keyPEM, []string{"site.pem", "site.key"}},
		{"missing certificate", nil, keyPEM, []string{"cert_file", "site.pem", "no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := certs.New(filesConfig(t, tt.cert, tt.key), certs.Options{})
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
	t.Parallel()
	s, first := newFileSetup(t, time.Now().Add(24*time.Hour))
	ev := telemetry.NewEvents(nil, 0)
	// The watcher's looks are far enough apart that one never falls
	// between the writes of the certificate and the key twice, even on a
	// busy machine.
	const every = 200 * time.Millisecond
	m := s.manager(t, ev, certs.Options{FileCheckInterval: every})
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
	time.Sleep(3 * every) // several more looks at the same broken files
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
	t.Parallel()
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
	t.Parallel()
	for _, tt := range []struct {
		name     string
		left     time.Duration
		trigger  string // "": no warning
		severity diagnose.Severity
	}{
		{"expiring", 2 * time.Hour, certs.TriggerFileExpiring, diagnose.Warning},
		{"expired", -time.Minute, certs.TriggerFileExpired, diagnose.Critical},
		{"most of its life left", 30 * 24 * time.Hour, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newFileSetup(t, time.Now().Add(tt.left))
			ev := telemetry.NewEvents(nil, 0)
			m := s.manager(t, ev, certs.Options{RenewCheckInterval: 10 * time.Millisecond})
			run(t, m)
			want := 0
			if tt.trigger != "" {
				want = 1
				e := waitEvent(t, ev, telemetry.EventCertExpiring, 2*time.Second)
				if e.Trigger != tt.trigger || e.Value != siteName {
					t.Errorf("cert_expiring = %+v; want trigger %s for %s", e, tt.trigger, siteName)
				}
			}
			time.Sleep(200 * time.Millisecond) // about 20 more checks
			if es := eventsOf(ev, telemetry.EventCertExpiring); len(es) != want {
				t.Errorf("%d cert_expiring events with %v left, want %d (once a day, none with most of its life left): %v", len(es), tt.left, want, es)
			}
			if want == 0 {
				return
			}
			f := finding(t, ev, "certificate_expiring")
			if f == nil || f.Severity != tt.severity || !strings.Contains(f.Fix, "replace cert_file") {
				t.Errorf("diagnose: %+v; want %s, saying to replace the files", f, tt.severity)
			}
		})
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

// A cert_file that holds its certificate without the intermediate that
// issued it is loaded and served, but reported: an event naming the file
// and the missing issuer, and a diagnose warning saying to serve the full
// chain. A full chain, a self-signed certificate and a private CA's
// certificate issued by its root are not reported.
func TestFilesChainCheckedAtLoad(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
			certPEM, keyPEM := tt.chain()
			cfg := filesConfig(t, certPEM, keyPEM)
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
	t.Parallel()
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

// A broken pair that is replaced by another broken pair is reported again
// once the second has settled: each is a different problem for the
// operator to fix, and Status must say what is wrong now, not what was
// wrong before. The watcher used to remember that it had reported the
// first, and never took its second look at the second.
func TestFilesSecondBrokenPairReported(t *testing.T) {
	t.Parallel()
	s, first := newFileSetup(t, time.Now().Add(24*time.Hour))
	ev := telemetry.NewEvents(nil, 0)
	const every = 200 * time.Millisecond
	m := s.manager(t, ev, certs.Options{FileCheckInterval: every})
	run(t, m)

	if err := os.WriteFile(s.keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\ntruncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, telemetry.EventCertReloadFailed, 5*time.Second)
	if err := os.WriteFile(s.certFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitForNil(t, 5*time.Second, "a second cert_reload_failed", func() error {
		if n := len(eventsOf(ev, telemetry.EventCertReloadFailed)); n != 2 {
			return fmt.Errorf("%d cert_reload_failed events, want 2: %v", n, eventsOf(ev, telemetry.EventCertReloadFailed))
		}
		return nil
	})
	if e := eventsOf(ev, telemetry.EventCertReloadFailed)[1]; !strings.Contains(e.Detail, "certificate input") {
		t.Errorf("second cert_reload_failed = %q; want the certificate's problem", e.Detail)
	}
	if st := m.Status(); !strings.Contains(st[0].LastError, "certificate input") {
		t.Errorf("Status().LastError = %q; want the broken certificate's problem, not the earlier key's", st[0].LastError)
	}
	if got := s.serial(t); got.Cmp(first) != 0 {
		t.Errorf("serving %x, want the last good %x", got, first)
	}
	time.Sleep(3 * every)
	if n := len(eventsOf(ev, telemetry.EventCertReloadFailed)); n != 2 {
		t.Errorf("%d cert_reload_failed events for two broken pairs, want 2", n)
	}
}

// Files that failed to load and are then put back exactly as they were
// (a backup restored) load again: the failure is over, for diagnose as
// for Status, though the certificate served never changed. Only a new
// pair used to end the reported failure; put back, diagnose went on
// saying the files do not load.
func TestFilesPutBackEndsReportedFailure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		left     time.Duration
		expiring bool // the certificate put back is still about to expire: diagnose says so again
	}{
		{"most of its life left", 30 * 24 * time.Hour, false},
		{"expiring", 2 * time.Hour, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, first := newFileSetup(t, time.Now().Add(tt.left))
			ev := telemetry.NewEvents(nil, 0)
			const every = 200 * time.Millisecond
			m := s.manager(t, ev, certs.Options{FileCheckInterval: every})
			run(t, m)
			if tt.expiring {
				waitEvent(t, ev, telemetry.EventCertExpiring, 2*time.Second)
			}
			keyPEM, err := os.ReadFile(s.keyFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\ntruncated"), 0o600); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, ev, telemetry.EventCertReloadFailed, 5*time.Second)
			if f := finding(t, ev, "certificate_reload_failed"); f == nil {
				t.Fatal("diagnose has no certificate_reload_failed finding for the broken key")
			}
			if err := os.WriteFile(s.keyFile, keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			testutil.WaitForNil(t, 5*time.Second, "the failure to be over", func() error {
				if st := m.Status(); st[0].LastError != "" {
					return fmt.Errorf("Status().LastError = %q", st[0].LastError)
				}
				return nil
			})
			time.Sleep(2 * every) // diagnose reads the events written by then
			if f := finding(t, ev, "certificate_reload_failed"); f != nil {
				t.Errorf("diagnose still says the restored files do not load: %+v", f)
			}
			if f := finding(t, ev, "certificate_expiring"); (f != nil) != tt.expiring {
				t.Errorf("certificate_expiring finding = %+v; want one: %v", f, tt.expiring)
			}
			if got := s.serial(t); got.Cmp(first) != 0 {
				t.Errorf("serving %x, want %x", got, first)
			}
		})
	}
}

// Files replaced by a pair with little time left are warned of as soon as
// they are served, not at the next expiry check: the cert_reloaded that
// ends the old certificate's warning would otherwise leave diagnose
// silent about the new one until then.
func TestFilesReloadedExpiringWarnsAtOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		left    time.Duration
		trigger string
	}{
		{"expiring", 2 * time.Hour, certs.TriggerFileExpiring},
		{"expired", -time.Minute, certs.TriggerFileExpired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newFileSetup(t, time.Now().Add(30*24*time.Hour))
			ev := telemetry.NewEvents(nil, 0)
			// No Run: its own first expiry check would race the Reload's.
			m := s.manager(t, ev, certs.Options{FileCheckInterval: time.Hour, RenewCheckInterval: time.Hour})
			serial := s.write(t, time.Now().Add(tt.left))
			if err := m.Reload(); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			es := eventsOf(ev, telemetry.EventCertExpiring)
			if len(es) != 1 || es[0].Trigger != tt.trigger || !strings.Contains(es[0].Detail, serial.Text(16)) {
				t.Fatalf("cert_expiring events after Reload: %v; want one with trigger %s for serial %x", es, tt.trigger, serial)
			}
			if f := finding(t, ev, "certificate_expiring"); f == nil {
				t.Error("diagnose does not report the reloaded certificate's expiry")
			}
		})
	}
}

// halfPEM is the first half of der's PEM encoding: a file caught while it
// is being written.
func halfPEM(der []byte) []byte {
	b := pemCert(der)
	return b[:len(b)/2]
}

// A certificate file read while it is being written in place (truncated,
// then written), caught after its certificate but within its
// intermediate, is not served: its certificate would go out without the
// chain clients verify it with. The pair served stays until the file is
// whole.
func TestFilesCutShortChainKeepsPair(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	s, _ := newFileSetup(t, time.Now().Add(24*time.Hour))
	s.ca = p.root // handshakes verify against the hierarchy's root
	writeChain := func(inter []byte) *big.Int {
		t.Helper()
		c, k := leaf(t, p.inter, true)
		block, _ := pem.Decode(c)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.certFile, append(c, inter...), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.keyFile, k, 0o600); err != nil {
			t.Fatal(err)
		}
		return cert.SerialNumber
	}
	first := writeChain(pemCert(p.inter.cert.Raw))
	ev := telemetry.NewEvents(nil, 0)
	m := s.manager(t, ev, certs.Options{FileCheckInterval: time.Hour})
	run(t, m)

	writeChain(halfPEM(p.inter.cert.Raw))
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), s.certFile) {
		t.Errorf("Reload of a certificate file cut short: %v; want an error naming %s", err, s.certFile)
	}
	if got := s.serial(t); got.Cmp(first) != 0 {
		t.Errorf("serving serial %x, want the previous pair's %x", got, first)
	}
	if es := eventsOf(ev, telemetry.EventCertChainIncomplete); len(es) > 0 {
		t.Errorf("cert_chain_incomplete for a file cut short: %v", es)
	}
	if es := eventsOf(ev, telemetry.EventCertReloadFailed); len(es) != 1 {
		t.Errorf("cert_reload_failed events: %v; want 1", es)
	}

	whole := writeChain(pemCert(p.inter.cert.Raw))
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload of the whole file: %v", err)
	}
	s.waitSerial(t, whole, time.Second)
}

// Files replaced by a certificate known by another name (a host name
// added or dropped, or the same names in another order) end what was said
// of the one served before: diagnose reports no failure or expiry of a
// certificate that is no longer served.
func TestFilesRenamedCertificateEndsOldFindings(t *testing.T) {
	t.Parallel()
	s, _ := newFileSetup(t, time.Now().Add(2*time.Hour))
	ev := telemetry.NewEvents(nil, 0)
	m := s.manager(t, ev, certs.Options{FileCheckInterval: time.Hour, RenewCheckInterval: time.Hour})
	run(t, m)
	waitEvent(t, ev, telemetry.EventCertExpiring, 5*time.Second)
	if err := os.WriteFile(s.keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	const renamed = "www.gatehouse.test"
	certPEM, keyPEM, serial := s.ca.issue(t, renamed, time.Now().Add(30*24*time.Hour))
	if err := os.WriteFile(s.certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := m.Status()[0].Serial; got != serial.Text(16) {
		t.Fatalf("serving serial %s, want %x", got, serial)
	}
	for _, id := range []string{"certificate_expiring", "certificate_reload_failed"} {
		if f := finding(t, ev, id); f != nil {
			t.Errorf("diagnose still reports the replaced certificate: %s: %s", id, f.Title)
		}
	}
}
