package pool

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrQueueFull is returned by Acquire when the hold queue is at its bound.
var ErrQueueFull = errors.New("hold queue full")

// ErrHoldTimeout is returned by Acquire when no member became routable
// within the hold time.
var ErrHoldTimeout = errors.New("no ready instance within hold_timeout")

// ErrCannotStart is returned by Acquire when no member can become
// routable because the app's instances cannot start at all (its command's
// program is missing): holding would only delay the 503. See
// Pool.SetCannotStart.
var ErrCannotStart = errors.New("no instance can start")

// Acquire picks a routable member below max_inflight, holding the request
// up to hold for one to become routable or to free a slot. Held requests
// are released in arrival order: a slot freed by Release goes to the
// oldest held request (handed over, so that a request arriving meanwhile
// cannot take it), and a member that becomes routable wakes them all to
// pick. The caller must Release the member. Errors: ErrQueueFull,
// ErrHoldTimeout, ErrCannotStart, or the context's error.
func (p *Pool) Acquire(ctx context.Context, hold time.Duration, tried []*Member) (*Member, time.Duration, error) {
	return p.AcquireExcept(ctx, hold, tried, nil)
}

// AcquireExcept is Acquire that never takes a member in except (see
// PickExcept), nor is handed one.
func (p *Pool) AcquireExcept(ctx context.Context, hold time.Duration, tried, except []*Member) (*Member, time.Duration, error) {
	if p.unloaded.Load() {
		p.signalWake()
	}
	if m := p.PickExcept(tried, except); m != nil {
		return m, 0, nil
	}
	if hold <= 0 {
		return nil, 0, ErrHoldTimeout
	}
	if p.CannotStart() != "" {
		return nil, 0, ErrCannotStart
	}
	start := time.Now()
	w, ok := p.queue.pushExcept(p.maxQueue.Load(), except)
	if !ok {
		return nil, 0, ErrQueueFull
	}
	if _, busy := p.Saturated(); busy {
		p.limitHeld.Add(1)
	}
	timer := time.NewTimer(hold)
	defer timer.Stop()
	for {
		// Re-check after queuing: a member may have become ready, or a
		// slot free, between Pick and push. A Release after the push
		// sees this request in the queue and hands it its member.
		if m := p.PickExcept(tried, except); m != nil {
			if h := p.queue.leave(w); h != nil {
				h.Release() // handed one meanwhile: pass it on
			}
			return m, time.Since(start), nil
		}
		if p.unloaded.Load() {
			// The app may have been unloaded after this request arrived.
			p.signalWake()
		}
		if p.CannotStart() != "" {
			if h := p.queue.leave(w); h != nil {
				return h, time.Since(start), nil
			}
			return nil, time.Since(start), ErrCannotStart
		}
		select {
		case <-w.ch:
			if h := p.queue.handed(w); h != nil {
				return h, time.Since(start), nil
			}
		case <-timer.C:
			if h := p.queue.leave(w); h != nil {
				return h, time.Since(start), nil
			}
			return nil, time.Since(start), ErrHoldTimeout
		case <-ctx.Done():
			if h := p.queue.leave(w); h != nil {
				h.Release()
			}
			return nil, time.Since(start), ctx.Err()
		}
	}
}

// release ends one request's use of m under max_inflight: while requests
// are held and m may take one, its slot is handed to the oldest of them,
// the in-flight count unchanged; else the count goes down. Deciding under
// the queue's lock is what keeps a wake-up from being lost: a request
// that queued before it is seen here, and one that queues after it sees
// the lower count when it picks again after pushing.
func (p *Pool) release(m *Member) {
	q := &p.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) > 0 && m.inflight.Load() <= p.maxInflight.Load() && m.Routable() && p.isMember(m) {
		for i, w := range q.waiters {
			if w.except != nil && contains(w.except, m) {
				continue
			}
			if i == 0 {
				q.waiters = q.waiters[1:]
			} else {
				q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			}
			w.m = m
			w.signal()
			return
		}
	}
	m.inflight.Add(-1)
}

// waitQueue is a FIFO of held requests.
type waitQueue struct {
	mu      sync.Mutex
	waiters []*waiter
}

// waiter is one held request. ch (one slot) wakes it; m is the member a
// Release handed it, set under the queue's lock as it leaves the queue.
type waiter struct {
	ch chan struct{}
	m  *Member
	// except are the members it must not be handed (AcquireExcept).
	except []*Member
}

func (w *waiter) signal() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

func (q *waitQueue) push(max int64) (*waiter, bool) { return q.pushExcept(max, nil) }

// pushExcept queues a waiter that must not be handed a member in except.
func (q *waitQueue) pushExcept(max int64, except []*Member) (*waiter, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if max > 0 && int64(len(q.waiters)) >= max {
		return nil, false
	}
	w := &waiter{ch: make(chan struct{}, 1), except: except}
	q.waiters = append(q.waiters, w)
	return w, true
}

// handed returns the member handed to w, nil if w was only woken to pick
// again (it keeps its place in line).
func (q *waitQueue) handed(w *waiter) *Member {
	q.mu.Lock()
	defer q.mu.Unlock()
	return w.m
}

// leave takes w out of the queue; if a Release had already handed it a
// member, it returns that member, which the caller now holds.
func (q *waitQueue) leave(w *waiter) *Member {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return nil
		}
	}
	return w.m
}

// releaseAll wakes every waiter in arrival order; each then picks a member
// (least in-flight), so a burst spreads over the members that came up.
func (q *waitQueue) releaseAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, w := range q.waiters {
		w.signal()
	}
}

func (q *waitQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiters)
}
