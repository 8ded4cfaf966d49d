package diagnose_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// oneInstance is the state of app web with web-1 in state, its last probe
// saying health.
func oneInstance(at time.Time, state, health string) diagnose.Snapshot {
	return diagnose.Snapshot{At: at, Apps: []diagnose.AppSnap{{Name: "web", Instances: []diagnose.InstanceSnap{{
		InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 4242, State: state, Health: health}, CPUPercent: 97,
	}}}}}
}

// An instance that stopped answering, or failed to start, and has since
// become healthy is no longer a current problem: its finding is past,
// says when it recovered, and does not claim what is no longer true.
// One that still fails stays current.
func TestRecoveredInstanceFindingsArePast(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Add(-20 * time.Minute)
	timeout := func(at time.Time) telemetry.Event {
		return telemetry.Event{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventUnhealthy, PID: 4242,
			Detail: "timeout after 300ms (2 failed probes in a row)"}
	}
	startTimeout := func(at time.Time) telemetry.Event {
		return telemetry.Event{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventStartTimeout, PID: 4000,
			Detail: "not ready within start_timeout 1s"}
	}
	for _, tc := range []struct {
		name      string
		id        string
		events    []telemetry.Event
		state     diagnose.Snapshot
		past      bool
		says      []string // in the title and evidence
		saysNot   []string
		firstSeen time.Time
	}{
		{
			name: "unresponsive, healthy again",
			id:   "unresponsive",
			events: []telemetry.Event{timeout(t0),
				{Time: t0.Add(time.Minute), App: "web", Instance: "web-1", Type: telemetry.EventHealthy, PID: 4242, Detail: "200 OK in 2ms"}},
			state:     oneInstance(now, "ready", "200 OK in 2ms"),
			past:      true,
			says:      []string{"past: web-1 recovered: healthy again at " + clockOf(t0.Add(time.Minute))},
			saysNot:   []string{"is alive but not answering", "its probe times out: 200 OK", "CPU at the last sample"},
			firstSeen: t0,
		},
		{
			name:      "unresponsive, still timing out",
			id:        "unresponsive",
			events:    []telemetry.Event{timeout(t0)},
			state:     oneInstance(now, "unhealthy", "timeout after 300ms"),
			says:      []string{"web-1 is alive but not answering", "its probe times out: timeout after 300ms"},
			firstSeen: t0,
		},
		{
			name: "unresponsive again after a recovery",
			id:   "unresponsive",
			events: []telemetry.Event{timeout(t0),
				{Time: t0.Add(time.Minute), App: "web", Instance: "web-1", Type: telemetry.EventHealthy, PID: 4242, Detail: "200 OK in 2ms"},
				timeout(t0.Add(2 * time.Minute))},
			state:     oneInstance(now, "unhealthy", "timeout after 300ms"),
			says:      []string{"web-1 is alive but not answering"},
			firstSeen: t0,
		},
		{
			name: "start failure, ready since",
			id:   "start_failure",
			events: []telemetry.Event{startTimeout(t0), startTimeout(t0.Add(5 * time.Second)),
				{Time: t0.Add(9 * time.Second), App: "web", Instance: "web-1", Type: telemetry.EventReady, PID: 4242, Detail: "200 OK in 2ms"}},
			state:     oneInstance(now, "ready", "200 OK in 2ms"),
			past:      true,
			says:      []string{"past: web-1 became ready at " + clockOf(t0.Add(9*time.Second)), "2 failed starts"},
			saysNot:   []string{"never became ready"},
			firstSeen: t0,
		},
		{
			name:      "start failure, still starting",
			id:        "start_failure",
			events:    []telemetry.Event{startTimeout(t0), startTimeout(t0.Add(5 * time.Second))},
			state:     oneInstance(now, "starting", "starting: connection refused"),
			says:      []string{"web-1 never became ready"},
			firstSeen: t0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: tc.events, State: tc.state}
			rep := diagnose.Run(ev)
			f := findingOf(rep, tc.id, "web")
			if f == nil {
				t.Fatalf("no %s finding:\n%s", tc.id, render(rep))
			}
			if f.Past != tc.past {
				t.Errorf("past = %v; want %v:\n%s", f.Past, tc.past, render(rep))
			}
			text := f.Title + "\n" + strings.Join(f.Evidence, "\n")
			for _, s := range tc.says {
				if !strings.Contains(text, s) {
					t.Errorf("finding does not say %q:\n%s", s, render(rep))
				}
			}
			for _, s := range tc.saysNot {
				if strings.Contains(text, s) {
					t.Errorf("finding says %q, no longer true:\n%s", s, render(rep))
				}
			}
			if !f.FirstSeen.Equal(tc.firstSeen) {
				t.Errorf("first seen %v; want %v", f.FirstSeen, tc.firstSeen)
			}
			for _, g := range rep.Findings {
				if tc.past && !g.Past && g.Severity == diagnose.Critical {
					t.Errorf("current critical finding %s after web-1 recovered:\n%s", g.ID, render(rep))
				}
			}
		})
	}
}

func clockOf(t time.Time) string { return t.UTC().Format("15:04:05") }

// Instances that failed alike are grouped only with those that fare the
// same since: the recovered ones make one past finding, titled as such,
// and those still failing one current finding.
func TestRecoveredInstancesGroupApartFromFailingOnes(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Add(-20 * time.Minute)
	ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web"}}}}
	for i, id := range []string{"web-1", "web-2", "web-3"} {
		ev.Events = append(ev.Events, telemetry.Event{Time: t0.Add(time.Duration(i) * time.Second), App: "web", Instance: id,
			Type: telemetry.EventStartTimeout, Detail: "not ready within start_timeout 1s"})
		state := "starting"
		if id != "web-3" {
			state = "ready"
			ev.Events = append(ev.Events, telemetry.Event{Time: t0.Add(time.Minute), App: "web", Instance: id, Type: telemetry.EventReady})
		}
		ev.State.Apps[0].Instances = append(ev.State.Apps[0].Instances, diagnose.InstanceSnap{InstanceStatus: supervisor.InstanceStatus{ID: id, State: state}})
	}
	rep := diagnose.Run(ev)
	type got struct {
		Title     string
		Instance  string
		Instances []string
		Past      bool
	}
	var gots []got
	for _, f := range rep.Findings {
		if f.ID == "start_failure" {
			gots = append(gots, got{f.Title, f.Instance, f.Instances, f.Past})
		}
	}
	want := []got{
		{"web-3 never became ready", "web-3", nil, false},
		{"2 instances of web (web-1 and web-2) failed to start, then became ready", "", []string{"web-1", "web-2"}, true},
	}
	if d := cmp.Diff(want, gots); d != "" {
		t.Errorf("start_failure findings (-want +got):\n%s\n%s", d, render(rep))
	}
}

// An instance that died soon after each start, and has since run far
// longer than any of those runs, no longer keeps dying: its restart_loop
// is past and says since when it runs. One whose current run is as short
// as the loop's is still in it.
func TestRestartLoopThatEndedIsPast(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	loopAt := now.Add(-30 * time.Minute)
	for _, tc := range []struct {
		name    string
		started time.Time // of the process that runs now
		past    bool
		says    string
	}{
		{"up for 25 minutes since", now.Add(-25 * time.Minute), true, "past: web-1 has run since " + clockOf(now.Add(-25*time.Minute))},
		{"started a moment ago", now.Add(-2 * time.Second), false, "web-1 keeps dying soon after it starts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: loopEvents("web-1", loopAt),
				State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web", Instances: []diagnose.InstanceSnap{{
					InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 6000, State: "ready", Health: "200 OK in 1ms", StartedAt: tc.started},
				}}}}}}
			rep := diagnose.Run(ev)
			f := findingOf(rep, "restart_loop", "web")
			if f == nil {
				t.Fatalf("no restart_loop:\n%s", render(rep))
			}
			if f.Past != tc.past {
				t.Errorf("past = %v; want %v:\n%s", f.Past, tc.past, render(rep))
			}
			if text := f.Title + "\n" + strings.Join(f.Evidence, "\n"); !strings.Contains(text, tc.says) {
				t.Errorf("finding does not say %q:\n%s", tc.says, render(rep))
			}
			if tc.past && strings.Contains(f.Title, "keeps dying") {
				t.Errorf("title %q: web-1 no longer keeps dying", f.Title)
			}
			if findingOf(rep, "crash", "web") != nil {
				t.Errorf("the loop's exits of their own reported as a crash too:\n%s", render(rep))
			}
		})
	}
}

// What an instance recovered from does not hide what went wrong with it
// since: web-1 failed to start, became ready, then crashed under a
// request; the crash is current.
func TestRecoveryDoesNotHideALaterCrash(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Add(-20 * time.Minute)
	code := 3
	ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now,
		Events: []telemetry.Event{
			{Time: t0, App: "web", Instance: "web-1", Type: telemetry.EventStartTimeout, PID: 4000, Detail: "not ready within start_timeout 1s"},
			{Time: t0.Add(5 * time.Second), App: "web", Instance: "web-1", Type: telemetry.EventReady, PID: 4100},
			{Time: t0.Add(10 * time.Minute), App: "web", Instance: "web-1", Type: telemetry.EventExit, PID: 4100, ExitCode: &code, Failed: 1,
				Detail: "exited with code 3; 1 request failed with it", Output: []string{"panic: boom"}},
		},
		Access: []diagnose.Access{{Time: t0.Add(10*time.Minute - time.Millisecond), RequestID: "r-1", App: "web", Instance: "web-1",
			Method: "POST", Path: "/boom", Status: 502, Attempts: 1, Cause: "upstream_reset",
			Detail: "connection to 127.0.0.1:40001 closed before response headers; instance web-1 (pid 4100) exited with code 3"}},
		State: oneInstance(now, "ready", "200 OK in 2ms"),
	}
	rep := diagnose.Run(ev)
	f := findingOf(rep, "crash", "web")
	if f == nil || f.Past {
		t.Fatalf("want web-1's crash, current, beside its past start_failure:\n%s", render(rep))
	}
}

// An instance that answers its probe again at the moment of the snapshot
// but whose requests still time out (it blocks now and then, between
// probes) has not recovered: its finding stays current, says the
// requests still time out, and is on the dashboard's summary.
func TestUnresponsiveInstanceWhoseRequestsStillTimeOutIsCurrent(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Add(-20 * time.Minute)
	ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now,
		Events: []telemetry.Event{
			{Time: t0, App: "web", Instance: "web-1", Type: telemetry.EventUnhealthy, PID: 4242, Detail: "timeout after 300ms (2 failed probes in a row)"},
			{Time: t0.Add(time.Minute), App: "web", Instance: "web-1", Type: telemetry.EventHealthy, PID: 4242, Detail: "200 OK in 2ms"},
		},
		State: oneInstance(now, "ready", "200 OK in 2ms"),
	}
	for i := range 5 {
		ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-time.Duration(5-i) * time.Minute), RequestID: fmt.Sprintf("r%d", i),
			App: "web", Instance: "web-1", Method: "GET", Path: "/", Status: 504, Cause: "upstream_timeout", DurationMS: 30000, UpstreamMS: 30000})
	}
	rep := diagnose.Run(ev)
	f := findingOf(rep, "unresponsive", "web")
	if f == nil {
		t.Fatalf("no unresponsive finding:\n%s", render(rep))
	}
	if f.Past {
		t.Errorf("unresponsive marked past while its requests still time out:\n%s", render(rep))
	}
	if f.RequestsAffected != 5 {
		t.Errorf("requests affected %d; want 5", f.RequestsAffected)
	}
	text := f.Title + "\n" + strings.Join(f.Evidence, "\n")
	if want := "requests to it still time out: 5 since " + clockOf(t0.Add(time.Minute)); !strings.Contains(text, want) {
		t.Errorf("finding does not say %q:\n%s", want, render(rep))
	}
	if strings.Contains(text, "its probe times out: 200 OK") {
		t.Errorf("finding says the probe times out, which it no longer does:\n%s", render(rep))
	}
}

// A snapshot taken before the instance's last failed probe (gatehouse
// stopped, or the data dir was copied, within a sample_interval of it)
// no longer tells how it is: its ready state and passing probe are not a
// recovery, and the finding stays current.
func TestUnresponsiveAfterTheLastSnapshotIsCurrent(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Add(-20 * time.Minute)
	last := now.Add(-2 * time.Second)
	ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now,
		Events: []telemetry.Event{
			{Time: t0, App: "web", Instance: "web-1", Type: telemetry.EventUnhealthy, PID: 4242, Detail: "timeout after 300ms (2 failed probes in a row)"},
			{Time: t0.Add(time.Minute), App: "web", Instance: "web-1", Type: telemetry.EventHealthy, PID: 4242, Detail: "200 OK in 2ms"},
			{Time: last, App: "web", Instance: "web-1", Type: telemetry.EventUnhealthy, PID: 4242, Detail: "timeout after 300ms (2 failed probes in a row)"},
		},
		State: oneInstance(now.Add(-5*time.Second), "ready", "200 OK in 2ms"),
	}
	rep := diagnose.Run(ev)
	f := findingOf(rep, "unresponsive", "web")
	if f == nil {
		t.Fatalf("no unresponsive finding:\n%s", render(rep))
	}
	if f.Past {
		t.Errorf("unresponsive marked past on a snapshot older than its last failed probe:\n%s", render(rep))
	}
	text := f.Title + "\n" + strings.Join(f.Evidence, "\n")
	if want := "its probe timed out at " + clockOf(last) + ", after the last snapshot of its state"; !strings.Contains(text, want) {
		t.Errorf("finding does not say %q:\n%s", want, render(rep))
	}
	if strings.Contains(text, "its probe times out: 200 OK") {
		t.Errorf("finding says the probe times out with a passing answer:\n%s", render(rep))
	}
}
