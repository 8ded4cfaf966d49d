package diagnose_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// unhealthy_recycled says which instances auto-heal recycled for staying
// unhealthy for health.recycle_after, from the events alone (a recycled
// instance is gone from the state), and, for one it could not recycle,
// why: the recycle failed, auto-heal paused at max_recycles.
func TestUnhealthyRecycledNamesTheRecycledInstances(t *testing.T) {
	now := time.Now().UTC()
	at := now.Add(-20 * time.Minute)
	const value = "unhealthy for 1h0m0s (health.recycle_after 1h0m0s); last probe: 503 Service Unavailable in 2ms"
	fired := func(d time.Duration, id string, pid int) telemetry.Event {
		return telemetry.Event{Time: at.Add(d), App: "web", Instance: id, PID: pid, Type: telemetry.EventAutoHeal,
			Trigger: "unhealthy", Value: value, Detail: id + ": " + value + "; action recycle"}
	}
	recycled := func(d time.Duration, id string, pid int) telemetry.Event {
		return telemetry.Event{Time: at.Add(d), App: "web", Instance: id, PID: pid, Type: telemetry.EventRecycle, Detail: "auto-heal unhealthy: " + value}
	}
	preempted := func(d time.Duration, id string, pid int) telemetry.Event {
		e := fired(d, id, pid)
		e.Detail = "not recycled: an operator's reload came first; web-3, its replacement, not ready yet, was stopped"
		return e
	}
	failed := func(d time.Duration, id string, pid int) telemetry.Event {
		e := fired(d, id, pid)
		e.Detail = "recycle failed: web-3 not ready within start_timeout 230s: starting: 503 Service Unavailable in 1ms"
		return e
	}
	paused := telemetry.Event{Time: at.Add(9 * time.Minute), App: "web", Type: telemetry.EventAutoHeal, Trigger: "max_recycles",
		Detail: "auto-heal paused: 5 recycles within 1h0m0s (max_recycles); it resumes when the oldest is 1h0m0s old"}
	for _, tc := range []struct {
		name      string
		events    []telemetry.Event
		running   []string
		title     string
		instances []string
		past      bool
		says      []string
	}{
		{"one recycled", []telemetry.Event{fired(0, "web-1", 4242), recycled(10*time.Millisecond, "web-1", 4242)},
			[]string{"web-2"}, "auto-heal recycled web-1 after it stayed unhealthy for health.recycle_after", []string{"web-1"}, true,
			[]string{"web-1 (pid 4242): " + value + "; recycled"}},
		{"two recycled", []telemetry.Event{
			fired(0, "web-1", 4242), recycled(10*time.Millisecond, "web-1", 4242),
			fired(time.Minute, "web-2", 4243), recycled(time.Minute+10*time.Millisecond, "web-2", 4243),
		}, []string{"web-3", "web-4"}, "auto-heal recycled web-1 and web-2 after they stayed unhealthy for health.recycle_after", []string{"web-1", "web-2"}, true,
			[]string{"web-2 (pid 4243): " + value + "; recycled"}},
		{"recycle failed, then paused", []telemetry.Event{
			fired(0, "web-1", 4242), failed(4*time.Minute, "web-1", 4242),
			fired(4*time.Minute+time.Second, "web-1", 4242), failed(8*time.Minute, "web-1", 4242), paused,
		}, []string{"web-1"}, "web-1 stayed unhealthy for health.recycle_after and was not recycled", []string{"web-1"}, false,
			[]string{"not recycled after 2 attempts: recycle failed: web-3 not ready within start_timeout", "auto-heal paused: 5 recycles"}},
		// As the supervisor tells it: the recycle event as each attempt
		// begins, then its failure when the replacement never gets ready.
		{"recycles begun that failed", []telemetry.Event{
			fired(0, "web-1", 4242), recycled(10*time.Millisecond, "web-1", 4242), failed(4*time.Minute, "web-1", 4242),
			fired(4*time.Minute+time.Second, "web-1", 4242), recycled(4*time.Minute+time.Second+10*time.Millisecond, "web-1", 4242),
			failed(8*time.Minute, "web-1", 4242), paused,
		}, []string{"web-1"}, "web-1 stayed unhealthy for health.recycle_after and was not recycled", []string{"web-1"}, false,
			[]string{"web-1 (pid 4242): " + value + "; not recycled after 2 attempts: recycle failed: web-3 not ready within start_timeout"}},
		{"a recycle that failed, then one that did not", []telemetry.Event{
			fired(0, "web-1", 4242), recycled(10*time.Millisecond, "web-1", 4242), failed(4*time.Minute, "web-1", 4242),
			fired(4*time.Minute+time.Second, "web-1", 4242), recycled(4*time.Minute+time.Second+10*time.Millisecond, "web-1", 4242),
		}, []string{"web-4"}, "auto-heal recycled web-1 after it stayed unhealthy for health.recycle_after", []string{"web-1"}, true,
			[]string{"web-1 (pid 4242): " + value + "; recycled"}},
		// An operator's operation took the app from the recycle: its
		// event begins "not recycled: ", said once in the evidence.
		{"a recycle the operator came before", []telemetry.Event{
			fired(0, "web-1", 4242), recycled(10*time.Millisecond, "web-1", 4242),
			preempted(time.Minute, "web-1", 4242),
		}, []string{"web-1"}, "web-1 stayed unhealthy for health.recycle_after and was not recycled", []string{"web-1"}, false,
			[]string{"web-1 (pid 4242): " + value + "; not recycled: an operator's reload came first; web-3, its replacement, not ready yet, was stopped"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var snap []diagnose.InstanceSnap
			for _, id := range tc.running {
				snap = append(snap, diagnose.InstanceSnap{InstanceStatus: supervisor.InstanceStatus{ID: id, State: "ready"}})
			}
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: tc.events,
				State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web", Instances: snap}}}}
			rep := diagnose.Run(ev)
			f := findingOf(rep, "unhealthy_recycled", "web")
			if f == nil {
				t.Fatalf("no unhealthy_recycled:\n%s", render(rep))
			}
			if f.Title != tc.title || f.Past != tc.past {
				t.Errorf("title %q, past %t; want %q, %t:\n%s", f.Title, f.Past, tc.title, tc.past, render(rep))
			}
			named := f.Instances
			if f.Instance != "" {
				named = []string{f.Instance}
			}
			if diff := cmp.Diff(tc.instances, named); diff != "" {
				t.Errorf("instances named (-want +got):\n%s", diff)
			}
			evidence := strings.Join(f.Evidence, "\n")
			for _, s := range tc.says {
				if !strings.Contains(evidence, s) {
					t.Errorf("evidence does not say %q:\n%s", s, evidence)
				}
			}
		})
	}
	t.Run("none without the trigger", func(t *testing.T) {
		ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: []telemetry.Event{
			{Time: at, App: "web", Instance: "web-1", PID: 1, Type: telemetry.EventRecycle, Detail: "gatehouse recycle web-1"},
		}}
		if n := count(diagnose.Run(ev), "unhealthy_recycled"); n != 0 {
			t.Errorf("%d unhealthy_recycled findings for a recycle by hand", n)
		}
	})
}
