package autoscale

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// fakeApp is an autoscaled app under a load of clients, each keeping one
// request in flight on the ready instances. It scales as the supervisor
// does: a decision taken at another count is stale, the new count is the
// config's at once, a scale-out's instances take startTakes to be ready
// and a scale-in's take drainTakes to drain.
type fakeApp struct {
	events   *telemetry.Events
	cfg      atomic.Pointer[config.App]
	status   atomic.Pointer[supervisor.AutoscaleStatus]
	unloaded atomic.Bool

	mu      sync.Mutex
	clients int
	ready   int
	live    int // instances, ready or starting or draining
	peak    int
	scales  []scaleCall
	// fail is what the next ScaleFor returns instead of scaling.
	fail error
	// meanwhile, if set, changes the config at the start of the next
	// ScaleFor: a change that got the app's lock first.
	meanwhile  func(*config.App)
	startTakes time.Duration
	drainTakes time.Duration
}

// scaleCall is one ScaleFor the scaler made.
type scaleCall struct {
	At       time.Time
	From, To int
}

func (a *fakeApp) apps() []app                                      { return []app{a} }
func (a *fakeApp) Name() string                                     { return "web" }
func (a *fakeApp) Config() *config.App                              { return a.cfg.Load() }
func (a *fakeApp) Unloaded() bool                                   { return a.unloaded.Load() }
func (a *fakeApp) Held() int                                        { return 0 }
func (a *fakeApp) AutoscaleStatus() *supervisor.AutoscaleStatus     { return a.status.Load() }
func (a *fakeApp) SetAutoscaleStatus(s *supervisor.AutoscaleStatus) { a.status.Store(s) }

// reconfigure changes the config, as a reload or gatehouse scale does.
func (a *fakeApp) reconfigure(change func(*config.App)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := *a.cfg.Load()
	change(&c)
	a.cfg.Store(&c)
}

// Instances spreads the clients over the ready instances.
func (a *fakeApp) Instances() []instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]instance, 0, a.live)
	for i := range a.live {
		in := fakeInstance{cpu: -1}
		if i < a.ready {
			in.ready = true
			in.inflight = int64(a.clients / a.ready)
			if i < a.clients%a.ready {
				in.inflight++
			}
		}
		out = append(out, in)
	}
	return out
}

func (a *fakeApp) ScaleFor(ctx context.Context, from, n int, why *telemetry.Event) error {
	a.mu.Lock()
	a.scales = append(a.scales, scaleCall{time.Now(), from, n})
	err := a.fail
	a.fail = nil
	if f := a.meanwhile; f != nil {
		a.meanwhile = nil
		c := *a.cfg.Load()
		f(&c)
		a.cfg.Store(&c)
	}
	cfg := *a.cfg.Load()
	if err == nil && (cfg.Instances != from || a.unloaded.Load() || n < cfg.Autoscale.Min || n > cfg.Autoscale.Max) {
		err = supervisor.ErrStaleDecision
	}
	if err != nil {
		a.mu.Unlock()
		return err
	}
	cfg.Instances = n
	a.cfg.Store(&cfg)
	out := n > a.live
	takes := a.drainTakes
	if out {
		a.live, a.peak, takes = n, max(a.peak, n), a.startTakes
	} else {
		a.ready = n
	}
	a.mu.Unlock()
	ev := *why
	ev.App, ev.Type = "web", telemetry.EventScale
	a.events.Emit(ev)
	select {
	case <-time.After(takes):
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	a.ready, a.live = n, n
	a.mu.Unlock()
	return nil
}

// set changes the load to n clients, or the fake's other state, under
// its lock.
func (a *fakeApp) set(change func(a *fakeApp)) {
	a.mu.Lock()
	change(a)
	a.mu.Unlock()
}

// snapshot is the fake's state, read under its lock.
type snapshot struct {
	ready, live, peak int
	calls             []scaleCall
}

func (a *fakeApp) snapshot() snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	return snapshot{a.ready, a.live, a.peak, append([]scaleCall(nil), a.scales...)}
}

// autoscaleStatus is the published status, the zero one when none.
func (a *fakeApp) autoscaleStatus() supervisor.AutoscaleStatus {
	if st := a.status.Load(); st != nil {
		return *st
	}
	return supervisor.AutoscaleStatus{}
}

type fakeInstance struct {
	ready    bool
	inflight int64
	cpu      float64
}

func (in fakeInstance) Ready() bool         { return in.ready }
func (in fakeInstance) Inflight() int64     { return in.inflight }
func (in fakeInstance) CPUPercent() float64 { return in.cpu }

// scaling is a scaler on a fake app.
type scaling struct {
	app     *fakeApp
	events  *telemetry.Events
	mu      sync.Mutex
	decided []string // app, direction and rule, as the metrics are told
}

// scaleTest runs body in a synctest bubble, with a scaler running over
// web, autoscaled by as from n instances, until body returns.
func scaleTest(t *testing.T, as *config.Autoscale, n int, body func(t *testing.T, sc *scaling)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		events := telemetry.NewEvents(nil, 0)
		app := &fakeApp{events: events, ready: n, live: n, peak: n, startTakes: 300 * time.Millisecond, drainTakes: 100 * time.Millisecond}
		cfg := config.NewApp("web")
		cfg.Instances, cfg.Autoscale = n, as
		app.cfg.Store(cfg)
		sc := &scaling{app: app, events: events}
		s := newScaler(app, Options{Events: events, Decided: func(app, direction, rule string) {
			sc.mu.Lock()
			sc.decided = append(sc.decided, app+" "+direction+" "+rule)
			sc.mu.Unlock()
		}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		body(t, sc)
	})
}

// scaleEvents are the scale events so far, oldest first.
func (sc *scaling) scaleEvents() []telemetry.Event {
	var out []telemetry.Event
	for _, e := range sc.events.Since(time.Time{}) {
		if e.Type == telemetry.EventScale {
			out = append(out, e)
		}
	}
	return out
}

// decisionsMetric counts what the metrics were told, by "app direction
// rule".
func (sc *scaling) decisionsMetric() map[string]int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	m := map[string]int{}
	for _, d := range sc.decided {
		m[d]++
	}
	return m
}

// elapse lets d of a synctest bubble's fake time pass: the bubble's
// goroutines run until they block, and the timers due on the way fire.
// It takes no real time.
func elapse(d time.Duration) { time.Sleep(d) }
