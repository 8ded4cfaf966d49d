package diagnose_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/procstat"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Requests held in the queue for 30s that never reached the app, or
// reached it only after the hold and were answered at once, are not slow
// requests: the app took no time over them. Slow-request figures are the
// app's time, upstream_ms.
func TestSlowRequestsCountOnlyTheAppsTime(t *testing.T) {
	now := time.Now()
	held := func() *diagnose.Evidence {
		ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now}
		for i := range 40 {
			// Held until hold_timeout, then 503: never sent.
			ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-time.Minute), RequestID: "held-" + strconv.Itoa(i),
				App: "web", Method: "GET", Path: "/", Status: 503, DurationMS: 30_000, HeldMS: 30_000, Cause: "no_ready_instance"})
			// The hold queue was full: never sent either.
			ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-time.Minute), RequestID: "full-" + strconv.Itoa(i),
				App: "web", Method: "GET", Path: "/", Status: 503, DurationMS: 30_000, Cause: "queue_full"})
			// Held 30s, then served in 12ms.
			ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-time.Minute), RequestID: "late-" + strconv.Itoa(i),
				App: "web", Method: "GET", Path: "/", Status: 200, DurationMS: 30_012, HeldMS: 30_000, UpstreamMS: 12, Attempts: 1})
		}
		return ev
	}
	rep := diagnose.Run(held())
	overload := false
	for _, f := range rep.Findings {
		if f.ID == "slow_requests" {
			t.Errorf("requests that waited in the hold queue gave a slow_requests finding: %s %v\n%s", f.Title, f.Evidence, render(rep))
		}
		overload = overload || f.ID == "overload"
	}
	if !overload {
		t.Errorf("120 held requests, 80 refused: no overload finding:\n%s", render(rep))
	}

	// The app's own slowness among them is reported, by the app's time.
	ev := held()
	for i := range 20 {
		ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-time.Minute), RequestID: "report-" + strconv.Itoa(i),
			App: "web", Method: "GET", Path: "/report", Status: 200, DurationMS: 38_000, HeldMS: 30_000, UpstreamMS: 8_000, Attempts: 1})
	}
	rep = diagnose.Run(ev)
	slow := findingOf(rep, "slow_requests", "web")
	if slow == nil {
		t.Fatalf("/report took the app 8s each: no slow_requests finding:\n%s", render(rep))
	}
	text := slow.Title + "\n" + strings.Join(slow.Evidence, "\n")
	if !strings.Contains(slow.Title, "/report") || !strings.Contains(text, "p99 8s") || strings.Contains(text, "30s") || strings.Contains(text, "38s") {
		t.Errorf("slow_requests: want /report at p99 8s (the app's time, not the hold's); got:\n%s", text)
	}
}

// crashEvidence is the evidence of web-1 dying three times, 4s apart,
// each time restarted: with killedBy, each exit is a POST /crash that
// failed with it; without, the app died on its own.
func crashEvidence(killedBy bool) (ev *diagnose.Evidence, pids []int, ids []string) {
	now := time.Now().Add(-time.Minute)
	ev = &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now.Add(time.Minute)}
	code := 3
	for k := range 3 {
		pid := 4100 + k
		at := now.Add(time.Duration(k) * 4 * time.Second)
		detail := "exited with code 3"
		failed := 0
		if killedBy {
			failed = 1
			id := fmt.Sprintf("req-%d", k)
			ids = append(ids, id)
			ev.Access = append(ev.Access, diagnose.Access{Time: at.Add(-time.Millisecond), RequestID: id, App: "web", Instance: "web-1",
				Method: "POST", Path: "/crash", Status: 502, Attempts: 1, Cause: "upstream_reset", DurationMS: 3, UpstreamMS: 3,
				Detail: fmt.Sprintf("connection to 127.0.0.1:4000%d closed before response headers; instance web-1 (pid %d) exited with code 3", k, pid)})
			detail += "; 1 request failed with it"
		}
		ev.Events = append(ev.Events,
			telemetry.Event{Time: at.Add(-3 * time.Second), App: "web", Instance: "web-1", Type: telemetry.EventStart, PID: pid},
			telemetry.Event{Time: at.Add(-2 * time.Second), App: "web", Instance: "web-1", Type: telemetry.EventReady, PID: pid},
			telemetry.Event{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventExit, PID: pid, ExitCode: &code,
				Detail: detail, Failed: failed, Output: []string{
					"listening on 127.0.0.1:4000" + strconv.Itoa(k),
					fmt.Sprintf("faultapp[%d]: crash: exiting with code 3", pid),
					"panic: crash requested on /crash",
				}},
			telemetry.Event{Time: at.Add(100 * time.Millisecond), App: "web", Instance: "web-1", Type: telemetry.EventRestart,
				Detail: fmt.Sprintf("restart #%d after %ds back-off (last run lasted 4s)", k+1, k)})
		pids = append(pids, pid)
	}
	ev.State = diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web", Command: []string{"./server"},
		Instances: []diagnose.InstanceSnap{{InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 4103, State: "ready", Health: "200 OK"}}}}}}
	return ev, pids, ids
}

// An instance killed three times by a request, 4s apart, is a crash,
// first, naming the request, the exit and the process's output; not a
// restart_loop with 0 requests affected.
func TestCrashByRequestsIsNotRestartLoop(t *testing.T) {
	ev, pids, ids := crashEvidence(true)
	rep := diagnose.Run(ev)
	if len(rep.Findings) == 0 || rep.Findings[0].ID != "crash" {
		t.Fatalf("three exits each killed by POST /crash: want crash first; got:\n%s", render(rep))
	}
	for _, f := range rep.Findings {
		if f.ID == "restart_loop" {
			t.Errorf("exits that requests failed with are reported as restart_loop (%d requests affected):\n%s", f.RequestsAffected, render(rep))
		}
	}
	f := rep.Findings[0]
	text := f.Title + "\n" + strings.Join(f.Evidence, "\n")
	last := pids[len(pids)-1]
	for _, want := range []string{"3 times", "POST /crash", ids[2], "exit code 3", fmt.Sprintf("faultapp[%d]: crash", last), "output: panic: crash requested on /crash"} {
		if !strings.Contains(text, want) {
			t.Errorf("crash finding lacks %q:\n%s", want, render(rep))
		}
	}
	if f.Severity != diagnose.Critical || f.RequestsAffected != 3 {
		t.Errorf("crash finding: %s, %d requests affected; want critical, 3", f.Severity, f.RequestsAffected)
	}
	if len(f.SampleRequestIDs) == 0 || f.SampleRequestIDs[0] != ids[2] {
		t.Errorf("sample request ids %v; want the last POST /crash, %s, first", f.SampleRequestIDs, ids[2])
	}

	// The same exits with no request failing with them: the app dies on
	// its own soon after each start, a restart loop.
	ev, _, _ = crashEvidence(false)
	rep = diagnose.Run(ev)
	if len(rep.Findings) == 0 || rep.Findings[0].ID != "restart_loop" {
		t.Errorf("three exits of its own within 8s: want restart_loop first; got:\n%s", render(rep))
	}
}

// The markers of each runtime's advice; a fix for one runtime must carry
// none of another's.
var runtimeMarkers = map[string][]string{
	diagnose.RuntimeNode:   {"Node", "uncaughtException", "process.env", "event loop", "https.Agent"},
	diagnose.RuntimePython: {"Python", "os.environ", "gunicorn", "uvicorn"},
	diagnose.RuntimeRuby:   {"Ruby", "puma", "ENV.fetch"},
	diagnose.RuntimeJava:   {"Java", "System.getenv", "Spring"},
	diagnose.RuntimeGo:     {"Go:", "in Go", "net/http", "http.Server", "os.Getenv", "goroutine"},
}

// Fixes say what applies to the app's runtime, told from its command, and
// stay neutral when it is not known: no uncaughtException for a Go or
// Python app.
func TestFixesFollowTheRuntime(t *testing.T) {
	t.Parallel()
	goBin := testutil.BuildBinary(t, testutil.FaultAppPkg)
	tests := []struct {
		command []string
		runtime string
	}{
		{[]string{"node", "server.js"}, diagnose.RuntimeNode},
		{[]string{"npm", "start"}, diagnose.RuntimeNode},
		{[]string{"npx", "next", "start"}, diagnose.RuntimeNode},
		{[]string{"bun", "run", "index.ts"}, diagnose.RuntimeNode},
		{[]string{"deno", "run", "-A", "main.ts"}, diagnose.RuntimeNode},
		{[]string{"sh", "-c", "cd web && exec node server.js"}, diagnose.RuntimeNode},
		{[]string{"/usr/bin/python3.12", "app.py"}, diagnose.RuntimePython},
		{[]string{"gunicorn", "-w", "4", "app:app"}, diagnose.RuntimePython},
		{[]string{"uvicorn", "main:app"}, diagnose.RuntimePython},
		{[]string{"flask", "run"}, diagnose.RuntimePython},
		{[]string{"env", "PYTHONUNBUFFERED=1", "python", "-m", "myapp"}, diagnose.RuntimePython},
		{[]string{"bundle", "exec", "puma"}, diagnose.RuntimeRuby},
		{[]string{"rails", "server"}, diagnose.RuntimeRuby},
		{[]string{"ruby", "app.rb"}, diagnose.RuntimeRuby},
		{[]string{"java", "-jar", "app.jar"}, diagnose.RuntimeJava},
		{[]string{goBin, "-listen-port", "3000"}, diagnose.RuntimeGo},
		{[]string{"go", "run", "."}, diagnose.RuntimeGo},
		{[]string{"./no-such-server"}, ""},
		{[]string{"php", "-S", "0.0.0.0:8080"}, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.command, " "), func(t *testing.T) {
			if got := diagnose.DetectRuntime(tc.command, ""); got != tc.runtime {
				t.Errorf("DetectRuntime(%q) = %q; want %q", tc.command, got, tc.runtime)
			}
			rep := diagnose.Run(everyFixEvidence(tc.command))
			fixes := map[string]string{}
			for _, f := range rep.Findings {
				fixes[f.ID] = f.Fix
			}
			for _, id := range []string{"crash", "port_mismatch", "keepalive_race", "outbound_exhaustion", "unresponsive"} {
				fix, ok := fixes[id]
				if !ok {
					t.Errorf("no %s finding; the evidence should raise one:\n%s", id, render(rep))
					continue
				}
				for rt, markers := range runtimeMarkers {
					for _, m := range markers {
						if rt != tc.runtime && strings.Contains(fix, m) {
							t.Errorf("%s fix for a %q app speaks of %q (%s):\n%s", id, tc.runtime, m, rt, fix)
						}
					}
				}
				if tc.runtime == "" {
					continue
				}
				own := false
				for _, m := range runtimeMarkers[tc.runtime] {
					own = own || strings.Contains(fix, m)
				}
				if !own {
					t.Errorf("%s fix for a %s app says nothing of %s (one of %q):\n%s", id, tc.runtime, tc.runtime, runtimeMarkers[tc.runtime], fix)
				}
			}
		})
	}
}

// everyFixEvidence raises one finding of each kind whose fix is runtime
// specific, for an app run by command: web-1 crashed, web-2 listens on
// the wrong port, web-3 opens too many connections, web-4 spins with its
// probes timing out, and the app closes keep-alive connections early.
func everyFixEvidence(command []string) *diagnose.Evidence {
	now := time.Now().Add(-time.Minute)
	code := 1
	ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now.Add(time.Minute)}
	ev.Events = []telemetry.Event{
		{Time: now, App: "web", Instance: "web-1", Type: telemetry.EventExit, PID: 4001, ExitCode: &code, Detail: "exited with code 1",
			Output: []string{"Error: boom"}},
	}
	for i := range 3 {
		ev.Access = append(ev.Access, diagnose.Access{Time: now, RequestID: "s" + strconv.Itoa(i), App: "web", Instance: "web-1",
			Method: http.MethodPost, Path: "/", Status: 502, Attempts: 1, Cause: "stale_connection", UpstreamMS: 1, DurationMS: 1})
	}
	stats := func(s procstat.Stats) *procstat.Stats { s.At = now; return &s }
	ev.State = diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{
		Name: "web", Command: command, UpstreamIdleTimeout: 5 * time.Second,
		Instances: []diagnose.InstanceSnap{
			{InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 4011, Port: 41001, State: "ready", Health: "200 OK"}, CPUPercent: -1},
			{InstanceStatus: supervisor.InstanceStatus{ID: "web-2", PID: 4002, Port: 41002, State: "starting", Health: "starting: connection refused"},
				Stats: stats(procstat.Stats{Listening: []string{"127.0.0.1:3000"}}), CPUPercent: -1},
			{InstanceStatus: supervisor.InstanceStatus{ID: "web-3", PID: 4003, Port: 41003, State: "ready", Health: "200 OK"},
				Stats:      stats(procstat.Stats{Listening: []string{"127.0.0.1:41003"}, Outbound: []procstat.ConnGroup{{Remote: "10.0.0.5:5432", State: "ESTABLISHED", Count: 140}}, OutboundTotal: 140}),
				CPUPercent: -1},
			{InstanceStatus: supervisor.InstanceStatus{ID: "web-4", PID: 4004, Port: 41004, State: "unhealthy", Health: "timeout after 300ms"},
				Stats: stats(procstat.Stats{Listening: []string{"127.0.0.1:41004"}}), CPUPercent: 99},
		},
	}}}
	return ev
}

// An app crashed by requests three times, each as soon as it serves
// again. diagnose puts crash first, with the request, the exit code and
// the last output of the process that died, none of its predecessors'.
func TestDetectorCrashThreeTimesByRequests(t *testing.T) {
	t.Parallel()
	g, since := start(t, 1, nil)
	c := client(t, 15*time.Second)
	var pids []int
	for i := range 3 {
		g.WaitReady(t, "web", 1, 15*time.Second)
		pid := pidOf(t, g, "web-1")
		pids = append(pids, pid)
		if r := do(c, http.MethodPost, g.URL+"/crash"); r.status != http.StatusBadGateway {
			t.Fatalf("POST /crash #%d: %v; want 502", i+1, r)
		}
		waitEvents(t, g, 5*time.Second, telemetry.EventExit, i+1)
		if i < 2 {
			testutil.WaitFor(t, 15*time.Second, "a new process", func() bool {
				in := g.Instances("web")
				return len(in) == 1 && in[0].PID != pid && in[0].PID != 0
			})
		}
	}
	last := pids[2]
	var crashID string
	for _, a := range g.Access() {
		if a.Path == "/crash" && strings.Contains(a.Detail, fmt.Sprintf("(pid %d)", last)) {
			crashID = a.RequestID
		}
	}
	if crashID == "" {
		t.Fatalf("no access entry of the last POST /crash names pid %d: %+v", last, g.Access())
	}
	f := expectFirst(t, g, since, "crash", "3 times", "POST /crash", crashID, "exit code 3",
		fmt.Sprintf("output: faultapp[%d]: crash", last), "output: panic: crash requested on /crash")
	if f.Severity != diagnose.Critical || f.RequestsAffected != 3 || f.Instance != "web-1" {
		t.Errorf("crash finding: %s, instance %q, %d requests affected; want critical, web-1, 3", f.Severity, f.Instance, f.RequestsAffected)
	}
	// The output shown is the last process's own.
	other := regexp.MustCompile(`faultapp\[(\d+)\]`)
	shown := 0
	for _, e := range f.Evidence {
		if !strings.HasPrefix(e, "output: ") {
			continue
		}
		shown++
		for _, m := range other.FindAllStringSubmatch(e, -1) {
			if m[1] != strconv.Itoa(last) {
				t.Errorf("crash evidence shows output of pid %s, not of the process that died last (pid %d): %q\n%s", m[1], last, e, strings.Join(f.Evidence, "\n"))
			}
		}
	}
	if shown == 0 {
		t.Errorf("crash evidence shows no output")
	}
	if n := strings.Count(strings.Join(f.Evidence, "\n"), "output: panic: crash requested"); n != 1 {
		t.Errorf("crash evidence shows %d panics; want the last process's one:\n%s", n, strings.Join(f.Evidence, "\n"))
	}
	if strings.Contains(f.Fix, "uncaughtException") || !strings.Contains(f.Fix, "Go") {
		t.Errorf("the fault app is a Go binary; the fix speaks of something else: %s", f.Fix)
	}
	rep, err := g.Srv.Diagnose(since)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diagnose:\n%s", render(rep))
	for _, x := range rep.Findings {
		if x.ID == "restart_loop" {
			t.Errorf("an app crashed by requests is reported as a restart loop too:\n%s", render(rep))
		}
	}
}
