package supervisor

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitBound bounds each wait of these tests for another goroutine; none
// should take more than a moment.
const waitBound = 10 * time.Second

// An operator's operation takes the lock from auto-heal's recycle that
// holds it (its context ends, the cause naming the operation), and goes
// before one that waits for it, which takes the lock only once the
// operator let it go: neither runs before the operator, and the waiting
// one does not give up only to fire again at auto-heal's next check.
func TestOperatorTakesTheLockFromAutoHeal(t *testing.T) {
	var l opLock
	hctx, unlockHeal, err := l.lockHeal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		_, unlock, err := l.lockHeal(t.Context())
		if err == nil {
			unlock()
		}
		second <- err
	}()
	acquired := make(chan func(), 1)
	go func() { acquired <- l.lockOperator("an operator's scale") }()

	select {
	case <-hctx.Done():
	case <-time.After(waitBound):
		t.Fatal("the recycle holding the lock was not told to give way")
	}
	var pe *PreemptedError
	if !errors.As(context.Cause(hctx), &pe) || pe.By != "an operator's scale" {
		t.Errorf("the recycle's cause: %v; want a *PreemptedError by an operator's scale", context.Cause(hctx))
	}
	select {
	case <-acquired:
		t.Fatal("the operator took the lock while the recycle still held it")
	default:
	}
	unlockHeal()
	unlock := receive(t, acquired, "the operator to take the lock")
	select {
	case err := <-second:
		t.Fatalf("the waiting recycle ended (%v) while the operator held the lock", err)
	default:
	}
	unlock()
	if err := receive(t, second, "the waiting recycle to take the lock after the operator"); err != nil {
		t.Errorf("the waiting recycle: %v; want the lock", err)
	}
}

// A reload does not wait behind another operation: it is refused
// (ErrBusy) while an operator's operation, an autoscale decision, an idle
// unload or a wake holds the app, and takes it from auto-heal's recycle.
func TestReloadIsRefusedOnlyByWhatDoesNotGiveWay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		holder func(l *opLock) (unlock func())
		busy   bool
	}{
		{"an operator's operation", func(l *opLock) func() { return l.lockOperator("an operator's restart") }, true},
		{"autoscale, idle unload or wake", func(l *opLock) func() { l.lock(); return l.unlock }, true},
		{"auto-heal's recycle", func(l *opLock) func() {
			hctx, unlock, err := l.lockHeal(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			// The recycle returns once told to give way.
			go func() {
				<-hctx.Done()
				unlock()
			}()
			return func() {}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l opLock
			release := tc.holder(&l)
			got := make(chan error, 1)
			go func() {
				unlock, err := l.tryLockOperator("an operator's reload")
				if err == nil {
					unlock()
				}
				got <- err
			}()
			err := receive(t, got, "the reload's answer")
			release()
			if busy := errors.Is(err, ErrBusy); busy != tc.busy || (!busy && err != nil) {
				t.Errorf("reload while %s holds the app: %v; want busy %v", tc.name, err, tc.busy)
			}
		})
	}
}

// An auto-heal recycle waiting for the app gives up when the healer
// stops.
func TestAutoHealStopsWaitingWithItsContext(t *testing.T) {
	var l opLock
	l.lock()
	defer l.unlock()
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan error, 1)
	go func() {
		_, _, err := l.lockHeal(ctx)
		got <- err
	}()
	cancel()
	if err := receive(t, got, "the waiting recycle to give up"); !errors.Is(err, context.Canceled) {
		t.Errorf("the waiting recycle: %v; want context.Canceled", err)
	}
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitBound):
		t.Fatalf("timed out after %v waiting for %s", waitBound, what)
	}
	var zero T
	return zero
}
