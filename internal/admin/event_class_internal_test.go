package admin

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The timeline marks what needs someone: failures bad, what degrades or
// may soon fail a warning, the rest plain.
func TestEventClass(t *testing.T) {
	for _, tc := range []struct {
		ev   telemetry.Event
		want string
	}{
		{telemetry.Event{Type: telemetry.EventExit}, "bad"},
		{telemetry.Event{Type: telemetry.EventPortMismatch}, "bad"},
		{telemetry.Event{Type: telemetry.EventCertChainIncomplete}, "warn"},
		{telemetry.Event{Type: telemetry.EventUpgradePredecessorGone}, "warn"},
		{telemetry.Event{Type: telemetry.EventUnhealthy}, "warn"},
		{telemetry.Event{Type: telemetry.EventAlert, Trigger: "resolved"}, ""},
		{telemetry.Event{Type: telemetry.EventAlert, Trigger: "firing"}, "bad"},
		{telemetry.Event{Type: telemetry.EventReady}, ""},
	} {
		t.Run(tc.ev.Type+"/"+tc.ev.Trigger, func(t *testing.T) {
			if got := eventClass(tc.ev); got != tc.want {
				t.Errorf("eventClass(%s) = %q, want %q", tc.ev.Type, got, tc.want)
			}
		})
	}
}
