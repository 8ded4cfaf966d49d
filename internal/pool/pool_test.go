package pool

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newPool returns a pool with members named ids, all in state s.
func newPool(t testing.TB, maxQueue int, s State, ids ...string) (*Pool, []*Member) {
	t.Helper()
	p := New("web", maxQueue)
	var ms []*Member
	for i, id := range ids {
		m := NewMember(id, fmt.Sprintf("127.0.0.1:%d", 10000+i))
		p.Add(m)
		m.SetState(s)
		ms = append(ms, m)
	}
	return p, ms
}

func TestPickLeastInflight(t *testing.T) {
	p, ms := newPool(t, 10, Ready, "web-1", "web-2", "web-3")
	// Load web-1 with two requests and web-3 with one: web-2 must win,
	// whatever the round-robin start.
	for _, load := range []struct {
		m *Member
		n int64
	}{{ms[0], 2}, {ms[2], 1}} {
		load.m.inflight.Add(load.n)
	}
	for i := 0; i < 6; i++ {
		got := p.Pick(nil)
		if got != ms[1] {
			t.Fatalf("pick %d = %v, want web-2 (fewest in flight)", i, id(got))
		}
		got.Release()
	}
}

func TestPickRoundRobinOnTies(t *testing.T) {
	p, _ := newPool(t, 10, Ready, "web-1", "web-2")
	counts := map[string]int{}
	var seq []string
	for i := 0; i < 10; i++ {
		m := p.Pick(nil)
		if m == nil {
			t.Fatal("Pick = nil with two ready members")
		}
		counts[m.ID]++
		seq = append(seq, m.ID)
		m.Release()
	}
	if diff := cmp.Diff(map[string]int{"web-1": 5, "web-2": 5}, counts); diff != "" {
		t.Errorf("picks per member (-want +got):\n%s\nsequence %v", diff, seq)
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			t.Errorf("tie not broken round-robin: %v", seq)
			break
		}
	}
}

func TestPickSpreadsConcurrentRequests(t *testing.T) {
	p, _ := newPool(t, 10, Ready, "web-1", "web-2")
	// Held (not released) picks fill members evenly.
	counts := map[string]int{}
	var held []*Member
	for i := 0; i < 6; i++ {
		m := p.Pick(nil)
		counts[m.ID]++
		held = append(held, m)
	}
	for _, m := range held {
		m.Release()
	}
	if diff := cmp.Diff(map[string]int{"web-1": 3, "web-2": 3}, counts); diff != "" {
		t.Errorf("concurrent picks per member (-want +got):\n%s", diff)
	}
	if n := p.Inflight(); n != 0 {
		t.Errorf("Inflight after releasing all = %d", n)
	}
}

func TestPickPrefersUntried(t *testing.T) {
	p, ms := newPool(t, 10, Ready, "web-1", "web-2")
	ms[1].inflight.Add(5) // busier, but not tried yet
	for i := 0; i < 4; i++ {
		got := p.Pick([]*Member{ms[0]})
		if got != ms[1] {
			t.Fatalf("Pick(tried=web-1) = %v, want web-2", id(got))
		}
		got.Release()
	}
	// With every member tried, the least loaded is still returned.
	if got := p.Pick(ms); got != ms[0] {
		t.Fatalf("Pick(tried=all) = %v, want web-1", id(got))
	} else {
		got.Release()
	}
}

func TestPickSkipsUnroutable(t *testing.T) {
	for _, s := range []State{Starting, Unhealthy, Draining, Stopped, Crashed} {
		t.Run(s.String(), func(t *testing.T) {
			p, ms := newPool(t, 10, Ready, "web-1", "web-2")
			ms[0].SetState(s)
			for i := 0; i < 4; i++ {
				got := p.Pick(nil)
				if got != ms[1] {
					t.Fatalf("Pick = %v, want web-2 (web-1 is %s)", id(got), s)
				}
				got.Release()
			}
			ms[1].SetState(s)
			if got := p.Pick(nil); got != nil {
				t.Fatalf("Pick = %v with no ready member", got.ID)
			}
		})
	}
}

// TestTake: a member a client is pinned to takes its request, whatever
// the others' load, only while it is routable; the request counts on it
// as a picked one does.
func TestTake(t *testing.T) {
	tests := []struct {
		name  string
		state State
		eject bool
		// remove takes the member out of the pool first, still ready: as
		// takeBack does with the members a handover left, while a request
		// whose affinity cookie named one was still reading its body.
		remove bool
		want   bool
	}{
		{"ready", Ready, false, false, true},
		{"ready but ejected", Ready, true, false, false},
		{"starting", Starting, false, false, false},
		{"unhealthy", Unhealthy, false, false, false},
		{"draining", Draining, false, false, false},
		{"crashed", Crashed, false, false, false},
		{"ready but gone from the pool", Ready, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ms := newPool(t, 10, Ready, "web-1", "web-2")
			ms[0].inflight.Add(5) // the busier one
			ms[0].SetState(tt.state)
			if tt.eject {
				ms[0].Eject()
			}
			if tt.remove {
				p.Remove(ms[0])
			}
			if got := ms[0].Take(); got != tt.want {
				t.Fatalf("Take = %v, want %v", got, tt.want)
			}
			want := int64(5)
			if tt.want {
				want = 6
			}
			if got := ms[0].Inflight(); got != want {
				t.Errorf("in flight after Take = %d, want %d", got, want)
			}
			if got := p.Pick(nil); got != ms[1] {
				t.Errorf("Pick = %v, want web-2 (fewest in flight)", id(got))
			}
		})
	}
}

// TestWaitQueueKeepsArrivalOrder checks that the queue wakes waiters in
// arrival order, that a woken waiter keeps its place until it leaves, and
// that leaving keeps the others' order.
func TestWaitQueueKeepsArrivalOrder(t *testing.T) {
	var q waitQueue
	a, _ := q.push(0)
	b, _ := q.push(0)
	c, _ := q.push(0)
	q.releaseAll()
	for i, w := range []*waiter{a, b, c} {
		select {
		case <-w.ch:
		default:
			t.Errorf("waiter %d not signalled by releaseAll", i)
		}
	}
	if got := []*waiter{q.waiters[0], q.waiters[1], q.waiters[2]}; got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("after a wake-up the waiters moved: %v", got)
	}
	if h := q.leave(b); h != nil {
		t.Errorf("leave of a queued waiter returned member %v", id(h))
	}
	if q.len() != 2 || q.waiters[0] != a || q.waiters[1] != c {
		t.Errorf("leave broke the order: %v", q.waiters)
	}
}

func TestEjection(t *testing.T) {
	p, ms := newPool(t, 10, Ready, "web-1", "web-2")
	ms[0].Eject()
	if !ms[0].Ejected() || ms[0].Routable() {
		t.Fatal("ejected member is still routable")
	}
	select {
	case <-ms[0].Kicked():
	default:
		t.Error("Eject did not ask for a probe (Kick)")
	}
	for i := 0; i < 4; i++ {
		got := p.Pick(nil)
		if got != ms[1] {
			t.Fatalf("Pick = %v, want web-2 while web-1 is ejected", id(got))
		}
		got.Release()
	}

	// With every member ejected, requests are held, and a passing probe
	// (ClearEjection) releases them.
	ms[1].Eject()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := startHeld(t, ctx, p, 1, 5*time.Second)
		ms[1].ClearEjection()
		synctest.Wait()
		select {
		case r := <-res:
			if r.err != nil || r.m != ms[1] {
				t.Fatalf("held Acquire = %v, %v; want web-2 once its ejection cleared", id(r.m), r.err)
			}
			r.m.Release()
		default:
			t.Fatal("ClearEjection did not release the held request")
		}
	})

	// A state does not end an ejection (the member may have been ejected
	// again while the probe that makes it ready was out); a probe sent
	// after the ejection does.
	ms[0].SetState(Unhealthy)
	ms[0].SetState(Ready)
	if !ms[0].Ejected() || ms[0].Routable() {
		t.Error("setting the state Ready lifted an ejection")
	}
	ms[0].ClearEjectionSince(ms[0].EjectionMark())
	if ms[0].Ejected() || !ms[0].Routable() {
		t.Error("a probe sent after the ejection did not lift it")
	}
}

// A probe's pass lifts only the ejections made before the probe was
// sent: one that passed just before the process died and failed a
// request does not put the dead member back in rotation.
func TestAProbeSentBeforeAnEjectionDoesNotLiftIt(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ejectBefore bool // an ejection before the probe is sent
		ejectDuring bool // an ejection while it is out
		wantEjected bool
	}{
		{"ejected, then probed", true, false, false},
		{"ejected again while probed", true, true, true},
		{"ejected while probed", false, true, true},
		{"never ejected", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ms := newPool(t, 10, Ready, "web-1")
			m := ms[0]
			if tc.ejectBefore {
				m.Eject()
			}
			mark := m.EjectionMark()
			if tc.ejectDuring {
				m.Eject()
			}
			m.ClearEjectionSince(mark)
			if m.Ejected() != tc.wantEjected || m.Routable() == tc.wantEjected {
				t.Errorf("after the pass: ejected %v, routable %v; want ejected %v", m.Ejected(), m.Routable(), tc.wantEjected)
			}
			if tc.wantEjected {
				// The next probe, sent after the last ejection, lifts it.
				m.ClearEjectionSince(m.EjectionMark())
				if m.Ejected() || !m.Routable() {
					t.Errorf("a probe sent after the last ejection did not lift it")
				}
			}
		})
	}
}

// A held member (a dump pausing its process) gets no new request
// while it keeps its state; requests wait for it when no other member
// is routable, and its release lets them go.
func TestHeldMemberIsOutOfRotationUntilReleased(t *testing.T) {
	p, ms := newPool(t, 10, Ready, "web-1", "web-2")
	release := ms[0].Hold()
	if ms[0].Routable() || ms[0].State() != Ready || !ms[0].Held() {
		t.Fatalf("held member: routable %v, state %v, held %v; want out of rotation, still ready", ms[0].Routable(), ms[0].State(), ms[0].Held())
	}
	for range 4 {
		got := p.Pick(nil)
		if got != ms[1] {
			t.Fatalf("Pick = %v, want web-2 while web-1 is held", id(got))
		}
		got.Release()
	}
	// Holds nest: the second's release leaves the first on.
	ms[0].Hold()()
	if ms[0].Routable() {
		t.Fatal("one release of two holds put the member back")
	}
	ms[1].SetState(Unhealthy)
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := startHeld(t, ctx, p, 1, 5*time.Second)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("a request got %v while the only ready member was held", id(r.m))
		default:
		}
		release()
		release() // idempotent: the count stays at 0
		synctest.Wait()
		select {
		case r := <-res:
			if r.err != nil || r.m != ms[0] {
				t.Fatalf("held Acquire = %v, %v; want web-1 once released", id(r.m), r.err)
			}
			r.m.Release()
		default:
			t.Fatal("the release did not let the waiting request go")
		}
	})
	if ms[0].Held() {
		t.Error("still held after every release")
	}
}

// OnExit tells of the exit of one process without anyone waiting for
// it: a watch registered before the exit is called when it is recorded,
// one registered after is called at once, a stopped one never, and a
// watch of another process is not called for this one.
func TestOnExitCallsWithTheExit(t *testing.T) {
	m := NewMember("web-1", "127.0.0.1:1")
	m.SetPID(42)
	var got []string
	watch := func(name string) func(*Exit) {
		return func(e *Exit) { got = append(got, fmt.Sprintf("%s: pid %d %s", name, e.PID, e.Detail)) }
	}
	m.OnExit(42, watch("before"))
	stopped := m.OnExit(42, watch("stopped"))
	m.OnExit(43, watch("other pid"))
	if !stopped() {
		t.Errorf("stop of a watch not yet called = false, want true")
	}
	if len(got) != 0 {
		t.Fatalf("watches called before the exit: %q", got)
	}
	m.SetExit(&Exit{PID: 42, Detail: "killed by SIGKILL"})
	stopAfter := m.OnExit(42, watch("after"))
	if stopAfter() {
		t.Errorf("stop of a watch already called = true, want false")
	}
	want := []string{"before: pid 42 killed by SIGKILL", "after: pid 42 killed by SIGKILL"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("watches called (-want +got):\n%s", diff)
	}
	if e := m.ExitOf(42); e == nil || e.Detail != "killed by SIGKILL" {
		t.Errorf("ExitOf(42) = %+v, want the exit", e)
	}
	if e := m.ExitOf(43); e != nil {
		t.Errorf("ExitOf(43) = %+v, want nil", e)
	}
}

func id(m *Member) string {
	if m == nil {
		return "<nil>"
	}
	return m.ID
}
