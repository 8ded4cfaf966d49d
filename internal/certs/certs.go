// Package certs owns the certificates of gatehouse's HTTPS listener: a
// pair of PEM files, re-read when they change, or certificates obtained and
// renewed over ACME (certmagic) and stored under data_dir. It serves them
// to handshakes (TLSConfig), answers ACME's challenges, and reports what
// happens to them as events, per-certificate status and expiry warnings.
//
// A certificate is replaced atomically: a handshake sees the old one or the
// new one, never a mixture, and connections made with the old one go on.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Options are what New needs beyond the tls: block.
type Options struct {
	// Events receives cert_* events; nil drops them.
	Events *telemetry.Events
	// Logger gets certmagic's log at debug level; nil discards it.
	Logger *slog.Logger
	// DataDir is gatehouse's data_dir: ACME keeps its account and
	// certificates under DataDir/certificates.
	DataDir string
	// HTTPAddr is the plain listener's bound address, where HTTP-01 is
	// answered (through HandleHTTPChallenge), and TLSAddr the HTTPS
	// listener's, where TLS-ALPN-01 is (through TLSConfig); TLSAddr
	// defaults to tls.listen. ACME's solvers only check that something
	// listens there: without them certmagic would bind ports 80 and 443
	// itself. HTTPAddr is required when http-01 is offered.
	HTTPAddr, TLSAddr string

	// RenewCheckInterval is how often certificates are checked for
	// renewal and expiry. Default $GATEHOUSE_TLS_RENEW_CHECK_INTERVAL,
	// else 10 minutes (certmagic's).
	RenewCheckInterval time.Duration
	// IgnoreARI renews by renew_before alone, never by the CA's
	// renewal-info (ARI) window.
	IgnoreARI bool
	// FileCheckInterval is how often cert_file and key_file are looked
	// at for changes. Default 2 seconds.
	FileCheckInterval time.Duration
}

// Status is one certificate's state, for the admin API and metrics.
type Status struct {
	// Names are the host names the certificate is for (for an ACME
	// certificate not obtained yet, the name being obtained).
	Names []string `json:"names"`
	// Managed is true for a certificate obtained over ACME, false for
	// one read from CertFile and KeyFile.
	Managed  bool   `json:"managed"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// Issuer is the issuing CA's name; Serial is hexadecimal. Both, and
	// the validity, are empty until there is a certificate.
	Issuer    string    `json:"issuer,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// LastError is the last failure (the ACME problem text, or why the
	// files could not be loaded), cleared by the next success.
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// Manager serves and maintains the HTTPS listener's certificates.
type Manager struct {
	cfg        *config.TLS
	opts       Options
	minVersion uint16
	files      *files // one of files and acme is set
	acme       *acmeCerts

	mu     sync.Mutex
	errs   map[string]lastError // certificate name → its last failure
	warned map[string]time.Time // serial → when cert_expiring was last emitted
}

type lastError struct {
	msg string
	at  time.Time
}

// New checks cfg's certificate source and prepares it: a file pair is
// loaded now, so a bad pair is a start-up error naming the files; ACME's
// storage and CA roots are checked, and obtaining starts with Run.
func New(cfg *config.TLS, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RenewCheckInterval <= 0 {
		opts.RenewCheckInterval = renewCheckFromEnv()
	}
	if opts.FileCheckInterval <= 0 {
		opts.FileCheckInterval = 2 * time.Second
	}
	if opts.TLSAddr == "" {
		opts.TLSAddr = cfg.Listen
	}
	minVersion, err := cfg.TLSMinVersion()
	if err != nil {
		return nil, fmt.Errorf("tls: min_version: %w", err)
	}
	m := &Manager{cfg: cfg, opts: opts, minVersion: minVersion, errs: map[string]lastError{}, warned: map[string]time.Time{}}
	switch {
	case cfg.ACME != nil:
		m.acme, err = newACME(m, cfg.ACME)
	case cfg.CertFile != "" && cfg.KeyFile != "":
		m.files, err = newFiles(m, cfg.CertFile, cfg.KeyFile)
	default:
		err = errors.New("tls: no certificate source: set cert_file and key_file, or acme")
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// TLSConfig is the HTTPS listener's configuration: the certificate for
// each handshake, the minimum version and, when TLS-ALPN-01 is offered,
// the "acme-tls/1" protocol. The caller appends its own NextProtos ("h2",
// "http/1.1") and must close a connection that negotiated "acme-tls/1"
// right after the handshake: it is the CA validating.
func (m *Manager) TLSConfig() *tls.Config {
	c := &tls.Config{MinVersion: m.minVersion, GetCertificate: m.getCertificate}
	if m.acme != nil && m.acme.tlsALPN {
		c.NextProtos = []string{ACMETLSProtocol}
	}
	return c
}

// ACMETLSProtocol is the ALPN protocol of the TLS-ALPN-01 challenge.
const ACMETLSProtocol = "acme-tls/1"

// errNoCertificate fails a handshake that came before any certificate.
var errNoCertificate = errors.New("certs: no certificate yet")

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.files != nil {
		return m.files.current().cert, nil
	}
	return m.acme.getCertificate(hello)
}

// HandleHTTPChallenge answers ACME's HTTP-01 challenge on the plain
// listener: it reports whether r was one (a GET under
// /.well-known/acme-challenge/ for a token being validated) and, if so,
// has answered it.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if m.acme == nil {
		return false
	}
	return m.acme.handleHTTPChallenge(w, r)
}

// HTTPChallengeAnswer is HandleHTTPChallenge for a server that is not
// net/http: for a GET of path on host (the Host header, port allowed), it
// returns the body to answer with 200 and Content-Type text/plain, and
// true; false when the request is not a challenge being validated.
func (m *Manager) HTTPChallengeAnswer(host, path string) (string, bool) {
	if m.acme == nil {
		return "", false
	}
	return m.acme.httpChallengeAnswer(host, path)
}

// Run obtains and renews ACME certificates, or watches the certificate
// files, and warns of certificates about to expire, until ctx ends; it
// then returns nil once everything it started has stopped. It does not
// wait for a certificate: the listener serves meanwhile, failing
// handshakes until the first certificate is there. With ACME, start Run
// only once both listeners are bound (see Options.HTTPAddr).
func (m *Manager) Run(ctx context.Context) error {
	if m.files != nil {
		m.files.run(ctx)
		return nil
	}
	return m.acme.run(ctx)
}

// Reload re-reads the certificate files now (SIGHUP). A pair that fails to
// load leaves the current certificate in place and is returned as well as
// reported as cert_reload_failed. With ACME there is nothing to re-read.
func (m *Manager) Reload() error {
	if m.files == nil {
		return nil
	}
	return m.files.reload(true)
}

// Status describes every certificate, in config order.
func (m *Manager) Status() []Status {
	var out []Status
	if m.files != nil {
		out = []Status{m.files.status()}
	} else {
		out = m.acme.status()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range out {
		if e, ok := m.errs[out[i].Names[0]]; ok {
			out[i].LastError, out[i].LastErrorTime = e.msg, e.at
		}
	}
	return out
}

// fill sets the fields of s that come from leaf.
func fill(s *Status, leaf *x509.Certificate) {
	s.Issuer = leaf.Issuer.CommonName
	if s.Issuer == "" {
		s.Issuer = leaf.Issuer.String()
	}
	s.Serial = fmt.Sprintf("%x", leaf.SerialNumber)
	s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
}

// leafName is the name a certificate is known by: its first DNS name, or
// its subject's common name.
func leafName(leaf *x509.Certificate) string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames[0]
	}
	if leaf.Subject.CommonName != "" {
		return leaf.Subject.CommonName
	}
	return fmt.Sprintf("serial %x", leaf.SerialNumber)
}

func (m *Manager) setError(name, msg string) {
	m.mu.Lock()
	m.errs[name] = lastError{msg: msg, at: time.Now()}
	m.mu.Unlock()
}

func (m *Manager) clearError(name string) {
	m.mu.Lock()
	delete(m.errs, name)
	m.mu.Unlock()
}

// emit records an event about the certificate called name; trigger
// classifies it for diagnose (see the Trigger* constants).
func (m *Manager) emit(typ, name, trigger, detail string) {
	m.emitCause(typ, name, trigger, "", detail)
}

// emitCause is emit with the failure's cause (see the Cause* constants).
func (m *Manager) emitCause(typ, name, trigger, cause, detail string) {
	if m.opts.Events == nil {
		return
	}
	m.opts.Events.Emit(telemetry.Event{Type: typ, Value: name, Trigger: trigger, Cause: cause, Detail: detail})
}

// Event triggers, which diagnose reads: what a cert_failed was doing;
// whether a cert_expiring certificate has expired already, and whether it
// is an ACME certificate (its renewal is overdue) or a file's.
const (
	TriggerObtain       = "obtain"
	TriggerRenew        = "renew"
	TriggerStorage      = "storage"
	TriggerExpiring     = "expiring"
	TriggerExpired      = "expired"
	TriggerFileExpiring = "file_expiring"
	TriggerFileExpired  = "file_expired"
)

// Event causes, which diagnose reads: what kind of error a cert_failed
// was, from its type. CauseUnknownAuthority: the ACME directory's HTTPS
// certificate is not signed by a root gatehouse trusts (a private CA
// without acme.ca_roots).
const CauseUnknownAuthority = "unknown_authority"

// RenewCheckEnv names an environment variable that sets the renewal
// check interval (a Go duration) when Options does not: a knob for
// end-to-end tests of short-lived certificates against a running binary.
const RenewCheckEnv = "GATEHOUSE_TLS_RENEW_CHECK_INTERVAL"

func renewCheckFromEnv() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(RenewCheckEnv)); err == nil && d > 0 {
		return d
	}
	return 10 * time.Minute
}

// storageDir is where ACME keeps its account and certificates.
func storageDir(dataDir string) string { return filepath.Join(dataDir, "certificates") }

// checkWritable makes dir and proves a file can be written there, so that
// an unwritable data_dir fails start-up instead of every ACME order.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
