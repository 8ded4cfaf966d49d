package alerts

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// fakeFleet is the apps the manager looks at, each as the test sets it.
type fakeFleet struct {
	mu   sync.Mutex
	list []*fakeApp
}

func (f *fakeFleet) apps() []app {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]app, len(f.list))
	for i, a := range f.list {
		out[i] = a
	}
	return out
}

// fakeApp is an app with a command whose readiness, instances and
// autoscale status the test sets; its fields are read under the fleet's
// lock.
type fakeApp struct {
	fl          *fakeFleet
	cfg         *config.App
	ready, need int
	states      map[string]pool.State
	autoscale   *supervisor.AutoscaleStatus
}

func (a *fakeApp) Name() string        { return a.cfg.Name }
func (a *fakeApp) Config() *config.App { return a.cfg }

func (a *fakeApp) Readiness() (int, int) {
	a.fl.mu.Lock()
	defer a.fl.mu.Unlock()
	return a.ready, a.need
}

func (a *fakeApp) Instances() []instance {
	a.fl.mu.Lock()
	defer a.fl.mu.Unlock()
	var out []instance
	for id, s := range a.states {
		out = append(out, fakeInstance{id, s})
	}
	return out
}

func (a *fakeApp) AutoscaleStatus() *supervisor.AutoscaleStatus {
	a.fl.mu.Lock()
	defer a.fl.mu.Unlock()
	return a.autoscale
}

type fakeInstance struct {
	id    string
	state pool.State
}

func (i fakeInstance) ID() string        { return i.id }
func (i fakeInstance) State() pool.State { return i.state }

// add puts an app named name with cfg's settings in the fleet, one ready
// instance of one needed.
func (f *fakeFleet) add(cfg *config.App) *fakeApp {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := &fakeApp{fl: f, cfg: cfg, ready: 1, need: 1, states: map[string]pool.State{cfg.Name + "-1": pool.Ready}}
	f.list = append(f.list, a)
	return a
}

// set changes an app under the fleet's lock.
func (f *fakeFleet) set(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
}

// watching is a manager over a fake fleet notifying one receiver,
// running until the test ends.
type watching struct {
	fl     *fakeFleet
	rcv    *receiver
	events *telemetry.Events
	m      *Manager
}

// startWatching runs a manager with cfg's alerts (its receivers replaced
// by one in-memory receiver) checking every second; it must be called in
// a synctest bubble.
func startWatching(t *testing.T, cfg *config.Alerts) *watching {
	t.Helper()
	w := &watching{fl: &fakeFleet{}, rcv: newReceiver(t, nil), events: telemetry.NewEvents(nil, 0)}
	cfg.Receivers = []*config.Receiver{testReceiver()}
	w.m = newManager(cfg, w.fl, w.events, Options{})
	sendTo(w.m.notifiers[0], w.rcv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// sent is what the receiver got: alert, status and app of each.
func (w *watching) sent(t *testing.T) []string {
	var out []string
	for _, b := range received[jsonBody](t, w.rcv) {
		out = append(out, b.Alert+" "+b.Status+" "+b.App+b.Instance)
	}
	return out
}

// The manager reads autoscale's at-max state from the app: the alert
// fires while the app's autoscale status says at max, once however long
// it stays there, and resolves when it no longer does (autoscale emits
// no event at the end).
func TestManagerAutoscaleAtMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWatching(t, config.NewAlerts())
		cfg := config.NewApp("web")
		cfg.Autoscale = &config.Autoscale{Min: 1, Max: 2}
		web := w.fl.add(cfg)

		w.fl.set(func() {
			web.autoscale = &supervisor.AutoscaleStatus{Min: 1, Max: 2, AtMax: true, LastDecision: "at max: inflight_per_instance 6 > 4 for 30s"}
		})
		elapse(time.Minute)
		w.fl.set(func() { web.autoscale = &supervisor.AutoscaleStatus{Min: 1, Max: 2} })
		elapse(2 * time.Second)
		want := []string{AutoscaleAtMax + " " + Firing + " web", AutoscaleAtMax + " " + Resolved + " web"}
		if got := w.sent(t); !slices.Equal(got, want) {
			t.Errorf("notifications %q, want %q", got, want)
		}
		if b := received[jsonBody](t, w.rcv); len(b) > 0 && b[0].Description != "at max: inflight_per_instance 6 > 4 for 30s" {
			t.Errorf("firing description %q, want autoscale's last decision", b[0].Description)
		}
	})
}

// Episodes from the periodic look and from events reach the webhook once
// each way: no ready instance past no_ready_for fires once and resolves
// once when an instance is ready again; a start failure fires on the
// exit event and resolves once the instance is no longer failing; and a
// still-firing episode is notified again after repeat_interval.
func TestManagerEpisodesNotifyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ac := config.NewAlerts()
		ac.NoReadyFor = config.Duration(10 * time.Second)
		ac.RepeatInterval = config.Duration(time.Hour)
		w := startWatching(t, ac)
		web := w.fl.add(config.NewApp("web"))

		elapse(5 * time.Second)
		w.fl.set(func() { web.ready, web.states["web-1"] = 0, pool.Crashed })
		w.events.Emit(telemetry.Event{Type: telemetry.EventExit, App: "web", Instance: "web-1", Detail: "could not start: exec: no such file"})
		elapse(9 * time.Second)
		if got, want := w.sent(t), []string{StartFailure + " " + Firing + " webweb-1"}; !slices.Equal(got, want) {
			t.Fatalf("before no_ready_for: %q, want %q", got, want)
		}
		elapse(50 * time.Minute)
		w.fl.set(func() { web.ready, web.states["web-1"] = 1, pool.Ready })
		elapse(2 * time.Second)
		want := []string{
			StartFailure + " " + Firing + " webweb-1",
			NoReadyInstance + " " + Firing + " web",
			NoReadyInstance + " " + Resolved + " web",
			StartFailure + " " + Resolved + " webweb-1",
		}
		if got := w.sent(t); !slices.Equal(got, want) {
			t.Fatalf("notifications %q, want %q", got, want)
		}

		// Down again for over repeat_interval: fired, then fired again.
		w.fl.set(func() { web.ready = 0 })
		elapse(time.Hour + time.Minute)
		got := w.sent(t)[len(want):]
		if want := []string{NoReadyInstance + " " + Firing + " web", NoReadyInstance + " " + Firing + " web"}; !slices.Equal(got, want) {
			t.Errorf("a second episode over repeat_interval: %q, want %q", got, want)
		}
	})
}

// A receiver that is down (it accepts and never answers) delays neither
// the request path nor event delivery: 10k observations and 10k events
// (each a notification) complete without waiting at all while the
// receiver hangs, and shutdown is bounded by the flush deadline.
func TestDownReceiverBlocksNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newHangingReceiver(t)
		cfg := config.NewAlerts()
		cfg.Receivers = []*config.Receiver{testReceiver()}
		events := telemetry.NewEvents(nil, 0)
		out := &outcomes{}
		m := newManager(cfg, &fakeFleet{}, events, Options{Notified: out.record, Flush: 200 * time.Millisecond, Every: 10 * time.Millisecond})
		sendTo(m.notifiers[0], rcv)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()

		start := time.Now()
		e := &telemetry.AccessEntry{App: "web", Status: 502}
		for range 10000 {
			m.Observe(e)
		}
		for i := range 10000 {
			events.Emit(telemetry.Event{Type: telemetry.EventCertExpiring, Value: fmt.Sprintf("cert%d.example", i)})
		}
		// On the fake clock: any wait for the receiver (its 5s timeout,
		// a retry's back-off) would show.
		if d := time.Since(start); d != 0 {
			t.Errorf("10k observations and 10k events took %s with the receiver down", d)
		}
		elapse(time.Second)
		if out.count(ResultDropped) == 0 {
			t.Errorf("the queue did not overflow: %d results", len(out.list()))
		}
		if len(rcv.arrivals()) == 0 {
			t.Errorf("the receiver was not tried")
		}
		start = time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("stopping took %s with the receiver down, want the 200ms flush bound", d)
		}
	})
}

// elapse lets d of a synctest bubble's fake time pass: the bubble's
// goroutines run until they block, and the timers due on the way fire.
// It takes no real time.
func elapse(d time.Duration) { time.Sleep(d) }
