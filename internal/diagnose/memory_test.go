package diagnose_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// memory_pressure counts an instance recycled for memory only when the
// recycle replaced it. The supervisor emits the recycle event as the
// recycle begins, before the replacement is started, and a replacement
// that never gets ready ends the attempt with "recycle failed", the old
// process still running: that process was not recycled, whatever the
// recycle event said. A recycle for anything but the memory trigger (by
// hand, say) is not auto-heal's for memory either. The evidence says why
// a process was not recycled, in auto-heal's words.
func TestMemoryPressureCountsOnlyRecyclesThatReplacedTheProcess(t *testing.T) {
	now := time.Now().UTC()
	at := now.Add(-20 * time.Minute)
	const value = "private bytes 412 MiB > 400 MiB"
	fired := func(d time.Duration, id string, pid int, action string) telemetry.Event {
		return telemetry.Event{Time: at.Add(d), App: "web", Instance: id, PID: pid, Type: telemetry.EventAutoHeal,
			Trigger: "memory", Value: value, Detail: id + ": " + value + "; action " + action}
	}
	recycle := func(d time.Duration, id string, pid int, reason string) telemetry.Event {
		return telemetry.Event{Time: at.Add(d), App: "web", Instance: id, PID: pid, Type: telemetry.EventRecycle, Detail: reason}
	}
	begun := func(d time.Duration, id string, pid int) telemetry.Event {
		return recycle(d, id, pid, "auto-heal memory: "+value)
	}
	const failure = "recycle failed: web-3 not ready within start_timeout 1m0s: starting: connection refused"
	failed := func(d time.Duration, id string, pid int) telemetry.Event {
		e := fired(d, id, pid, "")
		e.Detail = failure
		return e
	}
	line := func(d time.Duration, id string, pid int, what string) string {
		return fmt.Sprintf("%s %s (pid %d): %s, %s", clockOf(at.Add(d)), id, pid, value, what)
	}
	for _, tc := range []struct {
		name     string
		events   []telemetry.Event
		title    string
		evidence []string
	}{
		{"a recycle begun that failed", []telemetry.Event{
			fired(0, "web-1", 4242, "recycle"), begun(10*time.Millisecond, "web-1", 4242), failed(time.Minute, "web-1", 4242),
		}, "1 instance went over auto-heal's memory limit and was not recycled",
			[]string{line(0, "web-1", 4242, "not recycled: "+failure)}},
		{"a recycle that failed, then one that did not", []telemetry.Event{
			fired(0, "web-1", 4242, "recycle"), begun(10*time.Millisecond, "web-1", 4242), failed(time.Minute, "web-1", 4242),
			fired(2*time.Minute, "web-1", 4242, "recycle"), begun(2*time.Minute+10*time.Millisecond, "web-1", 4242),
		}, "auto-heal recycled 1 instance for memory",
			[]string{line(0, "web-1", 4242, "recycled")}},
		{"recycled", []telemetry.Event{
			fired(0, "web-1", 4242, "recycle"), begun(10*time.Millisecond, "web-1", 4242),
		}, "auto-heal recycled 1 instance for memory",
			[]string{line(0, "web-1", 4242, "recycled")}},
		{"one recycled, one whose recycle failed", []telemetry.Event{
			fired(0, "web-1", 4242, "recycle"), begun(10*time.Millisecond, "web-1", 4242), failed(time.Minute, "web-1", 4242),
			fired(time.Second, "web-2", 4243, "recycle"), begun(time.Second+10*time.Millisecond, "web-2", 4243),
		}, "auto-heal recycled 1 of 2 instances over its memory limit",
			[]string{line(0, "web-1", 4242, "not recycled: "+failure), line(time.Second, "web-2", 4243, "recycled")}},
		// The failure quotes the replacement's last output, the app's
		// words, which may say anything.
		{"a recycle that failed, quoting output that names an action", []telemetry.Event{
			fired(0, "web-1", 4242, "recycle"), begun(10*time.Millisecond, "web-1", 4242),
			func() telemetry.Event {
				e := failed(time.Minute, "web-1", 4242)
				e.Detail += "; last output: payments: ledger locked; action required ⏎ exit 1"
				return e
			}(),
		}, "1 instance went over auto-heal's memory limit and was not recycled",
			[]string{line(0, "web-1", 4242, "not recycled: "+failure+"; last output: payments: ledger locked; action required ⏎ exit 1")}},
		{"recycled by hand after log_event", []telemetry.Event{
			fired(0, "web-1", 4242, "log_event"), recycle(time.Minute, "web-1", 4242, "requested through the admin API"),
		}, "1 instance went over auto-heal's memory limit and was not recycled",
			[]string{line(0, "web-1", 4242, "not recycled")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: tc.events}
			rep := diagnose.Run(ev)
			f := findingOf(rep, "memory_pressure", "web")
			if f == nil {
				t.Fatalf("no memory_pressure:\n%s", render(rep))
			}
			if f.Title != tc.title {
				t.Errorf("title %q; want %q:\n%s", f.Title, tc.title, render(rep))
			}
			if diff := cmp.Diff(tc.evidence, f.Evidence); diff != "" {
				t.Errorf("evidence (-want +got):\n%s", diff)
			}
		})
	}
}
