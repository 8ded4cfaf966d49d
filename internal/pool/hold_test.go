package pool

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// The hold queue runs on synctest's clock: a hold of seconds takes none,
// and "held for exactly as long as the member took" is exact.

// acquireResult is one Acquire's outcome.
type acquireResult struct {
	idx  int
	m    *Member
	held time.Duration
	err  error
}

// startHeld starts n Acquires one after another, each queued before the
// next starts (inside a synctest bubble), and returns their results.
func startHeld(t *testing.T, ctx context.Context, p *Pool, n int, hold time.Duration) <-chan acquireResult {
	t.Helper()
	out := make(chan acquireResult, n)
	base := p.Waiting()
	for i := range n {
		go func() {
			m, held, err := p.Acquire(ctx, hold, nil)
			out <- acquireResult{i, m, held, err}
		}()
		synctest.Wait()
		if w := p.Waiting(); w != base+i+1 {
			t.Fatalf("%d waiting after Acquire %d, want %d", w, i, base+i+1)
		}
	}
	return out
}

func TestAcquireHoldsUntilReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, ms := newPool(t, 10, Starting, "web-1")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := startHeld(t, ctx, p, 3, 5*time.Second)

		elapse(150 * time.Millisecond)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("Acquire %d returned %v, %v before any member was ready", r.idx, id(r.m), r.err)
		default:
		}
		ms[0].SetState(Ready)
		synctest.Wait()
		for i := range 3 {
			select {
			case r := <-res:
				if r.err != nil || r.m != ms[0] {
					t.Errorf("held Acquire %d = %v, %v; want web-1", r.idx, id(r.m), r.err)
					continue
				}
				if r.held != 150*time.Millisecond {
					t.Errorf("held Acquire %d reports held %v, want the 150ms it waited", r.idx, r.held)
				}
				r.m.Release()
			default:
				t.Fatalf("only %d of 3 held requests released after the member turned ready", i)
			}
		}
		if w := p.Waiting(); w != 0 {
			t.Errorf("Waiting = %d after release", w)
		}
	})
}

func TestAcquireQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPool(t, 2, Starting, "web-1")
		ctx, cancel := context.WithCancel(context.Background())
		res := startHeld(t, ctx, p, 2, 5*time.Second)

		start := time.Now()
		m, _, err := p.Acquire(ctx, 5*time.Second, nil)
		if !errors.Is(err, ErrQueueFull) || m != nil {
			t.Errorf("third Acquire with queue_size 2 = %v, %v; want ErrQueueFull", id(m), err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("queue_full took %v; it must answer at once", took)
		}
		cancel()
		synctest.Wait()
		for range 2 {
			if r := <-res; !errors.Is(r.err, context.Canceled) {
				t.Errorf("cancelled held Acquire = %v, want context.Canceled", r.err)
			}
		}
		if w := p.Waiting(); w != 0 {
			t.Errorf("Waiting = %d after cancel", w)
		}
	})
}

func TestAcquireHoldTimeout(t *testing.T) {
	tests := []struct {
		name string
		hold time.Duration
	}{
		{"no hold", 0},
		{"short hold", 150 * time.Millisecond},
		{"the default 30s", 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, _ := newPool(t, 10, Unhealthy, "web-1")
				start := time.Now()
				m, held, err := p.Acquire(context.Background(), tc.hold, nil)
				took := time.Since(start)
				if !errors.Is(err, ErrHoldTimeout) || m != nil {
					t.Fatalf("Acquire = %v, %v; want ErrHoldTimeout", id(m), err)
				}
				if took != tc.hold || held != tc.hold {
					t.Errorf("gave up after %v (held %v), want exactly %v", took, held, tc.hold)
				}
				if w := p.Waiting(); w != 0 {
					t.Errorf("Waiting = %d after timeout", w)
				}
			})
		})
	}
}

// A retry is never given a member in except (one that cut the request
// off), routable as it may look: Pick skips it, a held request waits for
// another, and a slot it frees under max_inflight goes to the next held
// request that may take it.
func TestAcquireExceptNeverGivesAnExceptedMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, ms := newPool(t, 10, Ready, "web-1")
		cut := []*Member{ms[0]}
		if m := p.PickExcept(nil, cut); m != nil {
			t.Fatalf("PickExcept returned %s, the only member, which is excepted", m.ID)
		}

		// Under max_inflight 1, web-1 busy: the first held request
		// excepts it, the second does not.
		p.SetMaxInflight(1)
		busy := p.Pick(nil)
		if busy != ms[0] {
			t.Fatalf("Pick = %s, want web-1", id(busy))
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := make(chan acquireResult, 2)
		go func() {
			m, held, err := p.AcquireExcept(ctx, 5*time.Second, nil, cut)
			out <- acquireResult{0, m, held, err}
		}()
		synctest.Wait()
		go func() {
			m, held, err := p.AcquireExcept(ctx, 5*time.Second, nil, nil)
			out <- acquireResult{1, m, held, err}
		}()
		synctest.Wait()
		busy.Release()
		synctest.Wait()
		select {
		case r := <-out:
			if r.idx != 1 || r.m != ms[0] {
				t.Fatalf("Acquire %d got %s (%v); want the one that does not except web-1 to be handed it", r.idx, id(r.m), r.err)
			}
			r.m.Release()
		default:
			t.Fatal("web-1's freed slot went to nobody")
		}

		// A new member ready: the held request that excepts web-1 takes it.
		elapse(time.Second)
		m2 := NewMember("web-2", "127.0.0.1:10001")
		p.Add(m2)
		m2.SetState(Ready)
		synctest.Wait()
		select {
		case r := <-out:
			if r.idx != 0 || r.m != m2 || r.err != nil || r.held != time.Second {
				t.Errorf("Acquire %d got %s after %v (%v); want web-2 after 1s", r.idx, id(r.m), r.held, r.err)
			}
			r.m.Release()
		default:
			t.Fatal("the request held away from web-1 was not given web-2")
		}
	})
}

// elapse lets d of a synctest bubble's fake time pass: the bubble's
// goroutines run until they block, and the timers due on the way fire.
// It takes no real time.
func elapse(d time.Duration) { time.Sleep(d) }

// A request held while the app is not yet marked unloaded (no member
// routable: crashed, in its back-off) asks for the wake once the idle
// unload marks it: unloaded, nothing else would start an instance for it.
func TestHeldRequestAsksForTheWakeOfAnUnload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPool(t, 10, Crashed, "web-1")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := startHeld(t, ctx, p, 1, 30*time.Second)
		select {
		case <-p.Wake():
			t.Fatal("a wake asked for before the app was unloaded")
		default:
		}
		p.SetUnloaded(true)
		synctest.Wait()
		select {
		case <-p.Wake():
		default:
			t.Fatal("the held request did not ask for a wake once the app was unloaded")
		}
		cancel()
		<-res
	})
}
