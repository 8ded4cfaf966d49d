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
