package gateway

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// upstream is the connection pool to one member. Each member has its own,
// so that its idle timeout can follow what that app told or taught us.
type upstream struct {
	tr   atomic.Pointer[http.Transport]
	idle atomic.Int64 // current idle timeout, ns
}

// connectTimeout bounds a TCP connect to an instance on loopback or a
// nearby upstream; past it the attempt is connect_timeout and retried.
const connectTimeout = 3 * time.Second

func newUpstream(idle time.Duration) *upstream {
	u := &upstream{}
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	u.tr.Store(&http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     idle,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		// Headers are bounded by request_timeout in the gateway.
		ResponseHeaderTimeout: 0,
	})
	u.idle.Store(int64(idle))
	return u
}

func (u *upstream) transport() *http.Transport { return u.tr.Load() }

// lowerIdle closes idle connections sooner than before: from now on they
// are closed after d. Only a shorter timeout is taken, so two observations
// cannot fight.
func (u *upstream) lowerIdle(d time.Duration) {
	if d <= 0 {
		return
	}
	for {
		cur := u.idle.Load()
		if int64(d) >= cur {
			return
		}
		if u.idle.CompareAndSwap(cur, int64(d)) {
			break
		}
	}
	old := u.tr.Load()
	nt := old.Clone()
	nt.IdleConnTimeout = d
	u.tr.Store(nt)
	old.CloseIdleConnections()
}

func (u *upstream) close() { u.tr.Load().CloseIdleConnections() }

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
