package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// files serves a certificate read from cert_file and key_file, and reads
// them again when they change.
type files struct {
	m                 *Manager
	certFile, keyFile string
	cur               atomic.Pointer[pair]

	// mu serialises loads (the watcher and Reload); the fields below are
	// the watcher's memory of what it last saw.
	mu       sync.Mutex
	seen     stamp    // the files' stamp when last looked at
	failed   [32]byte // content hash of the pair that last failed to load
	reported bool     // whether that failure was reported
}

// pair is a loaded certificate and the content it came from.
type pair struct {
	cert *tls.Certificate // Leaf set
	hash [32]byte
}

// stamp is what a stat of both files says: a change of either means the
// contents may have changed.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func newFiles(m *Manager, certFile, keyFile string) (*files, error) {
	f := &files{m: m, certFile: certFile, keyFile: keyFile}
	f.seen, _ = f.stat()
	p, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur.Store(p)
	if gap := f.checkChain(p); gap != "" {
		// The terminal's event printer is not listening yet.
		m.opts.Logger.Warn("certificate chain incomplete", "cert_file", certFile, "problem", gap)
	}
	return f, nil
}

// checkChain reports a pair whose chain lacks its certificate's issuer
// as cert_chain_incomplete, and returns what is missing ("" when nothing
// is). The pair is served all the same: some clients have the
// intermediate cached, and refusing it would turn a warning into an
// outage.
func (f *files) checkChain(p *pair) string {
	gap := chainGap(p.cert)
	if gap == "" {
		return ""
	}
	name := leafName(p.cert.Leaf)
	gap = fmt.Sprintf("cert_file %s %s", f.certFile, gap)
	f.m.emit(telemetry.EventCertChainIncomplete, name, "", name+": "+gap)
	return gap
}

// chainGap says what a certificate's chain lacks: "" when the file holds
// the certificate's issuer, the certificate is self-signed, or it
// verifies against this host's roots as it is. Otherwise the issuer is
// missing; and when the certificate names where its issuer's certificate
// is published (Authority Information Access, as every public CA's
// certificates do), that issuer is an intermediate clients cannot be
// assumed to have. A certificate without that pointer is taken for a
// private CA's, issued by the root its clients hold, and not reported.
func chainGap(cert *tls.Certificate) string {
	leaf := cert.Leaf
	if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) || len(leaf.IssuingCertificateURL) == 0 {
		return ""
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			continue
		}
		if leaf.CheckSignatureFrom(c) == nil {
			return ""
		}
		inter.AddCert(c)
	}
	// Verified as of the middle of its validity: an expired certificate
	// is cert_expiring's to report, not a chain's.
	at := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if _, err := leaf.Verify(x509.VerifyOptions{Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		return ""
	}
	issuer := leaf.Issuer.CommonName
	if issuer == "" {
		issuer = leaf.Issuer.String()
	}
	return fmt.Sprintf("holds the certificate without the intermediate certificate of its issuer %q (published at %s): "+
		"clients that do not already have it fail to verify the chain; append the intermediate certificate(s) after the certificate "+
		"in cert_file (the CA's full chain, e.g. Let's Encrypt's fullchain.pem, not cert.pem)", issuer, leaf.IssuingCertificateURL[0])
}

func (f *files) current() *pair { return f.cur.Load() }

// load reads and parses the pair. Its errors name both files.
func (f *files) load() (*pair, error) {
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return nil, fmt.Errorf("tls: cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: key_file: %w", err)
	}
	return parsePair(certPEM, keyPEM, f.certFile, f.keyFile)
}

func parsePair(certPEM, keyPEM []byte, certFile, keyFile string) (*pair, error) {
	p := &pair{hash: contentHash(certPEM, keyPEM)}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: cert_file %s and key_file %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: cert_file %s: %w", certFile, err)
		}
	}
	p.cert = &cert
	return p, nil
}

// cutShort reports whether data ends in a PEM block that began but never
// ended: a file read while it was written in place. tls.X509KeyPair stops
// at such a block without a word.
func cutShort(data []byte) bool {
	rest := data
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
	}
	return bytes.Contains(rest, []byte("-----BEGIN"))
}

func contentHash(certPEM, keyPEM []byte) [32]byte {
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func (f *files) stat() (stamp, error) {
	c, err := os.Stat(f.certFile)
	if err != nil {
		return stamp{}, err
	}
	k, err := os.Stat(f.keyFile)
	if err != nil {
		return stamp{}, err
	}
	return stamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// run polls the files until ctx ends, and checks expiry.
func (f *files) run(ctx context.Context) {
	poll := time.NewTicker(f.m.opts.FileCheckInterval)
	defer poll.Stop()
	expiry := time.NewTicker(f.m.opts.RenewCheckInterval)
	defer expiry.Stop()
	f.m.checkExpiry(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if f.changed() {
				f.reload(false)
			}
		case <-expiry.C:
			f.m.checkExpiry(time.Now())
		}
	}
}

// changed reports whether the files look different from the last look,
// or a failure is waiting for its second look.
func (f *files) changed() bool {
	st, err := f.stat()
	f.mu.Lock()
	defer f.mu.Unlock()
	return err != nil || st != f.seen || (f.failed != [32]byte{} && !f.reported)
}

// reload loads the pair again and swaps it in if it differs from the one
// served. A pair that fails is reported at once when asked (SIGHUP);
// noticed by the watcher, only if it still fails at the next look: a
// certificate and key are rarely replaced in one step, and the moment
// between the two is not worth an alarm.
func (f *files) reload(asked bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen, _ = f.stat()
	certPEM, err1 := os.ReadFile(f.certFile)
	keyPEM, err2 := os.ReadFile(f.keyFile)
	hash := contentHash(certPEM, keyPEM)
	name := leafName(f.current().cert.Leaf)
	if err1 == nil && err2 == nil && hash == f.current().hash {
		// Touched, or put back as it was after a failure.
		reported := f.reported
		f.failed, f.reported = [32]byte{}, false
		f.m.clearError(name)
		if reported {
			f.restored()
		}
		return nil
	}
	var p *pair
	var err error
	switch {
	case err1 != nil:
		err = fmt.Errorf("tls: cert_file: %w", err1)
	case err2 != nil:
		err = fmt.Errorf("tls: key_file: %w", err2)
	case cutShort(certPEM):
		// A file caught while being written: its certificate would load
		// without the rest of its chain, in place of a whole one. (At
		// start, with nothing to keep, crypto/tls's rules apply, as
		// validate's do.)
		err = fmt.Errorf("tls: cert_file %s: ends in an incomplete PEM block (being written, or cut short)", f.certFile)
	default:
		p, err = parsePair(certPEM, keyPEM, f.certFile, f.keyFile)
	}
	if err != nil {
		again := hash == f.failed
		if !again {
			// Another broken pair than the one reported: it is reported
			// in its turn (at once when asked, else at the next look).
			f.reported = false
		}
		f.failed = hash
		if (asked || again) && !f.reported {
			f.reported = true
			f.m.setError(name, err.Error())
			f.m.emit(telemetry.EventCertReloadFailed, name, "", name+": reloading the certificate failed, still serving the previous one: "+err.Error())
		}
		return err
	}
	f.failed, f.reported = [32]byte{}, false
	old := f.current().cert.Leaf
	f.cur.Store(p)
	f.m.clearError(name)
	leaf := p.cert.Leaf
	if newName := leafName(leaf); newName != name {
		// Events go by name: the name served before is told its
		// certificate is gone, which ends its failures and warnings in
		// diagnose and alerts.
		f.m.emit(telemetry.EventCertReloaded, name, "", fmt.Sprintf("%s: certificate replaced by one for %s from %s, serial %x",
			name, newName, f.certFile, leaf.SerialNumber))
	}
	f.m.emit(telemetry.EventCertReloaded, leafName(leaf), "", fmt.Sprintf("%s: certificate reloaded from %s, serial %x (was %x), valid until %s",
		leafName(leaf), f.certFile, leaf.SerialNumber, old.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339)))
	f.checkChain(p)
	// Its cert_reloaded ends the previous certificate's expiry warning:
	// the new one is judged now, not at the next expiry check.
	f.m.checkExpiry(time.Now())
	return nil
}

// restored ends a reported failure of files put back as they were: the
// pair served loads from them again. Its cert_reloaded ends the failure
// for diagnose and alerts, as a new pair's does; what was said of the
// certificate itself (its chain, its expiry) still holds, and is said
// again after it.
func (f *files) restored() {
	p := f.current()
	leaf := p.cert.Leaf
	f.m.emit(telemetry.EventCertReloaded, leafName(leaf), "", fmt.Sprintf("%s: certificate files load again from %s, serial %x still served, valid until %s",
		leafName(leaf), f.certFile, leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339)))
	f.checkChain(p)
	f.m.forgetWarning(fmt.Sprintf("%x", leaf.SerialNumber))
	f.m.checkExpiry(time.Now())
}

func (f *files) status() Status {
	leaf := f.current().cert.Leaf
	s := Status{Names: names(leaf), CertFile: f.certFile, KeyFile: f.keyFile}
	fill(&s, leaf)
	return s
}

// names are the certificate's host names, or its common name when it has
// none.
func names(leaf *x509.Certificate) []string {
	if len(leaf.DNSNames) > 0 {
		return append([]string(nil), leaf.DNSNames...)
	}
	return []string{leafName(leaf)}
}
