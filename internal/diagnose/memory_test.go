package diagnose_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// memory_pressure says how many instances auto-heal recycled for memory
// by the recycles that followed its memory firings: with action log_event
// (or custom, or a recycle that failed) the trigger fires again and again
// on one process and nothing is recycled, and the finding must not say
// otherwise, nor count each repeat as an instance.
func TestMemoryPressureCountsRecycledProcesses(t *testing.T) {
	now := time.Now().UTC()
	at := now.Add(-20 * time.Minute)
	fired := func(d time.Duration, pid int, detail string) telemetry.Event {
		return telemetry.Event{Time: at.Add(d), App: "web", Instance: "web-1", PID: pid, Type: telemetry.EventAutoHeal,
			Trigger: "memory", Value: "private bytes 412 MiB > 400 MiB", Detail: detail}
	}
	for _, tc := range []struct {
		name    string
		events  []telemetry.Event
		title   string
		notSays string
	}{
		{"log_event, firing each minute", []telemetry.Event{
			fired(0, 4242, "web-1: private bytes 412 MiB > 400 MiB; action log_event"),
			fired(time.Minute, 4242, "web-1: private bytes 430 MiB > 400 MiB; action log_event"),
			fired(2*time.Minute, 4242, "web-1: private bytes 455 MiB > 400 MiB; action log_event"),
		}, "1 instance went over auto-heal's memory limit and was not recycled", "recycled 3"},
		{"recycled twice", []telemetry.Event{
			fired(0, 4242, "web-1: private bytes 412 MiB > 400 MiB; action recycle"),
			{Time: at.Add(10 * time.Millisecond), App: "web", Instance: "web-1", PID: 4242, Type: telemetry.EventRecycle, Detail: "auto-heal memory: private bytes 412 MiB > 400 MiB"},
			fired(10*time.Minute, 5000, "web-1: private bytes 401 MiB > 400 MiB; action recycle"),
			{Time: at.Add(10*time.Minute + 10*time.Millisecond), App: "web", Instance: "web-1", PID: 5000, Type: telemetry.EventRecycle, Detail: "auto-heal memory: private bytes 401 MiB > 400 MiB"},
		}, "auto-heal recycled 2 instances for memory", "not recycled"},
		{"a recycle that failed", []telemetry.Event{
			fired(0, 4242, "web-1: private bytes 412 MiB > 400 MiB; action recycle"),
			fired(time.Second, 4242, "recycle failed: recycle: no running instance \"web-1\""),
		}, "1 instance went over auto-heal's memory limit and was not recycled", "auto-heal recycled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: tc.events}
			rep := diagnose.Run(ev)
			f := findingOf(rep, "memory_pressure", "web")
			if f == nil {
				t.Fatalf("no memory_pressure:\n%s", render(rep))
			}
			if !strings.HasPrefix(f.Title, tc.title) || strings.Contains(f.Title, tc.notSays) {
				t.Errorf("title %q; want it to begin %q:\n%s", f.Title, tc.title, render(rep))
			}
		})
	}
}
