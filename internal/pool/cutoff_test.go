package pool

import (
	"testing"
	"time"
)

// CutOffs counts the last burst of cut-offs near a time: what poisoned
// (package gateway) reads to tell a process killed under load from one a
// single request crashed.
func TestCutOffs(t *testing.T) {
	m := NewMember("web-1", "127.0.0.1:1")
	if n := m.CutOffs(time.Now()); n != 0 {
		t.Errorf("no cut-off yet: CutOffs = %d, want 0", n)
	}
	m.CutOff()
	m.CutOff()
	m.CutOff()
	if n := m.CutOffs(time.Now()); n != 3 {
		t.Errorf("three cut-offs at once: CutOffs = %d, want 3", n)
	}
	if n := m.CutOffs(time.Now().Add(2 * CutBurst)); n != 0 {
		t.Errorf("a burst long before t: CutOffs = %d, want 0", n)
	}
	// A cut-off after a pause starts a new burst.
	m.cutMu.Lock()
	m.cutLast = m.cutLast.Add(-2 * CutBurst)
	m.cutMu.Unlock()
	m.CutOff()
	if n := m.CutOffs(time.Now()); n != 1 {
		t.Errorf("a cut-off after a pause: CutOffs = %d, want 1 (a new burst)", n)
	}
}
