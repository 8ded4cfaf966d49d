package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// tlsDial is one check's TLS to an upstream: the config the gateway's
// connections use for it, and what the handshake showed.
type tlsDial struct {
	cfg   *tls.Config
	roots *x509.CertPool
	// asked: the upstream asked for a client certificate.
	asked bool
	// unverified is what is wrong with a certificate that
	// insecure_skip_verify let pass.
	unverified error
}

func newTLSDial(u *config.UpstreamTLS, addr string) *tlsDial {
	d := &tlsDial{cfg: upstreamtls.Config(u, addr), roots: u.Roots()}
	cc := u.ClientCertificate()
	d.cfg.Certificates = nil
	d.cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		// As crypto/tls chooses from Certificates, noting the request.
		d.asked = true
		if cc != nil && cri.SupportsCertificate(cc) == nil {
			return cc, nil
		}
		return &tls.Certificate{}, nil
	}
	if d.cfg.InsecureSkipVerify {
		name := d.cfg.ServerName
		d.cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			d.unverified = upstreamtls.Verify(cs, d.roots, name)
			return nil
		}
	}
	return d
}

// dial connects to addr and makes the connection TLS within ctx.
func (d *tlsDial) dial(ctx context.Context, addr string) (*tls.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return upstreamtls.Handshake(ctx, c, addr, d.cfg)
}

// client is an HTTP client over this check's TLS connection to addr,
// with base's rules.
func (d *tlsDial) client(addr string, base *http.Client) *http.Client {
	tr := &http.Transport{
		DisableKeepAlives:  true,
		DisableCompression: true,
		Proxy:              nil,
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.dial(ctx, addr)
		},
	}
	return &http.Client{Transport: tr, CheckRedirect: base.CheckRedirect}
}

// verdictWait bounds the wait for a TLS 1.3 server's verdict on the
// client certificate it asked for.
const verdictWait = 250 * time.Millisecond

// check is the probe of an upstream without a health path: a TLS
// handshake. A TLS 1.3 client's handshake ends before the server has
// checked the client certificate it asked for; a server that refuses it
// says so with an alert right after, one that accepts it sends its
// session tickets, so the probe reads a moment for either.
func (d *tlsDial) check(ctx context.Context, addr string) Result {
	tickets := &ticketWatch{}
	d.cfg.ClientSessionCache = tickets
	tc, err := d.dial(ctx, addr)
	if err != nil {
		return dialFailure(addr, err)
	}
	defer tc.Close()
	if d.asked && tc.ConnectionState().Version == tls.VersionTLS13 {
		wait := time.Now().Add(verdictWait)
		if dl, ok := ctx.Deadline(); ok && dl.Before(wait) {
			wait = dl
		}
		tickets.conn.Store(tc)
		tc.SetReadDeadline(wait)
		var b [1]byte
		if _, err := tc.Read(b[:]); upstreamtls.Classify(err) == upstreamtls.ClientCertRefused {
			return Result{Detail: upstreamtls.Describe(err)}
		}
	}
	return Result{OK: true}
}

// ticketWatch is a session cache that keeps nothing (a probe tests a full
// handshake, as a new client would) and ends the wait for the verdict
// when a session ticket comes: crypto/tls stores one from within the read.
type ticketWatch struct{ conn atomic.Pointer[tls.Conn] }

func (w *ticketWatch) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (w *ticketWatch) Put(string, *tls.ClientSessionState) {
	if tc := w.conn.Load(); tc != nil {
		tc.SetReadDeadline(time.Unix(1, 0))
	}
}
