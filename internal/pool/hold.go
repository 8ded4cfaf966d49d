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

// Acquire picks a routable member, holding the request up to hold for one
// to become routable. Held requests are released in arrival order. The
// caller must Release the member. Errors: ErrQueueFull, ErrHoldTimeout, or
// the context's error.
func (p *Pool) Acquire(ctx context.Context, hold time.Duration, tried []*Member) (*Member, time.Duration, error) {
	if p.unloaded.Load() {
		p.signalWake()
	}
	if m := p.Pick(tried); m != nil {
		return m, 0, nil
	}
	if hold <= 0 {
		return nil, 0, ErrHoldTimeout
	}
	start := time.Now()
	w, ok := p.queue.push(p.maxQueue.Load())
	if !ok {
		return nil, 0, ErrQueueFull
	}
	timer := time.NewTimer(hold)
	defer timer.Stop()
	for {
		// Re-check after queuing: a member may have become ready between
		// Pick and push.
		if m := p.Pick(tried); m != nil {
			p.queue.remove(w)
			return m, time.Since(start), nil
		}
		if p.unloaded.Load() {
			// The app may have been unloaded after this request arrived.
			p.signalWake()
		}
		select {
		case <-w.ch:
			w = p.queue.requeueFront(w)
		case <-timer.C:
			p.queue.remove(w)
			return nil, time.Since(start), ErrHoldTimeout
		case <-ctx.Done():
			p.queue.remove(w)
			return nil, time.Since(start), ctx.Err()
		}
	}
}

// waitQueue is a FIFO of held requests.
type waitQueue struct {
	mu      sync.Mutex
	waiters []*waiter
}

type waiter struct{ ch chan struct{} }

func (q *waitQueue) push(max int64) (*waiter, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if max > 0 && int64(len(q.waiters)) >= max {
		return nil, false
	}
	w := &waiter{ch: make(chan struct{}, 1)}
	q.waiters = append(q.waiters, w)
	return w, true
}

// requeueFront puts a woken waiter that found nothing back at the front,
// keeping its place in line.
func (q *waitQueue) requeueFront(w *waiter) *waiter {
	q.mu.Lock()
	defer q.mu.Unlock()
	nw := &waiter{ch: make(chan struct{}, 1)}
	for i, x := range q.waiters {
		if x == w {
			q.waiters[i] = nw
			return nw
		}
	}
	q.waiters = append([]*waiter{nw}, q.waiters...)
	return nw
}

func (q *waitQueue) remove(w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return
		}
	}
}

// releaseAll wakes every waiter in arrival order; each then picks a member
// (least in-flight), so a burst spreads over the members that came up.
func (q *waitQueue) releaseAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, w := range q.waiters {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

func (q *waitQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiters)
}
