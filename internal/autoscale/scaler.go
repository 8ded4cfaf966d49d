package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// TriggerAtMax is the trigger of the scale event that says an app is
// pinned at max while an out rule still holds.
const TriggerAtMax = telemetry.ScaleAtMax

// tick is how often Run looks for apps to evaluate: each app is
// evaluated at its own interval, to this precision.
const tick = 50 * time.Millisecond

// Options are the scaler's collaborators.
type Options struct {
	Events *telemetry.Events
	Logger *slog.Logger
	// Decided, if set, is told of every decision: direction is out, in
	// or at_max, rule the metric of the rule that decided (for metrics).
	Decided func(app, direction, rule string)
}

// Scaler evaluates every autoscaled app's rules and scales it.
type Scaler struct {
	sup  fleet
	opts Options

	reqs sync.Map // app name → *requests

	mu   sync.Mutex
	apps map[string]*appScaler
	wg   sync.WaitGroup
}

// appScaler is one app's autoscale state, owned by Run's goroutine but
// for scaling, which the scale goroutine sets and clears.
type appScaler struct {
	st      state
	next    time.Time
	scaling bool
	// doneAt is when the last scale goroutine finished, and out whether
	// it scaled out: the cool-downs count from the new instances being
	// ready (or the surplus ones drained), not from the decision.
	doneAt  time.Time
	doneOut bool
	// doneCount is the app's instance count when that scale finished:
	// what it reached, even when it failed, so that it is not taken for a
	// change made outside autoscale.
	doneCount int
	status    supervisor.AutoscaleStatus
}

// New returns a scaler; Run starts it.
func New(sup Apps, opts Options) *Scaler {
	return newScaler(supervised{sup}, opts)
}

func newScaler(sup fleet, opts Options) *Scaler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scaler{sup: sup, opts: opts, apps: map[string]*appScaler{}}
}

// Observe counts a finished request for its app's latency and hold
// signals. It is on the request path: cheap, never blocks for long.
func (s *Scaler) Observe(e *telemetry.AccessEntry) {
	if r, ok := s.reqs.Load(e.App); ok {
		r.(*requests).observe(e)
	}
}

// Run evaluates the apps at their intervals until ctx ends, then waits
// for the scales under way (which end with ctx) before returning.
func (s *Scaler) Run(ctx context.Context) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	defer s.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.evaluate(ctx, now)
		}
	}
}

// evaluate samples and decides for every autoscaled app whose interval
// has come.
func (s *Scaler) evaluate(ctx context.Context, now time.Time) {
	seen := map[string]bool{}
	defer s.dropGone(seen)
	for _, a := range s.sup.apps() {
		seen[a.Name()] = true
		cfg := a.Config()
		if cfg.Autoscale == nil || cfg.External() {
			s.forget(a)
			continue
		}
		r, _ := s.reqs.LoadOrStore(a.Name(), &requests{})
		s.mu.Lock()
		as := s.apps[a.Name()]
		if as == nil {
			as = &appScaler{}
			s.apps[a.Name()] = as
		}
		due := !now.Before(as.next)
		scaling := as.scaling
		if !as.doneAt.IsZero() {
			as.st.known, as.st.lastChange = as.doneCount, as.doneAt
			if as.doneOut {
				as.st.lastOut = as.doneAt
			}
			as.doneAt = time.Time{}
		}
		s.mu.Unlock()
		if !due {
			continue
		}
		as.next = now.Add(cfg.Autoscale.Interval.D())
		smp := measure(a, r.(*requests), now)
		as.st.add(smp, longest(cfg.Autoscale))
		if scaling {
			s.publish(a, as, cfg, smp, cfg.Instances)
			continue
		}
		s.step(ctx, a, as, cfg, now)
		s.publish(a, as, cfg, smp, cfg.Instances)
	}
}

// step decides for one app and carries the decision out.
func (s *Scaler) step(ctx context.Context, a app, as *appScaler, cfg *config.App, now time.Time) {
	cur := cfg.Instances
	switch {
	case cur == 0 || a.Unloaded():
		// Stopped (gatehouse stop) or unloaded when idle: not ours to
		// start again; the next request or gatehouse start does. Nor is
		// it pinned at max any more.
		as.st.known = cur
		s.endAtMax(as)
		return
	case as.st.known == 0:
		as.st.known = cur
	case cur != as.st.known:
		// Scaled from outside (gatehouse scale, a reload): the new count
		// stands for the cool-downs.
		as.st.known, as.st.lastOut, as.st.lastChange = cur, now, now
		s.record(as, fmt.Sprintf("instances set to %d outside autoscale; autoscale resumes after its cool-downs", cur), now, cur)
		return
	}
	d := decide(cfg, &as.st, cur, now)
	switch d.direction {
	case "":
		return
	case "at_max":
		detail := fmt.Sprintf("autoscale: at max (%d instances): %s; cannot scale out further", cur, d.why)
		s.opts.Events.Emit(telemetry.Event{App: a.Name(), Type: telemetry.EventScale, Trigger: TriggerAtMax, Value: d.rule.Metric + " " + format(d.value), Detail: detail})
		s.record(as, "at max: "+d.why, now, cur)
		s.decided(a.Name(), d)
		return
	}
	why := fmt.Sprintf("%d → %s: %s", cur, instances(d.target), d.why)
	s.record(as, why, now, d.target)
	s.decided(a.Name(), d)
	ev := &telemetry.Event{Trigger: d.rule.Metric, Value: format(d.value), Detail: "autoscale: " + why}
	s.mu.Lock()
	as.scaling = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := a.ScaleFor(ctx, cur, d.target, ev)
		if errors.Is(err, supervisor.ErrStaleDecision) {
			// Someone else changed the app meanwhile; the next
			// evaluation sees the count they set.
			s.opts.Logger.Info("autoscale: decision dropped", "app", a.Name(), "to", d.target, "err", err)
		} else if err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("autoscale: scale failed", "app", a.Name(), "to", d.target, "err", err)
			s.opts.Events.Emit(telemetry.Event{App: a.Name(), Type: telemetry.EventScale, Trigger: d.rule.Metric,
				Detail: fmt.Sprintf("autoscale: scale to %d failed: %v", d.target, err)})
		}
		s.mu.Lock()
		as.scaling, as.doneAt, as.doneOut, as.doneCount = false, time.Now(), d.direction == "out", a.Config().Instances
		s.mu.Unlock()
	}()
}

// endAtMax ends the app's at_max episode, if one is under way: its
// status no longer says at max, which resolves the autoscale_at_max
// alert (package alerts reads the status).
func (s *Scaler) endAtMax(as *appScaler) { as.st.atMax = false }

// record keeps the last decision for the status.
func (s *Scaler) record(as *appScaler, why string, now time.Time, desired int) {
	as.status.LastDecision, as.status.LastDecisionAt, as.status.Desired = why, now.UTC(), desired
}

func (s *Scaler) decided(app string, d decision) {
	if s.opts.Decided != nil {
		s.opts.Decided(app, d.direction, d.rule.Metric)
	}
}

// publish gives the supervisor the app's autoscale state for status.
func (s *Scaler) publish(a app, as *appScaler, cfg *config.App, smp sample, cur int) {
	st := as.status
	st.Min, st.Max = cfg.Autoscale.Min, cfg.Autoscale.Max
	if st.Desired == 0 {
		st.Desired = cur
	}
	st.AtMax = as.st.atMax
	s.mu.Lock()
	st.Scaling = as.scaling
	s.mu.Unlock()
	st.Signals = map[string]float64{}
	for k, v := range smp.v {
		if v == v { // not NaN: JSON has no NaN
			st.Signals[k] = v
		}
	}
	a.SetAutoscaleStatus(&st)
}

// forget drops the state of an app that no longer autoscales.
func (s *Scaler) forget(a app) {
	s.drop(a.Name())
	if a.AutoscaleStatus() != nil {
		a.SetAutoscaleStatus(nil)
	}
}

// drop forgets an app's autoscale state: an app that no longer
// autoscales, or is gone, has no status, so it is not pinned at max.
func (s *Scaler) drop(app string) {
	s.reqs.Delete(app)
	s.mu.Lock()
	delete(s.apps, app)
	s.mu.Unlock()
}

// dropGone forgets the apps a reload removed.
func (s *Scaler) dropGone(seen map[string]bool) {
	s.mu.Lock()
	var gone []string
	for name := range s.apps {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.drop(name)
	}
}

// instances is "1 instance" or "n instances".
func instances(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return fmt.Sprintf("%d instances", n)
}
