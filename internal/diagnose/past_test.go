package diagnose_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// An app whose two instances die at start is one critical restart_loop
// naming both. Once the app is renamed in the config, the gatehouse
// started with the new config (on the same data_dir, whose logs still
// hold the loop) reports that finding as past, after the current ones,
// and nothing current is critical.
func TestFindingsOfARenamedAppArePast(t *testing.T) {
	t.Parallel()
	g, since := start(t, 2, func(_ *config.Config, a *config.App) {
		a.HoldTimeout = config.Duration(time.Second)
	}, "-exit-at-start", "1")
	testutil.WaitFor(t, 30*time.Second, "3 exits of web-1 and of web-2", func() bool {
		n := map[string]int{}
		for _, e := range g.Events(telemetry.EventExit) {
			n[e.Instance]++
		}
		return n["web-1"] >= 3 && n["web-2"] >= 3
	})
	rep, _ := apiDiagnose(t, g, since)
	loop := findingOf(rep, "restart_loop", "web")
	if loop == nil || rep.Findings[0].ID != "restart_loop" {
		t.Fatalf("web's instances die at start: want restart_loop first; got:\n%s", render(rep))
	}
	if d := cmp.Diff([]string{"web-1", "web-2"}, loop.Instances); d != "" || loop.Instance != "" || loop.Severity != diagnose.Critical || loop.Past {
		t.Errorf("restart_loop: instance %q, instances %v, %s, past %v; want one current critical finding for web naming web-1 and web-2 (-want +got instances):\n%s\n%s",
			loop.Instance, loop.Instances, loop.Severity, loop.Past, d, render(rep))
	}
	if n := count(rep, "restart_loop"); n != 1 {
		t.Errorf("%d restart_loop findings; want one for the app:\n%s", n, render(rep))
	}
	g.Stop(t)

	cfg, app := harness.FaultApp(t, 1)
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	cfg.DataDir = g.Config.DataDir
	app.Name = "site"
	cfg.Apps = map[string]*config.App{"site": app}
	cfg.Order = []string{"site"}
	next := harness.Start(t, cfg)
	next.WaitReady(t, "site", 1, 15*time.Second)

	rep, raw := apiDiagnose(t, next, since)
	loop = findingOf(rep, "restart_loop", "web")
	if loop == nil {
		t.Fatalf("the logs still hold web's loop: want its restart_loop, past; got:\n%s", render(rep))
	}
	if !loop.Past || !strings.Contains(strings.Join(loop.Evidence, "\n"), "web is no longer configured") {
		t.Errorf("restart_loop of web, which is no longer configured: past %v; want past, saying why:\n%s", loop.Past, render(rep))
	}
	for _, f := range rep.Findings {
		if !f.Past && f.Severity == diagnose.Critical {
			t.Errorf("current critical finding %s for %s after web was renamed:\n%s", f.ID, f.App, render(rep))
		}
	}
	if last := rep.Findings[len(rep.Findings)-1]; !last.Past {
		t.Errorf("past findings come after the current ones; the last is current:\n%s", render(rep))
	}
	if !strings.Contains(render(rep), "Past: what these name no longer runs, or has recovered.") {
		t.Errorf("the report for people does not set the past findings apart:\n%s", render(rep))
	}
	pastInJSON := false
	for _, f := range raw["findings"].([]any) {
		if m, _ := f.(map[string]any); m["id"] == "restart_loop" && m["app"] == "web" {
			pastInJSON = m["past"] == true
		}
	}
	if !pastInJSON {
		t.Errorf("/api/diagnose: web's restart_loop has no \"past\": true")
	}
}

// loopEvents is instance id of app web dying on its own three times, a
// second after each start, and restarted each time.
func loopEvents(id string, at time.Time) []telemetry.Event {
	code := 1
	var evs []telemetry.Event
	for k := range 3 {
		t := at.Add(time.Duration(k) * 3 * time.Second)
		pid := 5000 + k
		evs = append(evs,
			telemetry.Event{Time: t.Add(-time.Second), App: "web", Instance: id, Type: telemetry.EventStart, PID: pid},
			telemetry.Event{Time: t, App: "web", Instance: id, Type: telemetry.EventExit, PID: pid, ExitCode: &code,
				Detail: "exited with code 1", Output: []string{"error: DATABASE_URL is not set"}},
			telemetry.Event{Time: t.Add(100 * time.Millisecond), App: "web", Instance: id, Type: telemetry.EventRestart,
				Detail: fmt.Sprintf("restart #%d after %ds back-off (last run lasted 1s)", k+1, k)})
	}
	return evs
}

// snapshot is the state of apps, each with its instances crashed.
func snapshot(at time.Time, apps map[string][]string) diagnose.Snapshot {
	s := diagnose.Snapshot{At: at}
	for name, ids := range apps {
		a := diagnose.AppSnap{Name: name}
		for _, id := range ids {
			a.Instances = append(a.Instances, diagnose.InstanceSnap{InstanceStatus: supervisor.InstanceStatus{ID: id, State: "crashed"}})
		}
		s.Apps = append(s.Apps, a)
	}
	return s
}

// Findings are past when what they name no longer runs, by the state
// snapshot: an app no longer configured, or every instance the finding
// names gone. Without a snapshot nothing can be told, and nothing is
// past.
func TestFindingsPastWhenWhatTheyNameNoLongerRuns(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name      string
		loops     []string // instances of web in a restart loop
		state     diagnose.Snapshot
		past      bool
		instances []string
		says      string
	}{
		{"app still configured", []string{"web-1"}, snapshot(now, map[string][]string{"web": {"web-1"}}), false, nil, ""},
		{"app renamed", []string{"web-1"}, snapshot(now, map[string][]string{"site": {"site-1"}}), true, nil, "past: web is no longer configured"},
		{"instance scaled away", []string{"web-2"}, snapshot(now, map[string][]string{"web": {"web-1"}}), true, nil, "past: web-2 no longer runs"},
		{"every instance of a group gone", []string{"web-1", "web-2"}, snapshot(now, map[string][]string{"web": {"web-3"}}), true, []string{"web-1", "web-2"},
			"past: web-1 and web-2 no longer run"},
		{"one instance of a group gone", []string{"web-1", "web-2"}, snapshot(now, map[string][]string{"web": {"web-2"}}), false, []string{"web-1", "web-2"},
			"of these, web-1 no longer runs"},
		{"no snapshot", []string{"web-1"}, diagnose.Snapshot{}, false, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, State: tc.state}
			for _, id := range tc.loops {
				ev.Events = append(ev.Events, loopEvents(id, now.Add(-10*time.Minute))...)
			}
			rep := diagnose.Run(ev)
			loop := findingOf(rep, "restart_loop", "web")
			if loop == nil {
				t.Fatalf("no restart_loop:\n%s", render(rep))
			}
			if loop.Past != tc.past {
				t.Errorf("past = %v; want %v:\n%s", loop.Past, tc.past, render(rep))
			}
			if d := cmp.Diff(tc.instances, loop.Instances); d != "" {
				t.Errorf("instances (-want +got):\n%s", d)
			}
			if tc.says != "" && (len(loop.Evidence) == 0 || !strings.HasPrefix(loop.Evidence[0], tc.says)) {
				t.Errorf("evidence %q; want it to start with %q", loop.Evidence, tc.says)
			}
		})
	}
}

// One cause on several instances of an app is one finding for the app,
// naming the instances, with each instance's evidence and the app's held
// requests counted once. Instances whose fixes differ keep a finding
// each.
func TestInstancesSharingACauseAreOneFinding(t *testing.T) {
	now := time.Now()
	ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now,
		State: snapshot(now, map[string][]string{"web": {"web-1", "web-2", "web-3"}})}
	for _, id := range []string{"web-1", "web-2", "web-3"} {
		ev.Events = append(ev.Events, loopEvents(id, now.Add(-10*time.Minute))...)
	}
	for i := range 7 {
		ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-9 * time.Minute), RequestID: fmt.Sprintf("held-%d", i), App: "web",
			Method: "GET", Path: "/", Status: 503, Cause: "no_ready_instance", HeldMS: 1000, DurationMS: 1000})
	}
	rep := diagnose.Run(ev)
	if n := count(rep, "restart_loop"); n != 1 {
		t.Fatalf("%d restart_loop findings for three instances looping alike; want 1:\n%s", n, render(rep))
	}
	f := rep.Findings[0]
	if f.ID != "restart_loop" || f.Instance != "" || f.Severity != diagnose.Critical || f.Past {
		t.Fatalf("first finding %s for %q, %s, past %v; want the current critical restart_loop of web:\n%s", f.ID, f.Instance, f.Severity, f.Past, render(rep))
	}
	if d := cmp.Diff([]string{"web-1", "web-2", "web-3"}, f.Instances); d != "" {
		t.Errorf("instances (-want +got):\n%s", d)
	}
	if want := "3 instances of web (web-1, web-2 and web-3) keep dying soon after they start"; f.Title != want {
		t.Errorf("title %q; want %q", f.Title, want)
	}
	if f.RequestsAffected != 7 {
		t.Errorf("%d requests affected; want the app's 7 held requests, counted once", f.RequestsAffected)
	}
	text := strings.Join(f.Evidence, "\n")
	for _, id := range f.Instances {
		if !strings.Contains(text, id+" keeps dying soon after it starts (3 exits)") || !strings.Contains(text, id+": last exit: exited with code 1") {
			t.Errorf("the evidence lacks %s's own:\n%s", id, text)
		}
	}
	if !strings.Contains(render(rep), "restart_loop  web (web-1, web-2, web-3)") {
		t.Errorf("the report for people does not name the instances:\n%s", render(rep))
	}

	// Crashes on two instances under different requests have different
	// fixes: two findings.
	ev, _, _ = crashEvidence(true)
	other, _, _ := crashEvidence(true)
	for _, e := range other.Events {
		e.Instance = "web-2"
		ev.Events = append(ev.Events, e)
	}
	for _, a := range other.Access {
		a.Instance, a.Path, a.RequestID = "web-2", "/other", "other-"+a.RequestID
		a.Detail = strings.ReplaceAll(a.Detail, "web-1", "web-2")
		ev.Access = append(ev.Access, a)
	}
	ev.State.Apps[0].Instances = append(ev.State.Apps[0].Instances, diagnose.InstanceSnap{InstanceStatus: supervisor.InstanceStatus{ID: "web-2", State: "ready"}})
	rep = diagnose.Run(ev)
	if n := count(rep, "crash"); n != 2 {
		t.Errorf("%d crash findings for web-1 (POST /crash) and web-2 (POST /other); want 2:\n%s", n, render(rep))
	}
}
