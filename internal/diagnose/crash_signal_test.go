package diagnose_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The fix of a crash follows how the process died. A signal only
// something outside sends (SIGTERM, SIGINT, SIGHUP, SIGQUIT: an operator,
// a script, an orchestrator) did not come from the app's code, whatever
// request it was serving: the fix is to find the sender, not to
// reproduce the request. A fault signal (SIGILL, SIGFPE as SIGSEGV) is
// a crash in native code.
func TestCrashFixFollowsTheSignal(t *testing.T) {
	now := time.Now().UTC()
	for _, tc := range []struct {
		signal  string
		request bool // a POST failed with the exit
		fix     string
		notFix  string
	}{
		{"SIGTERM", true, "outside gatehouse", "reproduce it with that request"},
		{"SIGTERM", false, "outside gatehouse", "exited on its own"},
		{"SIGINT", false, "outside gatehouse", "exited on its own"},
		{"SIGHUP", true, "outside gatehouse", "reproduce it with that request"},
		{"SIGQUIT", false, "outside gatehouse", "exited on its own"},
		{"SIGKILL", true, "SIGKILL", "reproduce it with that request"},
		{"SIGSEGV", true, "native code", "exited on its own"},
		{"SIGILL", false, "native code", "exited on its own"},
		{"SIGFPE", true, "native code", "reproduce it with that request"},
	} {
		name := tc.signal
		if tc.request {
			name += " serving a request"
		}
		t.Run(name, func(t *testing.T) {
			at := now.Add(-5 * time.Minute)
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now,
				Events: []telemetry.Event{
					{Time: at.Add(-time.Hour), App: "web", Instance: "web-1", Type: telemetry.EventStart, PID: 4242},
					{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventExit, PID: 4242, Signal: tc.signal,
						Detail: "killed by " + tc.signal, Output: []string{"serving"}},
					{Time: at.Add(100 * time.Millisecond), App: "web", Instance: "web-1", Type: telemetry.EventRestart,
						Detail: "restart #1 after 0s back-off (last run lasted 1h0m0s)"},
				},
				State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web", Instances: []diagnose.InstanceSnap{{
					InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 4300, State: "ready", Health: "200 OK in 1ms"}}}}}},
			}
			if tc.request {
				ev.Events[1].Failed = 1
				ev.Access = []diagnose.Access{{Time: at.Add(-time.Second), RequestID: "r-1", App: "web", Instance: "web-1", Method: "POST", Path: "/orders",
					Status: 502, Attempts: 1, Cause: "upstream_reset",
					Detail: "connection to 127.0.0.1:40001 closed before response headers; instance web-1 (pid 4242) killed by " + tc.signal}}
			}
			rep := diagnose.Run(ev)
			f := findingOf(rep, "crash", "web")
			if f == nil {
				t.Fatalf("no crash:\n%s", render(rep))
			}
			if !strings.Contains(f.Fix, tc.fix) || strings.Contains(f.Fix, tc.notFix) {
				t.Errorf("fix %q; want it to say %q, not %q", f.Fix, tc.fix, tc.notFix)
			}
		})
	}
}

// A process whose last output says its runtime ran out of memory gets
// the runtime's fix, whatever signal or code it ended with: Node aborts
// (SIGABRT) on its own heap limit, which is no crash of native code.
func TestCrashOutOfMemoryNamesTheRuntimesLimit(t *testing.T) {
	now := time.Now().UTC()
	code2 := 2
	for _, tc := range []struct {
		name   string
		signal string
		code   *int
		output []string
		fix    string
	}{
		{"node's heap limit", "SIGABRT", nil, []string{
			"<--- Last few GCs --->",
			"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
			" 1: 0xb7f1e0 node::Abort() [node]",
			" 2: 0xa8c8b3  [node]",
		}, "--max-old-space-size"},
		{"node's older message", "SIGABRT", nil, []string{
			"FATAL ERROR: CALL_AND_RETRY_LAST Allocation failed - JavaScript heap out of memory",
		}, "--max-old-space-size"},
		{"the JVM", "SIGABRT", nil, []string{
			`Exception in thread "main" java.lang.OutOfMemoryError: Java heap space`,
			"\tat Main.main(Main.java:5)",
		}, "java.lang.OutOfMemoryError: Java heap space): raise its limit (-Xmx"},
		{"Go", "", &code2, []string{
			"fatal error: runtime: out of memory",
			"",
			"runtime stack:",
		}, "GOMEMLIMIT"},
		{"Python", "", &code2, []string{
			"Traceback (most recent call last):",
			`  File "app.py", line 3, in <module>`,
			"MemoryError",
		}, "MemoryError"},
		{"a fault, not memory", "SIGABRT", nil, []string{"double free or corruption (out)"}, "native code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := now.Add(-5 * time.Minute)
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now,
				Events: []telemetry.Event{
					{Time: at.Add(-time.Hour), App: "web", Instance: "web-1", Type: telemetry.EventStart, PID: 4242},
					{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventExit, PID: 4242, Signal: tc.signal, ExitCode: tc.code,
						Detail: "exited", Output: tc.output},
					{Time: at.Add(100 * time.Millisecond), App: "web", Instance: "web-1", Type: telemetry.EventRestart,
						Detail: "restart #1 after 0s back-off (last run lasted 1h0m0s)"},
				},
				State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web", Instances: []diagnose.InstanceSnap{{
					InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 4300, State: "ready", Health: "200 OK in 1ms"}}}}}},
			}
			f := findingOf(diagnose.Run(ev), "crash", "web")
			if f == nil {
				t.Fatalf("no crash finding")
			}
			if !strings.Contains(f.Fix, tc.fix) {
				t.Errorf("fix %q; want it to say %q", f.Fix, tc.fix)
			}
		})
	}
}
