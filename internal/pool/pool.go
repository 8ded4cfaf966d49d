package pool

import (
	"fmt"
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

	queue    waitQueue
	maxQueue atomic.Int64
	// maxInflight is max_inflight: how many requests one member may have
	// at once; 0 means no limit.
	maxInflight atomic.Int64
	// limitHeld counts requests held while a member was routable: held
	// because every routable member was at maxInflight.
	limitHeld  atomic.Int64
	lastAccess atomic.Int64
	// wake receives a signal when a request finds the app unloaded.
	wake     chan struct{}
	unloaded atomic.Bool
	// cannotStart is, per instance id, why it cannot start at all
	// (SetCannotStart); guarded by mu.
	cannotStart map[string]string
	// lastExit is the last exit of an instance's process (NoteExit),
	// for Describe once no member is left; guarded by mu.
	lastExit exitNote
}

// exitNote is an instance's exit, as Describe tells it.
type exitNote struct {
	id, detail string
	at         time.Time
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

// MaxQueue is the hold queue's bound.
func (p *Pool) MaxQueue() int { return int(p.maxQueue.Load()) }

// SetMaxInflight changes how many requests one member may have at once
// (max_inflight; 0: no limit), at start and on reload. Held requests are
// woken, so that a raised limit lets them go at once.
func (p *Pool) SetMaxInflight(n int) {
	p.maxInflight.Store(int64(n))
	p.changed()
}

// MaxInflight is the per-member limit of requests in flight; 0: none.
func (p *Pool) MaxInflight() int { return int(p.maxInflight.Load()) }

// LimitHeld is how many requests were held because every routable member
// was at its max_inflight, since the pool was made.
func (p *Pool) LimitHeld() int64 { return p.limitHeld.Load() }

// Saturated reports whether the pool has routable members and every one of
// them is at max_inflight: a request held now waits for a slot, not for an
// instance to become ready.
func (p *Pool) Saturated() (ready int, saturated bool) {
	limit := p.maxInflight.Load()
	for _, m := range *p.snap.Load() {
		if !m.Routable() {
			continue
		}
		ready++
		if limit <= 0 || m.inflight.Load() < limit {
			return ready, false
		}
	}
	return ready, ready > 0
}

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
	m.removed.Store(true)
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
// ties broken round-robin, preferring members not in tried, and skipping
// members at max_inflight. It returns nil when no member is routable and
// below its limit. The caller must Release the member.
func (p *Pool) Pick(tried []*Member) *Member { return p.PickExcept(tried, nil) }

// PickExcept is Pick that never returns a member in except: for a retry,
// the members that cut the request off, which a probe that passed a
// moment ago may show routable still.
func (p *Pool) PickExcept(tried, except []*Member) *Member {
	members := *p.snap.Load()
	n := len(members)
	if n == 0 {
		return nil
	}
	start := int(p.rr.Add(1)) % n
	limit := p.maxInflight.Load()
	for {
		best, load := pick(members, start, tried, except, limit)
		if best == nil {
			return nil
		}
		if limit <= 0 {
			best.inflight.Add(1)
			return best
		}
		// With a limit the slot is claimed only if the count is still the
		// one seen: two requests must not both take a member's last slot.
		if best.inflight.CompareAndSwap(load, load+1) {
			return best
		}
	}
}

// pick chooses Pick's member and the load it saw, without claiming it.
func pick(members []*Member, start int, tried, except []*Member, limit int64) (*Member, int64) {
	n := len(members)
	var best *Member
	var bestLoad int64
	bestTried := true
	for i := 0; i < n; i++ {
		m := members[(start+i)%n]
		if !m.Routable() || except != nil && contains(except, m) {
			continue
		}
		load := m.inflight.Load()
		if limit > 0 && load >= limit {
			continue
		}
		wasTried := contains(tried, m)
		if best == nil || (bestTried && !wasTried) || (bestTried == wasTried && load < bestLoad) {
			best, bestLoad, bestTried = m, load, wasTried
		}
	}
	return best, bestLoad
}

func (p *Pool) isMember(m *Member) bool { return contains(*p.snap.Load(), m) }

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
func (p *Pool) Touch() { p.TouchAt(time.Now()) }

// TouchAt records a request's arrival at t, a time its caller read (or
// one under way until t).
func (p *Pool) TouchAt(t time.Time) { p.lastAccess.Store(t.UnixNano()) }

// LastAccess is when a request last arrived or was last seen under way,
// or a member last became ready, whichever came latest.
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
// signals Wake. Requests held already are woken to signal it too: one
// queued as the unload began (no member routable, the app not yet marked
// unloaded) would otherwise wait out its hold for a wake nobody asked.
func (p *Pool) SetUnloaded(v bool) {
	p.unloaded.Store(v)
	if v {
		p.queue.releaseAll()
	}
}

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

// SetCannotStart records that instance id cannot start at all, and why
// (with the fix), or with why "" that it may again (it was restarted,
// stopped, replaced). Held requests are woken to see it: while some
// instance cannot start and no member is starting or up, a request gets
// ErrCannotStart at once instead of waiting out hold_timeout.
func (p *Pool) SetCannotStart(id, why string) {
	p.mu.Lock()
	if p.cannotStart[id] == why {
		p.mu.Unlock()
		return // nothing changed: no held request to wake
	}
	if why == "" {
		delete(p.cannotStart, id)
	} else {
		if p.cannotStart == nil {
			p.cannotStart = map[string]string{}
		}
		p.cannotStart[id] = why
	}
	p.mu.Unlock()
	p.queue.releaseAll()
}

// CannotStart is why no member can become routable (SetCannotStart), or
// "" while one may: some member is starting, ready or unhealthy, or no
// instance said it cannot start.
func (p *Pool) CannotStart() string {
	for _, m := range p.Members() {
		switch m.State() {
		case Starting, Ready, Unhealthy:
			return ""
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	why := ""
	for id := range p.cannotStart {
		// The lowest id, so that the answer does not change from one
		// request to the next.
		if why == "" || id < why {
			why = id
		}
	}
	if why == "" {
		return ""
	}
	return p.cannotStart[why]
}

// Problem is the first member's known problem (Member.Problem), or "".
func (p *Pool) Problem() string {
	for _, m := range p.Members() {
		if s := m.Problem(); s != "" {
			return s
		}
	}
	return ""
}

// NoteExit records that instance id's process exited at at (detail: how,
// "exit code 1"), which its member's removal leaves Describe no other
// way to tell.
func (p *Pool) NoteExit(id, detail string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastExit = exitNote{id: id, detail: detail, at: at}
}

// Describe says, for people, what state each member is in and why: the
// body of a 503 after a hold.
func (p *Pool) Describe() string {
	members := p.Members()
	if len(members) == 0 {
		if p.Unloaded() {
			return "the app is unloaded for idleness and is starting"
		}
		p.mu.Lock()
		last := p.lastExit
		p.mu.Unlock()
		if last.id == "" {
			return "no instance is running (crashed or restarting)"
		}
		// The crash that left none, so that the answer names it: a crash
		// loop's cause is in the exit, not in "restarting".
		s := "no instance is running (crashed or restarting); the last exit: " + last.id + " " + last.detail
		if !last.at.IsZero() {
			s += fmt.Sprintf(", %s ago", time.Since(last.at).Round(100*time.Millisecond))
		}
		return s
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
