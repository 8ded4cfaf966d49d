package supervisor

import (
	"context"
	"fmt"
	"sync"
)

// opLock is an app's operation lock: one operation at a time changes its
// set of instances (a reload, scale, recycle, restart, idle unload or
// wake, a handover). It knows who holds it, so that an operator's
// operation takes the app from auto-heal's recycle rather than queue
// behind it: in an outage (a database every probe checks, down) that
// recycle's replacement may wait out start_timeout, several in a row,
// and what the operator runs then is the fix. Autoscale, idle unload and
// wake wait as before, and preempt nothing.
type opLock struct {
	mu   sync.Mutex
	held bool
	// heal ends the auto-heal recycle that holds the lock, with a
	// *PreemptedError as its context's cause; nil when the holder is
	// anything else, or none.
	heal context.CancelCauseFunc
	// operators counts the operator's operations that want the lock or
	// hold it: while one does, auto-heal takes no app.
	operators int
	// operatorsGone is closed when the last of them lets go: auto-heal
	// waits for it rather than fire, give way and fire again at every
	// check while an operator's operation runs.
	operatorsGone chan struct{}
	// released is closed when the holder lets go.
	released chan struct{}
}

// lock takes the lock for an operation that neither preempts nor gives
// way: an autoscale decision, an idle unload or a wake.
func (l *opLock) lock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.held {
		l.waitLocked(nil)
	}
	l.takeLocked(nil)
}

// lockOperator takes the lock for an operator's operation, by (such as
// "gatehouse scale"): an auto-heal recycle that holds it gives way, and
// none takes it before this operation has had it. unlock lets it go.
func (l *opLock) lockOperator(by string) (unlock func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addOperatorLocked(by)
	for l.held {
		l.waitLocked(nil)
	}
	l.takeLocked(nil)
	return l.unlockOperator
}

// tryLockOperator is lockOperator for an operation that must not wait
// behind another (a reload, which takes every app it changes before it
// changes any): it waits only for an auto-heal recycle to give way, and
// returns ErrBusy while anything else holds the lock.
func (l *opLock) tryLockOperator(by string) (unlock func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addOperatorLocked(by)
	for l.held {
		if l.heal == nil {
			l.dropOperatorLocked()
			return nil, ErrBusy
		}
		l.waitLocked(nil)
	}
	l.takeLocked(nil)
	return l.unlockOperator, nil
}

// lockHeal takes the lock for auto-heal's recycle once no operator's
// operation wants it or holds it, or returns ctx's error once ctx ends.
// The recycle runs on hctx, which an operator's operation that comes
// later cancels (context.Cause: a *PreemptedError).
func (l *opLock) lockHeal(ctx context.Context) (hctx context.Context, unlock func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		switch {
		case l.operators > 0:
			l.waitForLocked(l.operatorsGone, ctx.Done())
		case l.held:
			l.waitForLocked(l.released, ctx.Done())
		default:
			hctx, cancel := context.WithCancelCause(ctx)
			l.takeLocked(cancel)
			return hctx, l.unlock, nil
		}
	}
}

// addOperatorLocked counts an operator's operation by and makes the
// auto-heal recycle that holds the lock, if one does, give way.
func (l *opLock) addOperatorLocked(by string) {
	if l.operators == 0 {
		l.operatorsGone = make(chan struct{})
	}
	l.operators++
	if l.heal != nil {
		l.heal(&PreemptedError{By: by})
	}
}

// waitLocked waits, l.mu let go meanwhile, until the holder releases the
// lock or stop is closed.
func (l *opLock) waitLocked(stop <-chan struct{}) { l.waitForLocked(l.released, stop) }

// waitForLocked waits, l.mu let go meanwhile, until ch or stop is closed.
func (l *opLock) waitForLocked(ch, stop <-chan struct{}) {
	l.mu.Unlock()
	defer l.mu.Lock()
	select {
	case <-ch:
	case <-stop:
	}
}

// dropOperatorLocked uncounts an operator's operation that let go of the
// lock or gave up on it.
func (l *opLock) dropOperatorLocked() {
	l.operators--
	if l.operators == 0 {
		close(l.operatorsGone)
	}
}

func (l *opLock) takeLocked(heal context.CancelCauseFunc) {
	l.held, l.heal = true, heal
	l.released = make(chan struct{})
}

func (l *opLock) unlock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked()
}

func (l *opLock) unlockOperator() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropOperatorLocked()
	l.releaseLocked()
}

func (l *opLock) releaseLocked() {
	if l.heal != nil {
		l.heal(context.Canceled) // the recycle has returned: its context's resources go
		l.heal = nil
	}
	l.held = false
	close(l.released)
}

// PreemptedError is HealRecycle's error when what comes before auto-heal
// took the app first: an operator's operation, an upgrade's handover, or
// gatehouse's shutdown. The recycle gave way before it started a
// replacement, or stopped the one it had started, not ready yet; the
// instance was left as it was.
type PreemptedError struct {
	// By is what took the app ("gatehouse scale", "an upgrade").
	By string
	// Replacement is the replacement that was stopped; "" when none was
	// started.
	Replacement string
}

func (e *PreemptedError) Error() string {
	if e.Replacement == "" {
		return e.By + " came first"
	}
	return fmt.Sprintf("%s came first; %s, its replacement, not ready yet, was stopped", e.By, e.Replacement)
}
