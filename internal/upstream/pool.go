package gateway

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

// upstream is the pool of keep-alive connections to one member. It is
// purpose-built rather than an http.Transport: a request is written and its
// response read on the request's own goroutine, with no hand-off to
// per-connection reader and writer goroutines, and idle connections expire
// lazily, without a timer per connection.
type upstream struct {
	addr   string
	dialer net.Dialer
	idle   atomic.Int64 // idle timeout, ns

	mu     sync.Mutex
	free   []*pconn // LIFO: the warmest connection is reused first
	closed bool
	sweep  *time.Timer
}

// connectTimeout bounds a TCP connect to an instance on loopback or a
// nearby upstream; past it the attempt is connect_timeout and retried.
const connectTimeout = 3 * time.Second

// maxIdle bounds the idle connections kept per member.
const maxIdle = 1024

// checkAfter is how long a connection must have been idle before it is
// checked for a close by the app before reuse. Under load connections are
// reused within microseconds, and no app closes one that fast.
const checkAfter = 50 * time.Millisecond

func newUpstream(addr string, idle time.Duration) *upstream {
	u := &upstream{addr: addr, dialer: net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}}
	u.idle.Store(int64(idle))
	return u
}

// get returns a live idle connection, or dials a new one.
func (u *upstream) get(ctx context.Context) (pc *pconn, reused bool, idleFor time.Duration, err error) {
	now := time.Now()
	idle := time.Duration(u.idle.Load())
	for {
		u.mu.Lock()
		n := len(u.free)
		if n == 0 {
			u.mu.Unlock()
			break
		}
		pc = u.free[n-1]
		u.free[n-1] = nil
		u.free = u.free[:n-1]
		u.mu.Unlock()
		idleFor = now.Sub(pc.idleSince)
		if idleFor < idle && pc.br.Buffered() == 0 && (idleFor < checkAfter || pc.alive()) {
			return pc, true, idleFor, nil
		}
		pc.close()
	}
	c, err := u.dialer.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, false, 0, err
	}
	return newPconn(c), false, 0, nil
}

// put returns a connection whose exchange ended cleanly.
func (u *upstream) put(pc *pconn) {
	pc.idleSince = time.Now()
	u.mu.Lock()
	if u.closed || len(u.free) >= maxIdle {
		u.mu.Unlock()
		pc.close()
		return
	}
	u.free = append(u.free, pc)
	if u.sweep == nil {
		u.sweep = time.AfterFunc(time.Duration(u.idle.Load()), u.expire)
	}
	u.mu.Unlock()
}

// expire closes connections idle past the timeout, oldest first (the
// bottom of the stack), and re-arms while any remain.
func (u *upstream) expire() {
	idle := time.Duration(u.idle.Load())
	cutoff := time.Now().Add(-idle)
	u.mu.Lock()
	i := 0
	for i < len(u.free) && u.free[i].idleSince.Before(cutoff) {
		i++
	}
	stale := append([]*pconn(nil), u.free[:i]...)
	u.free = append(u.free[:0], u.free[i:]...)
	u.sweep = nil
	if len(u.free) > 0 && !u.closed {
		next := time.Until(u.free[0].idleSince.Add(idle))
		u.sweep = time.AfterFunc(max(next, 10*time.Millisecond), u.expire)
	}
	u.mu.Unlock()
	for _, pc := range stale {
		pc.close()
	}
}

// lowerIdle closes idle connections sooner from now on: after d. Only a
// shorter timeout is taken, so two observations cannot fight.
func (u *upstream) lowerIdle(d time.Duration) {
	for {
		cur := u.idle.Load()
		if d <= 0 || int64(d) >= cur {
			return
		}
		if u.idle.CompareAndSwap(cur, int64(d)) {
			u.expire()
			return
		}
	}
}

// close closes every idle connection; connections in use close when their
// exchange ends.
func (u *upstream) close() {
	u.mu.Lock()
	u.closed = true
	free := u.free
	u.free = nil
	if u.sweep != nil {
		u.sweep.Stop()
	}
	u.mu.Unlock()
	for _, pc := range free {
		pc.close()
	}
}

// keepAliveTimeout parses "Keep-Alive: timeout=5, max=100" (RFC 9112 §9.8
// leaves it to HTTP/1.0, but Node and others send it).
func keepAliveTimeout(h http.Header) time.Duration {
	v := h.Get("Keep-Alive")
	if v == "" {
		return 0
	}
	for _, part := range strings.Split(v, ",") {
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

// closeBefore is when to close an idle connection that the app closes
// after t: a margin early, so the app never closes one we are about to use.
func closeBefore(t time.Duration) time.Duration {
	margin := min(time.Second, t/2)
	return t - margin
}
