package diagnose_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// A Go program's stacks dump with allow_exit ends the process by design
// (SIGQUIT prints the goroutines and exits with code 2): that exit is the
// dump's, recorded by its events, not a crash of the app nor a loop. A
// dump that failed because the process exited under it, or one taken
// long before, leaves the exit a crash.
func TestExitADumpEndedIsNoCrash(t *testing.T) {
	now := time.Now().UTC()
	at := now.Add(-10 * time.Minute)
	code := 2
	started := func(at time.Time) telemetry.Event {
		return telemetry.Event{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventDumpStarted, PID: 4242, Value: "stacks", Trigger: "admin",
			Detail: "web-1 out of rotation for a stacks dump (asked by admin)"}
	}
	taken := func(at time.Time) telemetry.Event {
		return telemetry.Event{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventDump, PID: 4242,
			Value:  "web-1-stacks-20260101-100000.000.txt",
			Detail: "stacks of web-1 (pid 4242, go) by SIGQUIT: web-1-stacks-20260101-100000.000.txt, 12.0 KiB; the process ended, as allow_exit let it"}
	}
	exit := telemetry.Event{Time: at.Add(2 * time.Second), App: "web", Instance: "web-1", Type: telemetry.EventExit, PID: 4242, ExitCode: &code,
		Detail: "exited with code 2", Output: []string{"goroutine 1 [running]:", "main.main()"}}
	restart := telemetry.Event{Time: at.Add(2200 * time.Millisecond), App: "web", Instance: "web-1", Type: telemetry.EventRestart,
		Detail: "restart #1 after 0s back-off (last run lasted 1h0m0s)"}
	for _, tc := range []struct {
		name   string
		events []telemetry.Event
		crash  bool
	}{
		{"dump taken, written before the exit", []telemetry.Event{started(at), taken(at.Add(1900 * time.Millisecond)), exit, restart}, false},
		{"dump taken, written after the exit", []telemetry.Event{started(at), exit, taken(at.Add(2100 * time.Millisecond)), restart}, false},
		{"dump taken long before", []telemetry.Event{started(at.Add(-time.Minute)), taken(at.Add(-59 * time.Second)), exit, restart}, true},
		{"dump failed", []telemetry.Event{started(at), exit, {Time: at.Add(2100 * time.Millisecond), App: "web", Instance: "web-1",
			Type: telemetry.EventDumpFailed, PID: 4242, Detail: "stacks of web-1 failed: the process exited during the dump"}, restart}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: tc.events,
				State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web", Instances: []diagnose.InstanceSnap{{
					InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 4300, State: "ready", Health: "200 OK in 1ms"}}}}}}}
			rep := diagnose.Run(ev)
			if got := findingOf(rep, "crash", "web") != nil; got != tc.crash {
				t.Errorf("crash reported: %v; want %v:\n%s", got, tc.crash, render(rep))
			}
		})
	}
}

// Only a dump that ended the process explains its exit: a core or a
// heap snapshot leaves the process running, so a crash of it in the
// seconds after such a dump (one that cost requests, here) is the app's,
// and is reported as a crash.
func TestCrashRightAfterADumpThatLeftTheProcessRunningIsACrash(t *testing.T) {
	now := time.Now().UTC()
	at := now.Add(-10 * time.Minute)
	for _, tc := range []struct {
		kind, taken string
	}{
		{"core", "core of web-1 (pid 4242, node) by gcore: web-1-core-20260101-100000.000.core.zst, 80.0 MiB; the process was paused at most 1.2s"},
		{"heap", "heap of web-1 (pid 4242, node) by inspector: web-1-heap-20260101-100000.000.heapsnapshot, 40.0 MiB"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now,
				Events: []telemetry.Event{
					{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventDumpStarted, PID: 4242, Value: tc.kind, Trigger: "admin",
						Detail: "web-1 out of rotation for a " + tc.kind + " dump (asked by admin)"},
					{Time: at.Add(2 * time.Second), App: "web", Instance: "web-1", Type: telemetry.EventDump, PID: 4242, Detail: tc.taken},
					{Time: at.Add(3 * time.Second), App: "web", Instance: "web-1", Type: telemetry.EventExit, PID: 4242, Signal: "SIGSEGV", Failed: 1,
						Detail: "killed by SIGSEGV", Output: []string{"Segmentation fault"}},
					{Time: at.Add(3200 * time.Millisecond), App: "web", Instance: "web-1", Type: telemetry.EventRestart,
						Detail: "restart #1 after 0s back-off (last run lasted 1h0m0s)"},
				},
				Access: []diagnose.Access{{Time: at.Add(2500 * time.Millisecond), RequestID: "r1", App: "web", Instance: "web-1",
					Method: "POST", Path: "/orders", Status: 502, Cause: "upstream_reset", Detail: "instance web-1 (pid 4242) killed by SIGSEGV"}},
				State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web", Instances: []diagnose.InstanceSnap{{
					InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 4300, State: "ready", Health: "200 OK in 1ms"}}}}}}}
			rep := diagnose.Run(ev)
			if findingOf(rep, "crash", "web") == nil {
				t.Errorf("no crash after a %s dump that left the process running:\n%s", tc.kind, render(rep))
			}
		})
	}
}
