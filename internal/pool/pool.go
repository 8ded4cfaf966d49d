package pool

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is one app's set of members and its hold queue.
type Pool struct {
	// App is the app's name.
	App string

	mu      sync.Mutex
	members []*Member
	// snap is an immutable copy of members, read without locks on the hot
	// path.
	snap atomic.Pointer[[]*Member]
	rr   atomic.Uint32

	queue      waitQueue
	maxQueue   atomic.Int64
	lastAccess atomic.Int64
	// wake receives a signal when a request finds the app unloaded.
	wake     chan struct{}
	unloaded atomic.Bool
}

// New returns an empty pool for app with a hold queue of at most maxQueue
// requests.
func New(app string, maxQueue int) *Pool {
	p := &Pool{App: app, wake: make(chan struct{}, 1)}
	p.maxQueue.Store(int64(maxQueue))
	p.snap.Store(&[]*Member{})
	p.lastAccess.Store(time.Now().UnixNano())
	return p
}

// SetMaxQueue changes the hold queue's bound (on reload).
func (p *Pool) SetMaxQueue(n int) { p.maxQueue.Store(int64(n)) }

// Add puts m into the pool. It receives requests once it is Ready.
func (p *Pool) Add(m *Member) {
	p.mu.Lock()
	m.pool = p
	p.members = append(p.members, m)
	p.publishLocked()
	p.mu.Unlock()
	p.changed()
}

// Remove takes m out of the pool.
func (p *Pool) Remove(m *Member) {
	p.mu.Lock()
	for i, x := range p.members {
		if x == m {
			p.members = append(p.members[:i:i], p.members[i+1:]...)
			break
		}
	}
	p.publishLocked()
	p.mu.Unlock()
	if f := m.onRemove.Load(); f != nil {
		(*f)()
	}
}

func (p *Pool) publishLocked() {
	s := make([]*Member, len(p.members))
	copy(s, p.members)
	p.snap.Store(&s)
}

// Members returns the current members; the slice must not be modified.
func (p *Pool) Members() []*Member { return *p.snap.Load() }

// Pick returns the routable member with the fewest in-flight requests,
// ties broken round-robin, preferring members not in tried. It returns nil
// when no member is routable. The caller must Release the member.
func (p *Pool) Pick(tried []*Member) *Member {
	members := *p.snap.Load()
	n := len(members)
	if n == 0 {
		return nil
	}
	start := int(p.rr.Add(1)) % n
	var best *Member
	var bestLoad int64
	bestTried := true
	for i := 0; i < n; i++ {
		m := members[(start+i)%n]
		if !m.Routable() {
			continue
		}
		wasTried := contains(tried, m)
		load := m.inflight.Load()
		if best == nil || (bestTried && !wasTried) || (bestTried == wasTried && load < bestLoad) {
			best, bestLoad, bestTried = m, load, wasTried
		}
	}
	if best != nil {
		best.inflight.Add(1)
	}
	return best
}

func contains(ms []*Member, m *Member) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// changed wakes held requests when a member may have become routable.
func (p *Pool) changed() {
	if p.hasRoutable() {
		p.queue.releaseAll()
	}
}

func (p *Pool) hasRoutable() bool {
	for _, m := range *p.snap.Load() {
		if m.Routable() {
			return true
		}
	}
	return false
}

// Touch records a request's arrival, for idle unload.
func (p *Pool) Touch() { p.lastAccess.Store(time.Now().UnixNano()) }

// LastAccess is when the last request arrived.
func (p *Pool) LastAccess() time.Time { return time.Unix(0, p.lastAccess.Load()) }

// Inflight sums the in-flight requests of all members.
func (p *Pool) Inflight() int64 {
	var n int64
	for _, m := range *p.snap.Load() {
		n += m.inflight.Load()
	}
	return n
}

// SetUnloaded marks the app as stopped for idleness; the next request
// signals Wake.
func (p *Pool) SetUnloaded(v bool) { p.unloaded.Store(v) }

// Unloaded reports whether the app is stopped for idleness.
func (p *Pool) Unloaded() bool { return p.unloaded.Load() }

// Wake delivers wake-up requests for an unloaded app to the supervisor.
func (p *Pool) Wake() <-chan struct{} { return p.wake }

func (p *Pool) signalWake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Waiting is the number of held requests.
func (p *Pool) Waiting() int { return p.queue.len() }

// Describe says, for people, what state each member is in and why: the
// body of a 503 after a hold.
func (p *Pool) Describe() string {
	members := p.Members()
	if len(members) == 0 {
		if p.Unloaded() {
			return "the app is unloaded for idleness and is starting"
		}
		return "no instance is running (crashed or restarting)"
	}
	parts := make([]string, 0, len(members))
	for _, m := range members {
		s := m.ID + " " + m.State().String()
		if since := m.Since(); !since.IsZero() {
			// A member whose state time was never set has no duration to
			// show (from the zero time it would read "for 498939h").
			s += " for " + time.Since(since).Round(100*time.Millisecond).String()
		}
		if m.Ejected() {
			s += " (ejected after a connection failure)"
		}
		if n := m.Note(); n != "" {
			s += ": " + n
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
