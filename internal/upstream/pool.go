package upstream

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// Pool is the pool of keep-alive connections to one member. It is
// purpose-built rather than an http.Transport: a request is written and its
// response read on the request's own goroutine, with no hand-off to
// per-connection reader and writer goroutines, and idle connections expire
// lazily, without a timer per connection.
type Pool struct {
	addr   string
	dialer net.Dialer
	idle   atomic.Int64 // idle timeout, ns
	// tls, when set, is the client config every new connection's TLS
	// handshake uses (an external pool with upstream_tls:).
	tls *tls.Config

	mu     sync.Mutex
	free   []*Conn // LIFO: the warmest connection is reused first
	closed bool
	sweep  *time.Timer
}

// ConnectTimeout bounds a TCP connect to an instance on loopback or a
// nearby upstream, and then a TLS handshake; past it the attempt is
// connect_timeout and retried.
const ConnectTimeout = 3 * time.Second

// maxIdle bounds the idle connections kept per member.
const maxIdle = 1024

// NewPool returns the pool of connections to addr, closing idle ones after
// idle.
func NewPool(addr string, idle time.Duration) *Pool {
	p := &Pool{addr: addr, dialer: net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second}}
	p.idle.Store(int64(idle))
	return p
}

// NewTLSPool returns the pool of TLS connections to addr made with c
// (upstreamtls.Config), closing idle ones after idle. Sessions are resumed
// from one connection to the next.
func NewTLSPool(addr string, idle time.Duration, c *tls.Config) *Pool {
	p := NewPool(addr, idle)
	p.tls = c.Clone()
	if p.tls.ClientSessionCache == nil {
		p.tls.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	return p
}

// get returns a quiet idle connection, or dials a new one; now is the
// time it is asked at.
func (p *Pool) get(ctx context.Context, now time.Time) (pc *Conn, reused bool, idleFor time.Duration, err error) {
	idle := time.Duration(p.idle.Load())
	for {
		pc = p.take()
		if pc == nil {
			break
		}
		idleFor = now.Sub(pc.idleSince)
		if idleFor < idle {
			quiet, closed := pc.quiet()
			if quiet {
				return pc, true, idleFor, nil
			}
			if closed && idleFor >= learnFloor {
				// The app closed it while it sat here: its idle
				// timeout is at most idleFor. Closing ours sooner
				// keeps the next request from crossing the app's
				// close on the wire, where a request cut off is not
				// known to be unread.
				p.LowerIdle(CloseBefore(idleFor))
			}
		}
		pc.Close()
	}
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, 0, err
	}
	if p.tls != nil {
		pc, err = p.handshake(ctx, c)
		return pc, false, 0, err
	}
	return newConn(p, c, c), false, 0, nil
}

// handshake makes a new connection TLS, within ConnectTimeout. A failure
// is an *upstreamtls.HandshakeError: no request was sent, so the attempt
// may be retried whatever its method (cause upstream_tls, or
// connect_timeout for a handshake that took too long).
func (p *Pool) handshake(ctx context.Context, c net.Conn) (*Conn, error) {
	c.SetDeadline(time.Now().Add(ConnectTimeout))
	tc, err := upstreamtls.Handshake(ctx, c, p.addr, p.tls)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return newConn(p, tc, c), nil
}

// take removes the newest idle connection.
func (p *Pool) take() *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		return nil
	}
	pc := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	return pc
}

// put returns a connection whose exchange ended cleanly.
func (p *Pool) put(pc *Conn) {
	pc.idleSince = time.Now()
	p.mu.Lock()
	if p.closed || len(p.free) >= maxIdle {
		p.mu.Unlock()
		pc.Close()
		return
	}
	p.free = append(p.free, pc)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(time.Duration(p.idle.Load()), p.expire)
	}
	p.mu.Unlock()
}

// expire closes connections idle past the timeout, and re-arms while any
// remain.
func (p *Pool) expire() {
	idle := time.Duration(p.idle.Load())
	now := time.Now()
	cutoff := now.Add(-idle)
	p.mu.Lock()
	var stale []*Conn
	kept := p.free[:0]
	oldest := now
	for _, pc := range p.free {
		if pc.idleSince.Before(cutoff) {
			stale = append(stale, pc)
			continue
		}
		if pc.idleSince.Before(oldest) {
			oldest = pc.idleSince
		}
		kept = append(kept, pc)
	}
	clear(p.free[len(kept):])
	p.free = kept
	p.sweep = nil
	if len(p.free) > 0 && !p.closed {
		next := time.Until(oldest.Add(idle))
		p.sweep = time.AfterFunc(max(next, 10*time.Millisecond), p.expire)
	}
	p.mu.Unlock()
	for _, pc := range stale {
		pc.Close()
	}
}

// LowerIdle closes idle connections sooner from now on: after d. Only a
// shorter timeout is taken, so two observations cannot fight.
func (p *Pool) LowerIdle(d time.Duration) {
	for {
		cur := p.idle.Load()
		if d <= 0 || int64(d) >= cur {
			return
		}
		if p.idle.CompareAndSwap(cur, int64(d)) {
			p.mu.Lock()
			if p.sweep != nil {
				p.sweep.Stop() // expire arms the next one: one chain only
				p.sweep = nil
			}
			p.mu.Unlock()
			p.expire()
			return
		}
	}
}

// Close closes every idle connection; connections in use close when their
// exchange ends.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	free := p.free
	p.free = nil
	if p.sweep != nil {
		p.sweep.Stop()
	}
	p.mu.Unlock()
	for _, pc := range free {
		pc.Close()
	}
}

// KeepAliveTimeout parses "Keep-Alive: timeout=5, max=100" (RFC 9112 §9.8
// leaves it to HTTP/1.0, but Node and others send it).
func KeepAliveTimeout(h http.Header) time.Duration {
	v := h.Get("Keep-Alive")
	if v == "" {
		return 0
	}
	for part := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(k, "timeout") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 0
}

// learnFloor is the shortest idle time an app's close of an idle
// connection is taken to be its idle timeout from: a close sooner after
// an answer is a connection the app ends for another reason (a worker
// recycled, a cap on its requests), and learning from it would end
// reuse under load.
const learnFloor = time.Second

// CloseBefore is when to close an idle connection that the app closes
// after t: a margin early, so the app never closes one we are about to use.
func CloseBefore(t time.Duration) time.Duration {
	margin := min(time.Second, t/2)
	return t - margin
}
