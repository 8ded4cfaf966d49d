package pool

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPickSkipsMembersAtLimit: with max_inflight a member at its limit is
// not picked, nor taken by a pinned client, and a released slot is
// picked again.
func TestPickSkipsMembersAtLimit(t *testing.T) {
	p, ms := newPool(t, 10, Ready, "web-1", "web-2")
	p.SetMaxInflight(2)
	counts := map[string]int{}
	var held []*Member
	for range 4 {
		m := p.Pick(nil)
		if m == nil {
			t.Fatalf("Pick = nil with %d of 4 slots taken", len(held))
		}
		counts[m.ID]++
		held = append(held, m)
	}
	if diff := cmp.Diff(map[string]int{"web-1": 2, "web-2": 2}, counts); diff != "" {
		t.Errorf("picks per member (-want +got):\n%s", diff)
	}
	if m := p.Pick(nil); m != nil {
		t.Fatalf("Pick = %v with every member at max_inflight 2", id(m))
	}
	if ms[0].Take() {
		t.Fatal("Take on a member at its limit counted a request")
	}
	if ready, busy := p.Saturated(); ready != 2 || !busy {
		t.Errorf("Saturated = %d, %v; want 2 ready, saturated", ready, busy)
	}
	ms[1].Release()
	if m := p.Pick(nil); m != ms[1] {
		t.Fatalf("Pick after web-2 freed a slot = %v, want web-2", id(m))
	}
	p.SetMaxInflight(0)
	if m := p.Pick(nil); m == nil {
		t.Fatal("Pick = nil after max_inflight was lifted")
	} else {
		m.Release()
	}
	for _, m := range append(held[:3:3], ms[1]) {
		m.Release()
	}
	if n := p.Inflight(); n != 0 {
		t.Errorf("Inflight after releasing all = %d", n)
	}
}

// TestReleaseHandsSlotToOldest: under max_inflight each Release wakes
// exactly one held request, the oldest, and hands it the member; a
// request arriving meanwhile does not take the slot.
func TestReleaseHandsSlotToOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, ms := newPool(t, 10, Ready, "web-1")
		p.SetMaxInflight(1)
		first := p.Pick(nil)
		if first != ms[0] {
			t.Fatalf("first Pick = %v", id(first))
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := startHeld(t, ctx, p, 4, 5*time.Second)
		if got := p.LimitHeld(); got != 4 {
			t.Errorf("LimitHeld = %d, want the 4 requests held at the limit", got)
		}
		holder := first
		for want := range 4 {
			elapse(100 * time.Millisecond)
			holder.Release()
			if m := p.Pick(nil); m != nil {
				t.Fatalf("a new request took the slot released for held request %d", want)
			}
			synctest.Wait()
			r := <-res
			if r.idx != want || r.err != nil || r.m != ms[0] {
				t.Fatalf("release %d went to held request %d (%v, %v); want %d", want, r.idx, id(r.m), r.err, want)
			}
			if r.held != time.Duration(want+1)*100*time.Millisecond {
				t.Errorf("held request %d reports held %v", r.idx, r.held)
			}
			select {
			case r := <-res:
				t.Fatalf("one release woke a second request too (%d)", r.idx)
			default:
			}
			if w := p.Waiting(); w != 3-want {
				t.Errorf("Waiting = %d after release %d, want %d", w, want, 3-want)
			}
			if n := ms[0].Inflight(); n != 1 {
				t.Errorf("in flight = %d after a handed-over release, want 1", n)
			}
			holder = r.m
		}
		holder.Release()
		if n := p.Inflight(); n != 0 {
			t.Errorf("Inflight = %d at the end", n)
		}
	})
}

// TestRaisedLimitReleasesHeld: a reload that raises max_inflight lets
// held requests go at once; one that is cancelled leaves no slot taken.
func TestRaisedLimitReleasesHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, ms := newPool(t, 10, Ready, "web-1")
		p.SetMaxInflight(1)
		first := p.Pick(nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := startHeld(t, ctx, p, 2, 5*time.Second)
		p.SetMaxInflight(3)
		synctest.Wait()
		for range 2 {
			r := <-res
			if r.err != nil || r.m != ms[0] {
				t.Fatalf("held request %d = %v, %v after the limit was raised", r.idx, id(r.m), r.err)
			}
			r.m.Release()
		}
		first.Release()
		if n := p.Inflight(); n != 0 {
			t.Errorf("Inflight = %d at the end", n)
		}
	})
}

// TestHoldTimeoutAtLimit: a request held at the limit past hold gets
// ErrHoldTimeout, and the pool says it is saturated, not down.
func TestHoldTimeoutAtLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPool(t, 10, Ready, "web-1", "web-2")
		p.SetMaxInflight(1)
		a, b := p.Pick(nil), p.Pick(nil)
		m, held, err := p.Acquire(context.Background(), 2*time.Second, nil)
		if !errors.Is(err, ErrHoldTimeout) || m != nil || held != 2*time.Second {
			t.Fatalf("Acquire = %v, %v, %v; want ErrHoldTimeout after 2s", id(m), held, err)
		}
		if ready, busy := p.Saturated(); ready != 2 || !busy {
			t.Errorf("Saturated = %d, %v; want 2, true", ready, busy)
		}
		a.Release()
		b.Release()
		if _, busy := p.Saturated(); busy {
			t.Error("Saturated with every slot free")
		}
	})
}

// TestLimitUnderContention races many requests, some giving up early, on
// members with max_inflight: no member ever has more than its limit, no
// request that waits is forgotten (a lost wake-up would leave it held
// until its 20s hold, or the test's timeout), and every slot comes back.
// Run it with -race -count=20.
func TestLimitUnderContention(t *testing.T) {
	const limit, workers, rounds = 2, 16, 200
	p, ms := newPool(t, 1000, Ready, "web-1", "web-2")
	p.SetMaxInflight(limit)
	var using [2]atomic.Int64
	index := map[*Member]int{ms[0]: 0, ms[1]: 1}
	var over, timeouts atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if rng.IntN(8) == 0 {
					// Some requests' clients leave while held, racing
					// the hand-over of a slot.
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(rng.IntN(200))*time.Microsecond)
				}
				m, _, err := p.Acquire(ctx, 20*time.Second, nil)
				cancel()
				switch {
				case errors.Is(err, ErrHoldTimeout):
					timeouts.Add(1)
					continue
				case err != nil:
					continue
				}
				i := index[m]
				if using[i].Add(1) > limit {
					over.Add(1)
				}
				for range rng.IntN(3) {
					runtime.Gosched()
				}
				using[i].Add(-1)
				m.Release()
			}
		})
	}
	wg.Wait()
	if n := over.Load(); n != 0 {
		t.Errorf("%d times a member had more than max_inflight %d requests", n, limit)
	}
	if n := timeouts.Load(); n != 0 {
		t.Errorf("%d held requests timed out: a released slot did not reach them", n)
	}
	if n := p.Inflight(); n != 0 {
		t.Errorf("Inflight = %d after every request ended: a slot was lost", n)
	}
	if w := p.Waiting(); w != 0 {
		t.Errorf("Waiting = %d after every request ended", w)
	}
}
