package testutil

import (
	"testing"
	"time"
)

// WaitForNil is WaitFor for a check that says why it is not yet true: it
// polls check until it returns nil, and fails the test naming what it
// waited for and the last error if timeout passes first.
func WaitForNil(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	var last error
	if !pollUntil(timeout, func() bool { last = check(); return last == nil }) {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, last)
	}
}

// Eventually polls cond as WaitFor does and reports whether it came true
// within timeout. Unlike WaitFor it fails nothing: for a goroutine other
// than the test's, or a wait whose end decides nothing.
func Eventually(timeout time.Duration, cond func() bool) bool { return pollUntil(timeout, cond) }

// pollUntil calls cond until it is true or timeout has passed, and says
// whether it came true. It calls again after 1ms, then twice as long each
// time up to every 20ms: a condition that comes at once costs a test no
// more than that.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 20*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
	return true
}
