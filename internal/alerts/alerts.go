package alerts

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Options adjust a Manager.
type Options struct {
	Logger *slog.Logger
	// Notified is told every notification's outcome per receiver (see
	// the Result constants), for the metrics; nil: not counted.
	Notified func(receiver, result string)
	// Every is how often apps are checked; 0 means 1s.
	Every time.Duration
	// Flush bounds how long Run, once its context ends, keeps trying to
	// deliver what is queued; 0 means 2s.
	Flush time.Duration
}

// Manager evaluates alerts and notifies the receivers: Run is its loop,
// Observe its request-path hook.
type Manager struct {
	cfg       *config.Alerts
	sup       fleet
	events    *telemetry.Events
	log       *slog.Logger
	every     time.Duration
	flush     time.Duration
	eval      *Evaluator
	notifiers []*notifier
	evCh      <-chan telemetry.Event
	unsub     func()

	counts sync.Map // app → *appCounts

	mu     sync.Mutex
	firing []FiringCount
	// seen keeps an alert's series at 0 once resolved, rather than
	// letting it vanish from /metrics.
	seen map[[2]string]bool
}

type appCounts struct{ requests, errors atomic.Uint64 }

// FiringCount is how many episodes of one alert fire for one app.
type FiringCount struct {
	Alert, App string
	Firing     int
}

// New returns a manager for cfg; Run starts it. It subscribes to events
// at once, so that none emitted before Run is missed.
func New(cfg *config.Alerts, sup Apps, events *telemetry.Events, opts Options) *Manager {
	return newManager(cfg, supervised{sup}, events, opts)
}

func newManager(cfg *config.Alerts, sup fleet, events *telemetry.Events, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notified == nil {
		opts.Notified = func(string, string) {}
	}
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	if opts.Flush <= 0 {
		opts.Flush = 2 * time.Second
	}
	m := &Manager{cfg: cfg, sup: sup, events: events, log: opts.Logger, every: opts.Every, flush: opts.Flush, eval: NewEvaluator(cfg)}
	for _, r := range cfg.Receivers {
		m.notifiers = append(m.notifiers, newNotifier(r, opts.Logger, opts.Notified))
	}
	m.evCh, m.unsub = events.Subscribe(1024)
	return m
}

// Observe counts a finished request toward error_rate. It is on the
// request path: two atomic adds at most, never blocks.
func (m *Manager) Observe(e *telemetry.AccessEntry) {
	if e.App == "" {
		return
	}
	c, ok := m.counts.Load(e.App)
	if !ok {
		c, _ = m.counts.LoadOrStore(e.App, &appCounts{})
	}
	ac := c.(*appCounts)
	ac.requests.Add(1)
	// As the metrics class it: a status outside 1xx–5xx is a 5xx.
	if class := e.Status / 100; class < 1 || class >= 5 {
		ac.errors.Add(1)
	}
}

// Firing is how many episodes fire now, by alert and app, for the
// gatehouse_alerts_firing gauge.
func (m *Manager) Firing() []FiringCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]FiringCount(nil), m.firing...)
}

// Run evaluates and notifies until ctx ends, then gives the receivers up
// to the flush bound to take what is queued (resolved notifications, say).
func (m *Manager) Run(ctx context.Context) error {
	defer m.unsub()
	var wg sync.WaitGroup
	for _, q := range m.notifiers {
		wg.Go(q.run)
	}
	defer func() {
		for _, q := range m.notifiers {
			wg.Go(func() { q.close(m.flush) })
		}
		wg.Wait()
	}()
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-m.evCh:
			if !ok {
				return nil
			}
			if ev.Type != telemetry.EventAlert {
				m.dispatch(m.eval.Event(ev))
			}
		case now := <-t.C:
			m.dispatch(m.eval.Check(now, m.states()))
		}
	}
}

// states reads every app for Check.
func (m *Manager) states() []AppState {
	apps := m.sup.apps()
	out := make([]AppState, 0, len(apps))
	for _, a := range apps {
		cfg := a.Config()
		st := AppState{Name: a.Name(), External: cfg.External()}
		st.Ready, st.Need = a.Readiness()
		for _, in := range a.Instances() {
			if s := in.State(); s == pool.Starting || s == pool.Crashed || s == pool.Unhealthy {
				if st.Failing == nil {
					st.Failing = map[string]bool{}
				}
				st.Failing[in.ID()] = true
			}
		}
		if c, ok := m.counts.Load(a.Name()); ok {
			ac := c.(*appCounts)
			st.Requests, st.Errors = ac.requests.Load(), ac.errors.Load()
		}
		if as := a.AutoscaleStatus(); as != nil && cfg.Autoscale != nil {
			st.AtMax, st.AtMaxWhy = as.AtMax, as.LastDecision
		}
		if ah := cfg.AutoHeal; ah != nil && ah.MaxRecycles != nil {
			st.PausePer = ah.MaxRecycles.Per.D()
		}
		out = append(out, st)
	}
	return out
}

// dispatch records each notification as an event and queues it for
// every receiver.
func (m *Manager) dispatch(ns []Notification) {
	if len(ns) == 0 {
		return
	}
	for _, n := range ns {
		m.events.Emit(telemetry.Event{App: n.App, Instance: n.Instance, Type: telemetry.EventAlert,
			Value: n.Alert, Trigger: n.Status, Detail: n.Text()})
		m.log.Info("alert", "alert", n.Alert, "status", n.Status, "app", n.App, "instance", n.Instance, "summary", n.Summary)
		for _, q := range m.notifiers {
			q.enqueue(n)
		}
	}
	m.countFiring()
}

func (m *Manager) countFiring() {
	if m.seen == nil {
		m.seen = map[[2]string]bool{}
	}
	by := map[[2]string]int{}
	for k := range m.seen {
		by[k] = 0
	}
	for _, k := range m.eval.Firing() {
		by[[2]string{k.Alert, k.App}]++
		m.seen[[2]string{k.Alert, k.App}] = true
	}
	out := make([]FiringCount, 0, len(by))
	for k, n := range by {
		out = append(out, FiringCount{Alert: k[0], App: k[1], Firing: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Alert != out[j].Alert {
			return out[i].Alert < out[j].Alert
		}
		return out[i].App < out[j].App
	})
	m.mu.Lock()
	m.firing = out
	m.mu.Unlock()
}
