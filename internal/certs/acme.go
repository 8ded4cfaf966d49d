package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// acmeCerts obtains and renews a certificate per domain with certmagic.
// certmagic's objects live from Run's start to its end: nothing runs, and
// no handshake succeeds, before Run.
type acmeCerts struct {
	m       *Manager
	cfg     *config.ACME
	domains []string // lower case, config order
	ratio   float64  // renew_before
	roots   *x509.CertPool
	tlsALPN bool

	// The challenge solvers' addresses: certmagic binds them itself
	// unless it finds them in use, which gatehouse's listeners are.
	listenHost        string
	httpPort, tlsPort int

	magic  atomic.Pointer[certmagic.Config]
	issuer atomic.Pointer[certmagic.ACMEIssuer]
	cache  atomic.Pointer[certmagic.Cache]
}

func newACME(m *Manager, cfg *config.ACME) (*acmeCerts, error) {
	a := &acmeCerts{m: m, cfg: cfg, tlsALPN: cfg.HasChallenge("tls-alpn-01")}
	for _, d := range cfg.Domains {
		a.domains = append(a.domains, strings.TrimSuffix(strings.ToLower(d), "."))
	}
	if len(a.domains) == 0 {
		return nil, errors.New("tls: acme: no domains")
	}
	var err error
	if a.ratio, err = cfg.RenewRatio(); err != nil {
		return nil, fmt.Errorf("tls: acme: renew_before: %w", err)
	}
	if cfg.CARoots != "" {
		if a.roots, err = readRoots(cfg.CARoots); err != nil {
			return nil, err
		}
	}
	if m.opts.DataDir == "" {
		return nil, errors.New("tls: acme: no data_dir to keep certificates in")
	}
	if err := checkWritable(storageDir(m.opts.DataDir)); err != nil {
		return nil, fmt.Errorf("tls: acme: certificate storage: %w", err)
	}
	if err := a.solverAddrs(); err != nil {
		return nil, err
	}
	return a, nil
}

// readRoots reads ca_roots, the PEM roots the directory's HTTPS is
// verified against.
func readRoots(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: acme: ca_roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: acme: ca_roots %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// solverAddrs takes the challenge ports from the listeners' addresses.
func (a *acmeCerts) solverAddrs() error {
	var err error
	httpHost := ""
	if a.cfg.HasChallenge("http-01") {
		if a.m.opts.HTTPAddr == "" {
			return errors.New("certs: http-01 needs Options.HTTPAddr, the plain listener's address")
		}
		if httpHost, a.httpPort, err = hostPort(a.m.opts.HTTPAddr); err != nil {
			return fmt.Errorf("certs: HTTPAddr: %w", err)
		}
	}
	tlsHost := ""
	if a.tlsALPN {
		if tlsHost, a.tlsPort, err = hostPort(a.m.opts.TLSAddr); err != nil {
			return fmt.Errorf("certs: TLSAddr: %w", err)
		}
	}
	// One host serves both solvers. A specific address finds the port in
	// use also when the other listener is on every address; "" (every
	// address) finds it in use whatever the listener's.
	a.listenHost = httpHost
	if a.listenHost == "" || (tlsHost != "" && !isUnspecified(tlsHost)) {
		a.listenHost = tlsHost
	}
	if isUnspecified(a.listenHost) {
		a.listenHost = ""
	}
	return nil
}

func hostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, fmt.Errorf("%q: want the listener's bound address with its port number", addr)
	}
	return host, n, nil
}

func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// setup makes certmagic's cache, config and issuer.
func (a *acmeCerts) setup() *certmagic.Cache {
	log := zapToSlog(a.m.opts.Logger)
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: a.m.opts.RenewCheckInterval,
		Logger:             log,
	})
	magic = certmagic.New(cache, certmagic.Config{
		RenewalWindowRatio: a.ratio,
		DisableARI:         a.m.opts.IgnoreARI,
		OnEvent:            a.onEvent,
		ShouldEmitFunc:     func(event string) bool { return event == "cert_obtained" || event == "cert_failed" },
		// A client without SNI (an IP in the URL, a health check) gets
		// the first domain's certificate rather than a failed handshake.
		DefaultServerName: a.domains[0],
		Storage:           &certmagic.FileStorage{Path: storageDir(a.m.opts.DataDir)},
		Logger:            log,
	})
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		// With Let's Encrypt's directory, certmagic retries a failed
		// order against its staging CA first, sparing the production
		// CA's limit on failed validations.
		CA:    a.cfg.Directory,
		Email: a.cfg.Email,
		// Writing an acme: block is agreeing to the CA's terms; there is
		// nobody to ask at a prompt.
		Agreed:                  true,
		DisableHTTPChallenge:    !a.cfg.HasChallenge("http-01"),
		DisableTLSALPNChallenge: !a.tlsALPN,
		ListenHost:              a.listenHost,
		AltHTTPPort:             a.httpPort,
		AltTLSALPNPort:          a.tlsPort,
		TrustedRoots:            a.roots,
		Logger:                  log,
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	a.cache.Store(cache)
	a.issuer.Store(issuer)
	a.magic.Store(magic)
	return cache
}

func (a *acmeCerts) run(ctx context.Context) error {
	cache := a.setup()
	magic := a.magic.Load()
	var wg sync.WaitGroup
	for _, d := range a.domains {
		wg.Go(func() { a.manage(ctx, magic, cache, d) })
	}
	expiry := time.NewTicker(a.m.opts.RenewCheckInterval)
	defer expiry.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-expiry.C:
			a.m.checkExpiry(time.Now())
		}
	}
	wg.Wait()
	// Renewals run in certmagic's maintenance goroutine, stopped here;
	// the certificates stay cached, so handshakes still succeed while the
	// listener drains.
	cache.Stop()
	return nil
}

// manage puts domain's certificate in the cache: the stored one (renewed
// first if due), else a new one, retried with certmagic's back-off (1
// minute, 2, 2, 5, 10 … growing to 6 hours apart, for up to 30 days)
// until ctx ends. From then on certmagic's maintenance renews it.
func (a *acmeCerts) manage(ctx context.Context, magic *certmagic.Config, cache *certmagic.Cache, domain string) {
	cert, err := magic.CacheManagedCertificate(ctx, domain)
	switch {
	case err == nil:
		a.m.checkExpiry(time.Now())
		if cert.NeedsRenewal(magic) && magic.RenewCertAsync(ctx, domain, false) == nil {
			a.swap(ctx, magic, cache, domain, cert)
		}
		return
	case !errors.Is(err, fs.ErrNotExist):
		// A stored certificate that cannot be used: obtaining would
		// find it and do nothing, so it is for a person to look at.
		msg := fmt.Sprintf("stored certificate under %s unusable: %v", storageDir(a.m.opts.DataDir), err)
		a.m.setError(domain, msg)
		a.m.emit(telemetry.EventCertFailed, domain, TriggerStorage, domain+": "+msg)
		return
	}
	if magic.ObtainCertAsync(ctx, domain) != nil {
		return // ctx ended; each failed attempt was reported by onEvent
	}
	if _, err := magic.CacheManagedCertificate(ctx, domain); err != nil && ctx.Err() == nil {
		a.m.setError(domain, "loading the obtained certificate: "+err.Error())
	}
}

// swap caches the renewed certificate, then drops the old one: at every
// moment one of them is there to serve.
func (a *acmeCerts) swap(ctx context.Context, magic *certmagic.Config, cache *certmagic.Cache, domain string, old certmagic.Certificate) {
	renewed, err := magic.CacheManagedCertificate(ctx, domain)
	if err != nil {
		a.m.setError(domain, "loading the renewed certificate: "+err.Error())
		return
	}
	if renewed.Hash() != old.Hash() {
		cache.Remove([]string{old.Hash()})
	}
}

func (a *acmeCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	magic := a.magic.Load()
	if magic == nil {
		return nil, errNoCertificate
	}
	return magic.GetCertificate(hello)
}

func (a *acmeCerts) handleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	issuer := a.issuer.Load()
	if issuer == nil {
		return false
	}
	return issuer.HandleHTTPChallenge(w, r)
}

func (a *acmeCerts) httpChallengeAnswer(host, path string) (string, bool) {
	if issuer := a.issuer.Load(); issuer == nil || issuer.DisableHTTPChallenge {
		return "", false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	if !slices.Contains(a.domains, host) {
		return "", false // another name's challenge is not ours to answer
	}
	chal, ok := certmagic.GetACMEChallenge(host)
	if !ok || chal.Type != acme.ChallengeTypeHTTP01 || path != chal.HTTP01ResourcePath() {
		return "", false
	}
	return chal.KeyAuthorization, true
}

// onEvent turns certmagic's events into gatehouse's. It runs in the
// obtaining goroutine and must be quick.
func (a *acmeCerts) onEvent(ctx context.Context, event string, data map[string]any) error {
	domain, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtained":
		a.m.clearError(domain)
		typ, verb := telemetry.EventCertObtained, "obtained"
		if renewal {
			typ, verb = telemetry.EventCertRenewed, "renewed"
		}
		detail := fmt.Sprintf("%s: certificate %s from %s", domain, verb, a.cfg.Directory)
		if leaf := a.storedLeaf(ctx, data); leaf != nil {
			detail += fmt.Sprintf(", serial %x, valid until %s", leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		a.m.emit(typ, domain, "", detail)
	case "cert_failed":
		err, _ := data["error"].(error)
		msg := problemText(err)
		a.m.setError(domain, msg)
		verb, trigger := "obtaining", TriggerObtain
		if renewal {
			verb, trigger = "renewing", TriggerRenew
		}
		a.m.emitCause(telemetry.EventCertFailed, domain, trigger, failureCause(err),
			fmt.Sprintf("%s: %s the certificate from %s failed: %s", domain, verb, a.cfg.Directory, msg))
	}
	return nil
}

// failureCause classifies a failed order by its error's type: the CA's
// problem documents say nothing when the directory could not be reached
// over HTTPS at all.
func failureCause(err error) string {
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return CauseUnknownAuthority
	}
	return ""
}

// storedLeaf reads the certificate an event says was just stored.
func (a *acmeCerts) storedLeaf(ctx context.Context, data map[string]any) *x509.Certificate {
	key, _ := data["certificate_path"].(string)
	magic := a.magic.Load()
	if key == "" || magic == nil {
		return nil
	}
	b, err := magic.Storage.Load(ctx, key)
	if err != nil {
		return nil
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return leaf
}

// problemText is what the CA said (RFC 8555 asks clients to show a
// problem's detail), with the subproblems that name the identifier, or the
// error itself when it is not the CA's.
func problemText(err error) string {
	if err == nil {
		return "unknown error"
	}
	var p acme.Problem
	if !errors.As(err, &p) {
		return err.Error()
	}
	parts := []string{strings.TrimSpace(strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:") + ": " + p.Detail)}
	for _, sp := range p.Subproblems {
		parts = append(parts, fmt.Sprintf("%s: %s", sp.Identifier.Value, sp.Detail))
	}
	return strings.Join(parts, "; ")
}

// status lists one entry per domain, with the newest certificate cached
// for it.
func (a *acmeCerts) status() []Status {
	out := make([]Status, 0, len(a.domains))
	for _, d := range a.domains {
		s := Status{Names: []string{d}, Managed: true}
		if leaf, names := a.cached(d); leaf != nil {
			s.Names = names
			fill(&s, leaf)
		}
		out = append(out, s)
	}
	return out
}

// cached is the newest managed certificate in the cache for domain.
func (a *acmeCerts) cached(domain string) (*x509.Certificate, []string) {
	cache := a.cache.Load()
	if cache == nil {
		return nil, nil
	}
	var best *x509.Certificate
	var names []string
	for _, c := range cache.AllMatchingCertificates(domain) {
		if c.Leaf == nil || !slices.Contains(c.Names, domain) {
			continue
		}
		if best == nil || c.Leaf.NotAfter.After(best.NotAfter) {
			best, names = c.Leaf, c.Names
		}
	}
	return best, names
}
