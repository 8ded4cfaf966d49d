package autoheal

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Healer watches instances and acts on triggers.
type Healer struct {
	sup    fleet
	dumper Dumper
	events *telemetry.Events
	log    *slog.Logger
	every  time.Duration

	insts   sync.Map // instance id → *counters
	actions chan *firing

	mu   sync.Mutex
	apps map[string]*appState
	wg   sync.WaitGroup
}

// appState is an app's recent recycles, for max_recycles.
type appState struct {
	recycles []time.Time
	paused   bool
}

// New returns a healer; Run starts it. every is how often memory is
// checked (the sample interval).
func New(sup Apps, dumper Dumper, events *telemetry.Events, every time.Duration, log *slog.Logger) *Healer {
	h := newHealer(supervised{sup}, events, every, log)
	h.dumper = dumper
	return h
}

func newHealer(sup fleet, events *telemetry.Events, every time.Duration, log *slog.Logger) *Healer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Healer{sup: sup, events: events, log: log, every: every, actions: make(chan *firing, 64), apps: map[string]*appState{}}
}

// Dumper takes a dump of an instance (package dumps), for action: dump.
type Dumper interface {
	Dump(ctx context.Context, app, instance, kind, by string) error
}

// Observe counts a finished request. It is on the request path: cheap,
// never blocks.
func (h *Healer) Observe(e *telemetry.AccessEntry) {
	if e.Instance == "" || e.App == "" {
		return
	}
	c := h.counters(e.App, e.Instance)
	if c == nil {
		return
	}
	ah := c.app.Config().AutoHeal
	now := e.Time.Add(e.Duration) // the request's end: the gateway's clock reading, not another
	if e.Time.IsZero() {
		now = time.Now()
	}
	if f := c.observe(e, ah, now); f != nil {
		f.app, f.instance = e.App, e.Instance
		h.submit(f, c)
	}
}

func (h *Healer) counters(app, id string) *counters {
	if c, ok := h.insts.Load(id); ok {
		return c.(*counters)
	}
	a := h.sup.app(app)
	if a == nil {
		return nil
	}
	fresh := newCounters(a.Config().AutoHeal)
	fresh.app = a
	c, _ := h.insts.LoadOrStore(id, fresh)
	return c.(*counters)
}

func (h *Healer) submit(f *firing, c *counters) {
	select {
	case h.actions <- f:
	default:
		c.done()
	}
}

// Run checks memory every interval and carries out actions until ctx
// ends; it waits for actions under way before returning.
func (h *Healer) Run(ctx context.Context) error {
	t := time.NewTicker(h.every)
	defer t.Stop()
	defer h.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-h.actions:
			h.act(ctx, f)
		case <-t.C:
			h.checkMemory()
			h.checkUnhealthy(time.Now())
			h.forgetGone()
		}
	}
}

// checkMemory fires memory triggers from the latest process samples.
func (h *Healer) checkMemory() {
	now := time.Now()
	for _, a := range h.sup.apps() {
		cfg := a.Config()
		for _, in := range a.Instances() {
			private, rss, ok := in.Memory()
			if !ok {
				// No sample (a process restarted under the same id, not
				// sampled yet): nothing shows memory staying high, so the
				// proactive rule's 30s start over from the next high one.
				if c, found := h.insts.Load(in.ID()); found {
					c.(*counters).unsampled()
				}
				continue
			}
			c := h.counters(a.Name(), in.ID())
			if f := memoryFiring(c, cfg, private, rss, now); f != nil {
				f.app, f.instance = a.Name(), in.ID()
				h.submit(f, c)
			}
		}
	}
}

func memoryFiring(c *counters, cfg *config.App, private, rss uint64, now time.Time) *firing {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firing {
		return nil
	}
	var f *firing
	if ah := cfg.AutoHeal; ah != nil && ah.Triggers.Memory != nil && private > uint64(ah.Triggers.Memory.PrivateBytes) {
		f = &firing{trigger: "memory", value: fmt.Sprintf("private bytes %s > %s", mib(private), mib(uint64(ah.Triggers.Memory.PrivateBytes)))}
	} else if limit := uint64(cfg.MemoryLimit); limit > 0 && float64(rss) > proactiveMemShare*float64(limit) {
		if c.memHigh.IsZero() {
			c.memHigh = now
		}
		if now.Sub(c.memHigh) >= proactiveMemFor {
			f = &firing{trigger: "proactive_memory",
				value: fmt.Sprintf("memory %s > 90%% of memory_limit %s for %s", mib(rss), mib(limit), now.Sub(c.memHigh).Round(time.Second))}
		}
	} else {
		c.memHigh = time.Time{}
	}
	if f != nil {
		c.firing = true
	}
	return f
}

// triggerUnhealthy names the firing of health.recycle_after: an
// instance its probes kept out of rotation that long.
const triggerUnhealthy = "unhealthy"

// checkUnhealthy fires for every instance its probes have kept out of
// rotation for its app's health.recycle_after by now.
func (h *Healer) checkUnhealthy(now time.Time) {
	for _, a := range h.sup.apps() {
		cfg := a.Config()
		after := cfg.Health.RecycleAfter.D()
		if after <= 0 || cfg.External() {
			continue
		}
		for _, in := range a.Instances() {
			since, detail, ok := in.Unhealthy()
			if !ok || now.Sub(since) < after || in.Stopping() {
				continue
			}
			c := h.counters(a.Name(), in.ID())
			if c == nil || !c.arm() {
				continue
			}
			h.submit(&firing{app: a.Name(), instance: in.ID(), trigger: triggerUnhealthy,
				value: fmt.Sprintf("unhealthy for %s (health.recycle_after %s); last probe: %s",
					now.Sub(since).Round(time.Second), after, detail)}, c)
		}
	}
}

func mib(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) }

// forgetGone drops the counters of instances that no longer exist.
func (h *Healer) forgetGone() {
	live := map[string]bool{}
	for _, a := range h.sup.apps() {
		for _, in := range a.Instances() {
			live[in.ID()] = true
		}
	}
	h.insts.Range(func(k, _ any) bool {
		if !live[k.(string)] {
			h.insts.Delete(k)
		}
		return true
	})
}
