package upstream

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

	mu     sync.Mutex
	free   []*Conn // LIFO: the warmest connection is reused first
	closed bool
	sweep  *time.Timer
}

// ConnectTimeout bounds a TCP connect to an instance on loopback or a
// nearby upstream; past it the attempt is connect_timeout and retried.
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

// get returns a quiet idle connection, or dials a new one.
func (p *Pool) get(ctx context.Context) (pc *Conn, reused bool, idleFor time.Duration, err error) {
	now := time.Now()
	idle := time.Duration(p.idle.Load())
	for {
		pc = p.take()
		if pc == nil {
			break
		}
		idleFor = now.Sub(pc.idleSince)
		if idleFor < idle && pc.quiet() {
			return pc, true, idleFor, nil
		}
		pc.Close()
	}
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, 0, err
	}
	return newConn(p, c), false, 0, nil
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

// CloseBefore is when to close an idle connection that the app closes
// after t: a margin early, so the app never closes one we are about to use.
func CloseBefore(t time.Duration) time.Duration {
	margin := min(time.Second, t/2)
	return t - margin
}
