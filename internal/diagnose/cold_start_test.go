package diagnose_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// cold_start counts the requests held while the app woke from idle, and
// says how long those waited: requests held at another time of the
// window (for instances that crashed, or were all busy) are not the
// wake's, however long they waited.
func TestColdStartCountsOnlyTheRequestsTheWakeHeld(t *testing.T) {
	now := time.Now().UTC()
	wake := now.Add(-50 * time.Minute)
	ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: []telemetry.Event{
		{Time: wake.Add(-20 * time.Minute), App: "web", Type: telemetry.EventIdleUnload, Detail: "no request for 20m0s (idle_timeout); stopping 1 instances"},
		{Time: wake, App: "web", Type: telemetry.EventWake, Detail: "request arrived; starting 1 instances (1 requests held)"},
		{Time: wake.Add(1200 * time.Millisecond), App: "web", Instance: "web-1", Type: telemetry.EventReady, PID: 4242},
	}}
	for i, d := range []time.Duration{-10 * time.Millisecond, 300 * time.Millisecond} {
		ev.Access = append(ev.Access, diagnose.Access{Time: wake.Add(d), RequestID: fmt.Sprintf("woke-%d", i), App: "web", Instance: "web-1",
			Method: "GET", Path: "/", Status: 200, Attempts: 1, HeldMS: float64((1200*time.Millisecond - d).Milliseconds()), DurationMS: 1250})
	}
	// Ten minutes ago, long after the wake, requests held for 30s for
	// instances that had crashed.
	for i := range 30 {
		ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-10 * time.Minute), RequestID: fmt.Sprintf("held-%d", i), App: "web",
			Method: "GET", Path: "/", Status: 503, Cause: "no_ready_instance", HeldMS: 30000, DurationMS: 30000})
	}
	rep := diagnose.Run(ev)
	f := findingOf(rep, "cold_start", "web")
	if f == nil {
		t.Fatalf("no cold_start:\n%s", render(rep))
	}
	if f.RequestsAffected != 2 || !strings.Contains(f.Title, "waited up to 1.21s") {
		t.Errorf("cold_start: %d requests affected, title %q; want the 2 requests the wake held, waiting up to 1.21s:\n%s",
			f.RequestsAffected, f.Title, render(rep))
	}
	for _, id := range f.SampleRequestIDs {
		if !strings.HasPrefix(id, "woke-") {
			t.Errorf("sample request %s was not held by the wake", id)
		}
	}
}
