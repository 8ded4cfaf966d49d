package server

import (
	"context"
	"strings"
	"testing"
)

// Between an upgrade's hand-over and this process's stop, a drain or
// undrain that reaches it (the admin socket is the successor's too)
// would change a process about to exit: it is refused.
func TestDrainRefusedAfterHandOver(t *testing.T) {
	t.Parallel()
	s := &Server{upgrade: &upgradeState{}}
	s.upgrade.done.Store(true)
	for _, on := range []bool{true, false} {
		err := s.Drain(context.Background(), on, func(string, ...any) {})
		if err == nil || !strings.Contains(err.Error(), "handed over") {
			t.Errorf("Drain(%v) after the hand-over = %v, want a refusal", on, err)
		}
	}
	if s.Draining() {
		t.Error("the drain was applied")
	}
}
