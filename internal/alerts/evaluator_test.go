package alerts

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// step is one input to the evaluator at t0+at: an event, or a check of
// the apps.
type step struct {
	at    time.Duration
	event *telemetry.Event
	apps  []AppState
}

// got is one notification, reduced to what the cases compare.
type got struct {
	at     time.Duration
	status string
	key    Key
}

func ev(typ, app, inst, detail string) *telemetry.Event {
	return &telemetry.Event{Type: typ, App: app, Instance: inst, Detail: detail}
}

func web(ready, need int) []AppState { return []AppState{{Name: "web", Ready: ready, Need: need}} }

func traffic(reqs, errs uint64) []AppState {
	return []AppState{{Name: "web", Ready: 1, Need: 1, Requests: reqs, Errors: errs}}
}

func testAlertsConfig() *config.Alerts {
	c := config.NewAlerts()
	c.NoReadyFor = config.Duration(10 * time.Second)
	c.RepeatInterval = config.Duration(time.Hour)
	c.ErrorRate = config.ErrorRateAlert{Above: 0.1, Window: config.Duration(time.Minute), MinRequests: 10}
	return c
}

func TestEvaluator(t *testing.T) {
	exit := func(inst string) *telemetry.Event {
		return ev(telemetry.EventExit, "web", inst, "exit code 1 before it became ready")
	}
	noReady := Key{NoReadyInstance, "web", ""}
	tests := []struct {
		name  string
		steps []step
		want  []got
	}{
		{"healthy app: nothing", []step{{0, nil, web(1, 1)}, {time.Minute, nil, web(2, 1)}, {2 * time.Hour, nil, web(1, 1)}}, nil},
		{"no ready instance past the pending period fires once, resolves once", []step{
			{0, nil, web(1, 1)},
			{1 * time.Second, nil, web(0, 1)},
			{5 * time.Second, nil, web(0, 1)},
			{11 * time.Second, nil, web(0, 1)},
			{12 * time.Second, nil, web(0, 1)},
			{30 * time.Second, nil, web(1, 1)},
			{31 * time.Second, nil, web(1, 1)},
		}, []got{{11 * time.Second, Firing, noReady}, {30 * time.Second, Resolved, noReady}}},
		{"a blip shorter than the pending period is no episode", []step{
			{0, nil, web(0, 1)}, {9 * time.Second, nil, web(0, 1)}, {10 * time.Second, nil, web(1, 1)}, {25 * time.Second, nil, web(0, 1)},
		}, nil},
		{"stopped or idle-unloaded (need 0) is not an episode", []step{
			{0, nil, web(0, 0)}, {time.Minute, nil, web(0, 0)},
		}, nil},
		{"an app stopped during an episode resolves it", []step{
			{0, nil, web(0, 1)}, {10 * time.Second, nil, web(0, 1)}, {20 * time.Second, nil, web(0, 0)},
		}, []got{{10 * time.Second, Firing, noReady}, {20 * time.Second, Resolved, noReady}}},
		{"external pools are left alone", []step{
			{0, nil, []AppState{{Name: "web", External: true, Need: 1}}}, {time.Minute, nil, []AppState{{Name: "web", External: true, Need: 1}}},
		}, nil},
		{"still firing is repeated after repeat_interval only", []step{
			{0, nil, web(0, 1)}, {10 * time.Second, nil, web(0, 1)}, {30 * time.Minute, nil, web(0, 1)},
			{time.Hour + 10*time.Second, nil, web(0, 1)}, {time.Hour + 11*time.Second, nil, web(0, 1)},
		}, []got{{10 * time.Second, Firing, noReady}, {time.Hour + 10*time.Second, Firing, noReady}}},
		{"an app removed by a reload resolves its episodes", []step{
			{0, nil, web(0, 1)}, {10 * time.Second, nil, web(0, 1)}, {11 * time.Second, nil, nil},
		}, []got{{10 * time.Second, Firing, noReady}, {11 * time.Second, Resolved, noReady}}},
		{"restart loop: 3 exits within the window, resolved once they age out", []step{
			{0, exit("web-1"), nil}, {10 * time.Second, exit("web-1"), nil}, {20 * time.Second, exit("web-2"), nil},
			{30 * time.Second, exit("web-1"), nil}, {40 * time.Second, exit("web-1"), nil},
			{3 * time.Minute, nil, web(1, 1)}, {3*time.Minute + 10*time.Second, nil, web(1, 1)},
			{3*time.Minute + 31*time.Second, nil, web(1, 1)},
		}, []got{{30 * time.Second, Firing, Key{RestartLoop, "web", "web-1"}}, {3*time.Minute + 10*time.Second, Resolved, Key{RestartLoop, "web", "web-1"}}}},
		{"exits spread out are no loop", []step{
			{0, exit("web-1"), nil}, {2 * time.Minute, exit("web-1"), nil}, {4 * time.Minute, exit("web-1"), nil},
		}, nil},
		{"start failure until the instance is ready", []step{
			{0, ev(telemetry.EventStartTimeout, "web", "web-1", "not ready within start_timeout 10s"), nil},
			{1 * time.Second, ev(telemetry.EventExit, "web", "web-1", "killed by SIGKILL after start_timeout"), nil},
			{2 * time.Second, ev(telemetry.EventExit, "web", "web-2", "could not start: exec: no such file"), nil},
			{30 * time.Second, ev(telemetry.EventReady, "web", "web-1", ""), nil},
			{31 * time.Second, ev(telemetry.EventStop, "web", "web-2", ""), nil},
		}, []got{{0, Firing, Key{StartFailure, "web", "web-1"}}, {2 * time.Second, Firing, Key{StartFailure, "web", "web-2"}},
			{30 * time.Second, Resolved, Key{StartFailure, "web", "web-1"}}, {31 * time.Second, Resolved, Key{StartFailure, "web", "web-2"}}}},
		{"start failure of an instance that goes without an event (scaled in, app stopped, ready event missed) resolves at the next check", []step{
			{0, ev(telemetry.EventExit, "web", "web-1", "could not start: exec: no such file"), nil},
			{1 * time.Second, ev(telemetry.EventExit, "web", "web-2", "could not start: exec: no such file"), nil},
			{2 * time.Second, nil, []AppState{{Name: "web", Need: 2, Failing: map[string]bool{"web-1": true, "web-2": true}}}},
			{3 * time.Second, nil, []AppState{{Name: "web", Need: 1, Failing: map[string]bool{"web-1": true}}}},
			{4 * time.Second, nil, []AppState{{Name: "web", Need: 0}}},
		}, []got{{0, Firing, Key{StartFailure, "web", "web-1"}}, {1 * time.Second, Firing, Key{StartFailure, "web", "web-2"}},
			{3 * time.Second, Resolved, Key{StartFailure, "web", "web-2"}}, {4 * time.Second, Resolved, Key{StartFailure, "web", "web-1"}}}},
		{"auto-heal paused until max_recycles.per has passed", []step{
			{0, &telemetry.Event{Type: telemetry.EventAutoHeal, App: "web", Trigger: "status", Detail: "recycling"}, nil},
			{time.Second, &telemetry.Event{Type: telemetry.EventAutoHeal, App: "web", Trigger: "max_recycles", Detail: "auto-heal paused"}, nil},
			{time.Minute, nil, []AppState{{Name: "web", Ready: 1, Need: 1, PausePer: 10 * time.Minute}}},
			{10*time.Minute + time.Second, nil, []AppState{{Name: "web", Ready: 1, Need: 1, PausePer: 10 * time.Minute}}},
		}, []got{{time.Second, Firing, Key{AutoHealPaused, "web", ""}}, {10*time.Minute + time.Second, Resolved, Key{AutoHealPaused, "web", ""}}}},
		{"error rate over the window with enough requests", []step{
			{0, nil, traffic(0, 0)},
			{10 * time.Second, nil, traffic(5, 5)}, // 100% but too few requests
			{20 * time.Second, nil, traffic(100, 8)},
			{30 * time.Second, nil, traffic(200, 30)}, // 30 of 200: 15%
			{40 * time.Second, nil, traffic(300, 40)},
			{100 * time.Second, nil, traffic(1300, 41)}, // window from 40s: 1 of 1000
		}, []got{{30 * time.Second, Firing, Key{ErrorRate, "web", ""}}, {100 * time.Second, Resolved, Key{ErrorRate, "web", ""}}}},
		{"certificate expiring until renewed", []step{
			{0, &telemetry.Event{Type: telemetry.EventCertExpiring, Value: "example.com", Detail: "expires in 9 days"}, nil},
			{time.Hour, &telemetry.Event{Type: telemetry.EventCertExpiring, Value: "example.com"}, nil},
			{2 * time.Hour, &telemetry.Event{Type: telemetry.EventCertRenewed, Value: "example.com"}, nil},
		}, []got{{0, Firing, Key{CertExpiring, "", "example.com"}}, {2 * time.Hour, Resolved, Key{CertExpiring, "", "example.com"}}}},
		{"autoscale pinned at max while its status says so", []step{
			{0, nil, web(1, 1)},
			{time.Second, nil, []AppState{{Name: "web", Ready: 8, Need: 1, AtMax: true, AtMaxWhy: "at max: inflight_per_instance 6.2 > 4 for 30s"}}},
			{time.Minute, nil, []AppState{{Name: "web", Ready: 8, Need: 1, AtMax: true}}},
			{2 * time.Minute, nil, []AppState{{Name: "web", Ready: 8, Need: 1}}},
			{3 * time.Minute, nil, []AppState{{Name: "web", Ready: 8, Need: 1}}},
		}, []got{{time.Second, Firing, Key{AutoscaleAtMax, "web", ""}}, {2 * time.Minute, Resolved, Key{AutoscaleAtMax, "web", ""}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEvaluator(testAlertsConfig())
			var out []got
			for _, s := range tt.steps {
				now := t0.Add(s.at)
				var ns []Notification
				if s.event != nil {
					x := *s.event
					x.Time = now
					ns = e.Event(x)
				} else {
					ns = e.Check(now, s.apps)
				}
				for _, n := range ns {
					out = append(out, got{at: s.at, status: n.Status, key: n.Key})
				}
			}
			if diff := cmp.Diff(tt.want, out, cmp.AllowUnexported(got{})); diff != "" {
				t.Errorf("notifications (-want +got):\n%s", diff)
			}
		})
	}
}

// A resolved notification carries the episode's start and its end; the
// firing one has no end.
func TestEpisodeTimes(t *testing.T) {
	e := NewEvaluator(testAlertsConfig())
	e.Check(t0, web(0, 1))
	f := e.Check(t0.Add(10*time.Second), web(0, 1))
	r := e.Check(t0.Add(time.Minute), web(1, 1))
	if len(f) != 1 || len(r) != 1 {
		t.Fatalf("firing %v, resolved %v", f, r)
	}
	if !f[0].StartsAt.Equal(t0) || !f[0].EndsAt.IsZero() {
		t.Errorf("firing: startsAt %v endsAt %v, want %v and zero (the episode began when the pending period did)", f[0].StartsAt, f[0].EndsAt, t0)
	}
	if !r[0].StartsAt.Equal(t0) || !r[0].EndsAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("resolved: startsAt %v endsAt %v", r[0].StartsAt, r[0].EndsAt)
	}
	if f[0].Fingerprint() != r[0].Fingerprint() {
		t.Errorf("fingerprints differ: %s, %s", f[0].Fingerprint(), r[0].Fingerprint())
	}
}

// An episode's repeat_interval runs from when it was notified, not from
// when its pending period began: no_ready_instance starts its episode at
// the beginning of no_ready_for, and counting the repeat from there sent
// the firing notification twice in one check whenever no_ready_for was
// at least repeat_interval, and every first repeat early by no_ready_for.
func TestRepeatCountsFromTheNotification(t *testing.T) {
	tests := []struct {
		name       string
		noReadyFor time.Duration
		repeat     time.Duration
		checks     []time.Duration
		want       []time.Duration // when a firing notification goes
	}{
		{"pending period longer than repeat_interval: notified once when it fires", 10 * time.Second, 5 * time.Second,
			[]time.Duration{0, 10 * time.Second, 12 * time.Second, 15 * time.Second},
			[]time.Duration{10 * time.Second, 15 * time.Second}},
		{"pending period equal to repeat_interval: notified once when it fires", 10 * time.Second, 10 * time.Second,
			[]time.Duration{0, 10 * time.Second, 19 * time.Second, 20 * time.Second},
			[]time.Duration{10 * time.Second, 20 * time.Second}},
		{"first repeat a whole repeat_interval after the first notification", 30 * time.Minute, time.Hour,
			[]time.Duration{0, 30 * time.Minute, time.Hour + 29*time.Minute, time.Hour + 30*time.Minute},
			[]time.Duration{30 * time.Minute, time.Hour + 30*time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testAlertsConfig()
			c.NoReadyFor = config.Duration(tt.noReadyFor)
			c.RepeatInterval = config.Duration(tt.repeat)
			e := NewEvaluator(c)
			var out []time.Duration
			for _, at := range tt.checks {
				for _, n := range e.Check(t0.Add(at), web(0, 1)) {
					if n.Status == Firing {
						out = append(out, at)
					}
				}
			}
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("firing notifications (-want +got):\n%s", diff)
			}
		})
	}
}
