package trust

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/gatehouse/gatehouse/internal/config"
)

// ProxyProtocol wraps a public listener for cfg's proxy_protocol: ln
// itself when it is off, else ProxyProtocolListener with trusted_proxies
// and config.DefaultProxyProtocolTimeout.
func ProxyProtocol(ln net.Listener, cfg *config.Config) net.Listener {
	if !cfg.ProxyProtocol {
		return ln
	}
	return ProxyProtocolListener(ln, New(cfg.TrustedPrefixes()), config.DefaultProxyProtocolTimeout)
}

// ProxyProtocolListener reads a PROXY protocol header (v1 or v2) from the
// connections of trusted proxies, and then gives the address the header
// names as the connection's RemoteAddr. The header is required from a
// trusted proxy (a connection without one fails its first read and is
// closed: a load balancer's traffic is never taken for its own), and
// refused from anyone else (the first read fails), whose connection
// without a header is served as it is. Never guessing, and never
// believing a header from an untrusted peer, is what the protocol's
// specification asks of a receiver.
//
// The header must arrive within timeout. It is read on the first Read or
// RemoteAddr of the connection, not in Accept: the caller asks for the
// address on the connection's own goroutine, or a silent client would
// hold up accepting everyone else.
//
// A LOCAL header (a load balancer's own health check) keeps the peer's
// address. A header that names no TCP source (UNKNOWN, or a UDP or Unix
// one) is refused, unless it is UNSPEC (UNKNOWN in v1), which keeps the
// peer's address as LOCAL does but marks the client unknown
// (conn.ClientUnknown).
func ProxyProtocolListener(ln net.Listener, p *Proxies, timeout time.Duration) net.Listener {
	return &listener{Listener: &proxyproto.Listener{
		Listener:          ln,
		ConnPolicy:        p.policy,
		ValidateHeader:    validHeader,
		ReadHeaderTimeout: timeout,
	}}
}

// policy requires a header from a trusted proxy and rejects one from
// anyone else. An address that cannot be classified is refused with
// ErrInvalidUpstream, which closes that connection only.
func (p *Proxies) policy(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
	ap, err := netip.ParseAddrPort(o.Upstream.String())
	if err != nil {
		return proxyproto.REJECT, fmt.Errorf("%w: %w", proxyproto.ErrInvalidUpstream, err)
	}
	if p.Contains(ap.Addr()) {
		return proxyproto.REQUIRE, nil
	}
	return proxyproto.REJECT, nil
}

// errNotTCP: a PROXY header names a source that is not a TCP address.
var errNotTCP = errors.New("PROXY header: the source is not a TCP address")

func validHeader(h *proxyproto.Header) error {
	if h.Command.IsLocal() || h.TransportProtocol == proxyproto.UNSPEC {
		return nil
	}
	if _, _, ok := h.TCPAddrs(); !ok {
		return errNotTCP
	}
	return nil
}

type listener struct{ *proxyproto.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if pc, ok := c.(*proxyproto.Conn); ok {
		return &conn{Conn: pc}, nil
	}
	return c, nil
}

// conn is a connection whose PROXY header was read, or will be on the
// first read. It gives the front what it asks of a TCP connection: the
// socket to peek at (the header is read through a buffer that is empty
// again after the first read, so a look at the socket misses nothing) and
// CloseWrite.
type conn struct {
	*proxyproto.Conn
	// read: the header was processed; deadlines go to the socket
	// directly from then on (proxyproto stores each one for its header
	// read, in an atomic.Value, which allocates).
	read atomic.Bool
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.processed()
	return n, err
}

func (c *conn) RemoteAddr() net.Addr {
	a := c.Conn.RemoteAddr()
	c.processed()
	return a
}

func (c *conn) processed() {
	if !c.read.Load() {
		c.read.Store(true)
	}
}

func (c *conn) SetReadDeadline(t time.Time) error {
	if c.read.Load() {
		return c.Raw().SetReadDeadline(t)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	if c.read.Load() {
		return c.Raw().SetDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

// ClientUnknown reports whether the connection's PROXY header said the
// load balancer does not know the client (UNKNOWN, or an unspecified
// source): the peer is then the balancer, but nothing the client says of
// its origin may be believed as if the balancer had said it. It reads
// the header if that was not done yet.
func (c *conn) ClientUnknown() bool {
	h := c.Conn.ProxyHeader()
	c.processed()
	if h == nil || h.TransportProtocol != proxyproto.UNSPEC {
		return false
	}
	// v1 has no LOCAL: its UNKNOWN (which the library reads as LOCAL) is
	// the balancer not knowing; v2's PROXY with no address is too.
	return h.Version == 1 || !h.Command.IsLocal()
}

// SyscallConn is the socket's, for peeking at it.
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Raw().(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite half-closes the socket, as a lingering close does.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Raw().(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
