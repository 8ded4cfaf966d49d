package pool

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Member is one routable backend: an instance's port or an external
// upstream address.
type Member struct {
	// ID is the instance id ("web-1").
	ID string
	// Addr is host:port.
	Addr string

	pool  *Pool
	state atomic.Int32
	// ejection is passive ejection: bit 0 says the member is out of
	// rotation, the bits above count the ejections, so that a probe sent
	// before the latest one cannot bring the member back
	// (ClearEjectionSince).
	ejection atomic.Uint64
	// held counts the holds on the member (Hold): while any is on it
	// gets no new requests, whatever its state.
	held atomic.Int32
	// removed is set when the member leaves its pool (Pool.Remove).
	removed  atomic.Bool
	inflight atomic.Int64
	tunnels  atomic.Int64
	pid      atomic.Int64
	// kick asks the member's prober for an immediate probe.
	kick chan struct{}
	exit atomic.Pointer[Exit]
	// exitMu orders SetExit against OnExit: a watch registered before
	// the exit is told of it, one registered after finds it recorded.
	exitMu    sync.Mutex
	exitWatch []*exitWatch
	onRemove  atomic.Pointer[func()]
	note      atomic.Pointer[string]
	problem   atomic.Pointer[string]
	since     atomic.Int64

	// cutMu guards the current burst of cut-off attempts (CutOff).
	cutMu   sync.Mutex
	cutN    int
	cutLast time.Time
}

// OnRemove registers f to run when the member leaves its pool, so that
// whoever keeps resources for it (the gateway's connections) frees them.
// Only the last registration counts.
func (m *Member) OnRemove(f func()) { m.onRemove.Store(&f) }

// Exit records how the process behind a member ended.
type Exit struct {
	PID    int
	Detail string // "exited with code 3", "killed by SIGKILL"
	// Signal is the signal's name when the process was killed by one
	// ("SIGKILL"); "" when it exited.
	Signal string
	At     time.Time
	// Failed counts requests that failed because of this exit.
	Failed atomic.Int64
}

// NewMember returns a member in state Starting. It receives no requests
// until it is added to a pool and set Ready.
func NewMember(id, addr string) *Member {
	m := &Member{ID: id, Addr: addr, kick: make(chan struct{}, 1)}
	m.since.Store(time.Now().UnixNano()) // starting since now
	note := ""
	m.note.Store(&note)
	return m
}

// SetNote publishes the supervisor's latest health detail, so that a held
// request that times out can say what gatehouse saw.
func (m *Member) SetNote(s string) { m.note.Store(&s) }

// Note is the latest health detail.
func (m *Member) Note() string { return *m.note.Load() }

// SetProblem publishes what the supervisor knows for certain is wrong
// with the instance, with its fix ("" for nothing): the hint of the
// error page of a request no instance could take.
func (m *Member) SetProblem(s string) { m.problem.Store(&s) }

// Problem is the latest SetProblem's, or "".
func (m *Member) Problem() string {
	if p := m.problem.Load(); p != nil {
		return *p
	}
	return ""
}

// State is the member's current state.
func (m *Member) State() State { return State(m.state.Load()) }

// SetState publishes a new state. Only the supervisor calls it, along the
// transition table (CanTransition); any other change is reported as a
// programming error (CheckTransition) and made anyway. An ejection is not
// lifted by a state: only by a probe sent after it (ClearEjectionSince),
// as a member may be ejected again while the probe that makes it ready
// is out.
func (m *Member) SetState(s State) {
	if old := State(m.state.Swap(int32(s))); old != s {
		CheckTransition(m.ID, old, s)
		m.since.Store(time.Now().UnixNano())
		if m.pool != nil {
			if s == Ready {
				// An app's idle time runs from its instance's readiness
				// too, not only from the request that woke it: a slow
				// start must not use up idle_timeout.
				m.pool.Touch()
			}
			m.pool.changed()
		}
	}
}

// Removed reports whether the member has left its pool: its process is
// gone or no longer this gatehouse's.
func (m *Member) Removed() bool { return m.removed.Load() }

// Since is when the member entered its current state; the zero time if
// that was never recorded.
func (m *Member) Since() time.Time {
	ns := m.since.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Inflight is the number of requests currently using the member.
func (m *Member) Inflight() int64 { return m.inflight.Load() }

// TunnelOpened counts a tunnel (a conversation the app switched to with
// 101, such as a WebSocket) that opened through the member; its request
// stays in flight until TunnelClosed.
func (m *Member) TunnelOpened() { m.tunnels.Add(1) }

// TunnelClosed counts a tunnel's end.
func (m *Member) TunnelClosed() { m.tunnels.Add(-1) }

// Tunnels is the number of tunnels open through the member: of Inflight,
// those that are a conversation rather than a request.
func (m *Member) Tunnels() int64 { return m.tunnels.Load() }

// Requests is the number of requests in flight on the member that will
// end: Inflight less its tunnels, which end when a side does. A drain
// waits for these.
func (m *Member) Requests() int64 { return m.inflight.Load() - m.tunnels.Load() }

// Take counts a request on the member, as Pick does on the member it
// returns, if the member may receive requests (Routable) and is below the
// pool's max_inflight, and reports whether it did; the caller must then
// Release it. It is how the gateway sends a client to the member its
// affinity cookie names: a member that is starting, draining, unhealthy,
// ejected, gone or busy at its limit takes no request, so the client goes
// to another (or waits in the hold queue with the others).
func (m *Member) Take() bool {
	if !m.Routable() {
		return false
	}
	if p := m.pool; p != nil {
		if limit := p.maxInflight.Load(); limit > 0 {
			return m.takeBelow(limit)
		}
	}
	m.inflight.Add(1)
	return true
}

// takeBelow counts a request on the member if it has fewer than limit.
func (m *Member) takeBelow(limit int64) bool {
	for {
		n := m.inflight.Load()
		if n >= limit {
			return false
		}
		if m.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release ends one request's use of the member. Under max_inflight the
// slot goes straight to the oldest held request, if any (Pool.release).
// (A request's end is the app's last access too, for idle_timeout: the
// idle watcher, which sees it under way, counts it, off this path.)
func (m *Member) Release() {
	if p := m.pool; p != nil && p.maxInflight.Load() > 0 {
		p.release(m)
		return
	}
	m.inflight.Add(-1)
}

// SetPID records the process behind the member, for crash attribution.
func (m *Member) SetPID(pid int) { m.pid.Store(int64(pid)) }

// PID is the process behind the member, 0 for external upstreams.
func (m *Member) PID() int { return int(m.pid.Load()) }

// Routable reports whether the member may receive new requests. A member
// that left its pool takes none, whatever its state: one a handover left
// is removed still ready, and a request that found it before (through its
// affinity cookie) must not be sent to it, nor make it a connection pool
// that its removal, already past, would never close.
func (m *Member) Routable() bool {
	return m.State() == Ready && !m.Ejected() && m.held.Load() == 0 && !m.removed.Load()
}

// Hold takes the member out of rotation, without a change of state, until
// release is called: a process about to be paused (a dump) takes no new
// requests while the ones in flight finish. Holds nest; release is
// idempotent.
func (m *Member) Hold() (release func()) {
	m.held.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			if m.held.Add(-1) == 0 && m.pool != nil {
				m.pool.changed()
			}
		})
	}
}

// Held reports whether a hold keeps the member out of rotation.
func (m *Member) Held() bool { return m.held.Load() > 0 }

// Eject takes the member out of rotation after a connection failure and
// asks for an immediate probe; the probe's success brings it back.
func (m *Member) Eject() {
	for {
		old := m.ejection.Load()
		if m.ejection.CompareAndSwap(old, (old|1)+2) {
			if old&1 == 0 {
				m.Kick()
			}
			return
		}
	}
}

// Ejected reports whether passive ejection holds the member out.
func (m *Member) Ejected() bool { return m.ejection.Load()&1 != 0 }

// EjectionMark is taken before a probe is sent: the probe's pass may lift
// only the ejections made before it (ClearEjectionSince).
func (m *Member) EjectionMark() uint64 { return m.ejection.Load() >> 1 }

// ClearEjection brings an ejected member back, whatever its ejections.
func (m *Member) ClearEjection() { m.ClearEjectionSince(m.EjectionMark()) }

// ClearEjectionSince brings an ejected member back after a passing probe
// sent when EjectionMark was mark: not if the member was ejected again
// after the probe was sent, as a probe that passed just before the
// process died would otherwise put a dead member back in rotation.
func (m *Member) ClearEjectionSince(mark uint64) {
	for {
		old := m.ejection.Load()
		if old&1 == 0 || old>>1 != mark {
			return
		}
		if m.ejection.CompareAndSwap(old, old&^1) {
			if m.pool != nil {
				m.pool.changed()
			}
			return
		}
	}
}

// Kick asks for an immediate probe without blocking.
func (m *Member) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Kicked delivers probe requests to the member's prober.
func (m *Member) Kicked() <-chan struct{} { return m.kick }

// SetExit records that the process behind the member exited, and calls
// the OnExit watches of its pid.
func (m *Member) SetExit(e *Exit) {
	m.exitMu.Lock()
	m.exit.Store(e)
	var due []*exitWatch
	keep := m.exitWatch[:0]
	for _, w := range m.exitWatch {
		if w.pid == e.PID {
			due = append(due, w)
		} else {
			keep = append(keep, w)
		}
	}
	clear(m.exitWatch[len(keep):])
	m.exitWatch = keep
	m.exitMu.Unlock()
	for _, w := range due {
		w.f(e)
	}
}

// LastExit returns the most recent exit of the member's process, if any.
func (m *Member) LastExit() *Exit { return m.exit.Load() }

// ExitOf returns the exit of process pid if it has been recorded, else
// nil (always nil for pid 0, an external upstream's).
func (m *Member) ExitOf(pid int) *Exit {
	if e := m.exit.Load(); e != nil && pid != 0 && e.PID == pid {
		return e
	}
	return nil
}

// OnExit calls f with the exit of process pid once it is recorded
// (SetExit), or at once, on the caller's goroutine, if it already is.
// Nothing waits for it: a request whose connection broke as the process
// died goes on, and what the exit says comes to f when the supervisor
// has reaped the process, a moment later. f runs on the goroutine that
// records the exit: it must be quick and must not block. stop cancels
// the call and reports whether it did; false once f was called or is
// being called.
func (m *Member) OnExit(pid int, f func(*Exit)) (stop func() bool) {
	m.exitMu.Lock()
	if e := m.ExitOf(pid); e != nil {
		m.exitMu.Unlock()
		f(e)
		return func() bool { return false }
	}
	w := &exitWatch{pid: pid, f: f}
	m.exitWatch = append(m.exitWatch, w)
	m.exitMu.Unlock()
	return func() bool {
		m.exitMu.Lock()
		defer m.exitMu.Unlock()
		i := slices.Index(m.exitWatch, w)
		if i < 0 {
			return false
		}
		m.exitWatch = slices.Delete(m.exitWatch, i, i+1)
		return true
	}
}

// exitWatch is one OnExit call waiting for the exit of pid.
type exitWatch struct {
	pid int
	f   func(*Exit)
}

// CutBurst is how close together attempts cut off on one member count as
// one burst: a process killed under load cuts off every request it had
// within a few milliseconds.
const CutBurst = 500 * time.Millisecond

// CutOff records that an attempt in flight on the member was cut off: its
// connection was reset or closed before the response came. With CutOffs
// it tells a process that died under many requests at once (killed, out
// of memory: not their fault) from one that died under one request (a
// query of death, perhaps).
func (m *Member) CutOff() {
	now := time.Now()
	m.cutMu.Lock()
	if now.Sub(m.cutLast) > CutBurst {
		m.cutN = 0
	}
	m.cutN++
	m.cutLast = now
	m.cutMu.Unlock()
}

// CutOffs is the number of attempts in the member's last burst of
// cut-offs, if that burst ended within CutBurst of t (the process's exit,
// say); else 0.
func (m *Member) CutOffs(t time.Time) int {
	m.cutMu.Lock()
	defer m.cutMu.Unlock()
	if m.cutN == 0 || m.cutLast.Sub(t).Abs() > CutBurst {
		return 0
	}
	return m.cutN
}
