// Package acmetest runs a real ACME CA inside a test: Let's Encrypt's
// Pebble (its CA, VA and WFE packages, not a fake), with a DNS server on
// loopback that the VA resolves the test's host names with. Issuance is
// real: the VA fetches HTTP-01 tokens and makes TLS-ALPN-01 handshakes on
// the ports the test gives it.
//
// It lives apart from testutil so that the packages that never speak
// ACME do not compile Pebble into their tests.
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/dnstest"
)

// IgnoreGoroutines are the goleak options for a package whose tests speak
// ACME: goroutines that live on past the test and that nobody can stop.
// Pebble's VA has a task loop; certmagic keeps a rate limiter per CA and
// account for the life of the process, and refreshes each lock file from
// a goroutine that notices the lock's release up to 5 s later.
var IgnoreGoroutines = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"),
	goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"),
	goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
}

// Options configure StartPebble.
type Options struct {
	// HTTPPort and TLSPort are where the VA connects (on the address the
	// DNS server answers) to check HTTP-01 and TLS-ALPN-01 challenges:
	// the ports of the plain and the HTTPS listener under test.
	HTTPPort, TLSPort int
	// Validity is the lifetime of the certificates issued; default 90
	// days. Whole seconds.
	Validity time.Duration
}

// Pebble is a running CA. It stops when the test ends.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// DirectoryRootsFile is a PEM file holding the certificate the
	// directory's HTTPS is served with: what acme.ca_roots names.
	DirectoryRootsFile string

	ca     *ca.CAImpl
	dns    *dnsServer
	orders atomic.Int64
}

// StartPebble starts Pebble and its DNS server, which answers A 127.0.0.1
// for every name until SetAddress changes it. It sets PEBBLE_VA_NOSLEEP
// (validation at once) and PEBBLE_AUTHZREUSE=0 (every order is validated
// anew) for the rest of the process, which only Pebble reads, so that
// tests that each start a Pebble may run in parallel. Pebble's default
// of rejecting 5% of nonces is kept: clients must retry them.
func StartPebble(t testing.TB, opts Options) *Pebble {
	t.Helper()
	pebbleEnv()
	logs := &testutil.LockedBuffer{} // Pebble's goroutines write to it after the test may have ended
	logger := log.New(logs, "pebble ", log.Lmicroseconds)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Pebble's log:\n%s", logs.Tail(16<<10))
		}
	})

	p := &Pebble{dns: startDNS(t)}
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {
		Description:    "the test's profile",
		ValidityPeriod: uint64(opts.Validity / time.Second), // 0: Pebble's default, 90 days
	}}
	// ECDSA keys: the CA's RSA key generation is slow on a busy machine.
	p.ca = ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	v := va.New(logger, opts.HTTPPort, opts.TLSPort, false, p.dns.addr, store)
	w := wfe.New(logger, store, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	handler := w.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		handler.ServeHTTP(rw, r)
	}))
	srv.Config.ErrorLog = logger
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.Directory = srv.URL + wfe.DirectoryPath

	p.DirectoryRootsFile = filepath.Join(t.TempDir(), "pebble-directory.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p.DirectoryRootsFile, block, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var pebbleEnv = sync.OnceFunc(func() {
	os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	os.Setenv("PEBBLE_AUTHZREUSE", "0")
})

// Roots is the pool of Pebble's issuing root, to verify the certificates
// it issued.
func (p *Pebble) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

// RootsPEM is Pebble's issuing root in PEM, for a client outside the test
// (curl --cacert).
func (p *Pebble) RootsPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.GetRootCert(0).Cert.Raw})
}

// SetAddress makes the DNS server answer ip (an IPv4 address) for every
// name from now on; "" makes every name unknown (NXDOMAIN).
func (p *Pebble) SetAddress(ip string) { p.dns.answer.Store(&ip) }

// Orders is how many new orders clients have sent (rejected nonces
// included), to tell a reused certificate from a new one.
func (p *Pebble) Orders() int { return int(p.orders.Load()) }

// dnsServer answers every A question with one address, over UDP and TCP
// on the same loopback port (Pebble's VA asks over TCP).
type dnsServer struct {
	addr   string
	answer atomic.Pointer[string]
}

func startDNS(t testing.TB) *dnsServer {
	t.Helper()
	d := &dnsServer{}
	local := "127.0.0.1"
	d.answer.Store(&local)
	d.addr = dnstest.Serve(t, d)
	return d
}

func (d *dnsServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	ip := net.ParseIP(*d.answer.Load()).To4()
	if ip == nil {
		m.Rcode = dns.RcodeNameError
	}
	for _, q := range req.Question {
		if q.Qtype == dns.TypeA && ip != nil {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
				A:   ip,
			})
		}
	}
	w.WriteMsg(m)
}
