package alerts

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// AppState is what a periodic check sees of one app.
type AppState struct {
	Name string
	// External: a pool of upstreams, which no_ready_instance leaves alone
	// (it is about processes gatehouse runs).
	External bool
	// Ready and Need are supervisor.App.Readiness: Need is 0 for an app
	// stopped by the operator or unloaded for idleness.
	Ready, Need int
	// Requests and Errors (5xx) are cumulative counts since start.
	Requests, Errors uint64
	// Failing are the instances that have not come up: starting, crashed
	// (restarting with back-off) or unhealthy. A start_failure episode of
	// an instance not among them is over even if no ready or stop event
	// said so (scaled in, replaced by a reload, app stopped, or the event
	// missed by a full subscription).
	Failing map[string]bool
	// AtMax: autoscale has the app at its max while a scale-out rule
	// still holds (supervisor.AutoscaleStatus.AtMax); AtMaxWhy is its last
	// decision. Autoscale says when such an episode begins (a scale event)
	// but not when it ends, so the check, not an event, decides both.
	AtMax    bool
	AtMaxWhy string
	// PausePer is auto-heal's max_recycles.per (0 without max_recycles):
	// how long after its last max_recycles event it stays paused.
	PausePer time.Duration
}

// Evaluator turns events and checks into notifications. It is not safe
// for concurrent use: one goroutine owns it, and time comes only from the
// events and checks it is fed, so that tests can drive it exactly.
type Evaluator struct {
	cfg     *config.Alerts
	eps     map[Key]*episode
	pending map[string]time.Time // app → since when it has had no ready instance
	exits   map[Key][]time.Time  // restart_loop key → recent exits
	paused  map[string]time.Time // app → its last max_recycles event
	rates   map[string][]sample  // app → request counts over error_rate.window
}

type episode struct {
	n            Notification
	lastNotified time.Time
}

type sample struct {
	at               time.Time
	requests, errors uint64
}

// NewEvaluator returns an evaluator with cfg's thresholds.
func NewEvaluator(cfg *config.Alerts) *Evaluator {
	return &Evaluator{cfg: cfg, eps: map[Key]*episode{}, pending: map[string]time.Time{},
		exits: map[Key][]time.Time{}, paused: map[string]time.Time{}, rates: map[string][]sample{}}
}

// Firing lists the episodes firing now.
func (e *Evaluator) Firing() []Key {
	out := make([]Key, 0, len(e.eps))
	for k := range e.eps {
		out = append(out, k)
	}
	return out
}

// fire starts an episode; one already firing is not notified again here
// (de-duplication), only after repeat_interval (see repeat).
func (e *Evaluator) fire(k Key, at time.Time, summary, desc string) []Notification {
	if _, ok := e.eps[k]; ok {
		return nil
	}
	ep := &episode{n: Notification{Key: k, Status: Firing, Summary: summary, Description: desc, StartsAt: at}, lastNotified: at}
	e.eps[k] = ep
	return []Notification{ep.n}
}

// resolve ends an episode, if one is firing.
func (e *Evaluator) resolve(k Key, at time.Time) []Notification {
	ep, ok := e.eps[k]
	if !ok {
		return nil
	}
	delete(e.eps, k)
	n := ep.n
	n.Status, n.EndsAt = Resolved, at
	return []Notification{n}
}

// Event feeds one lifecycle event.
func (e *Evaluator) Event(ev telemetry.Event) []Notification {
	at := ev.Time
	switch ev.Type {
	case telemetry.EventExit:
		if startFailed(ev) {
			return e.fire(Key{StartFailure, ev.App, ev.Instance}, at,
				fmt.Sprintf("%s could not start", ev.Instance), ev.Detail)
		}
		return e.exit(ev)
	case telemetry.EventStartTimeout:
		return e.fire(Key{StartFailure, ev.App, ev.Instance}, at,
			fmt.Sprintf("%s was not ready within start_timeout", ev.Instance), ev.Detail)
	case telemetry.EventReady, telemetry.EventStop:
		return e.resolve(Key{StartFailure, ev.App, ev.Instance}, at)
	case telemetry.EventAutoHeal:
		if ev.Trigger != "max_recycles" {
			return nil
		}
		e.paused[ev.App] = at
		return e.fire(Key{AutoHealPaused, ev.App, ""}, at, "auto-heal paused at max_recycles", ev.Detail)
	case telemetry.EventCertExpiring:
		return e.fire(Key{CertExpiring, "", ev.Value}, at, fmt.Sprintf("certificate %s expires soon", ev.Value), ev.Detail)
	case telemetry.EventCertRenewed, telemetry.EventCertObtained, telemetry.EventCertReloaded:
		return e.resolve(Key{CertExpiring, "", ev.Value}, at)
	}
	return nil
}

// startFailed is diagnose's test: the process never ran, or never became
// ready in time (start_failure's, not restart_loop's).
func startFailed(ev telemetry.Event) bool {
	return strings.HasPrefix(ev.Detail, "could not start") || strings.Contains(ev.Detail, "after start_timeout")
}

// exit counts an instance's exit toward restart_loop (gatehouse emits
// exit only for exits it did not ask for).
func (e *Evaluator) exit(ev telemetry.Event) []Notification {
	k := Key{RestartLoop, ev.App, ev.Instance}
	ts := e.recentExits(k, ev.Time)
	ts = append(ts, ev.Time)
	e.exits[k] = ts
	rl := e.cfg.RestartLoop
	if len(ts) < rl.Exits {
		return nil
	}
	return e.fire(k, ev.Time, fmt.Sprintf("%s keeps dying (%d exits within %s)", ev.Instance, len(ts), rl.Window.D()),
		"last exit: "+ev.Detail+"; gatehouse restarts it with back-off up to one minute")
}

func (e *Evaluator) recentExits(k Key, now time.Time) []time.Time {
	ts := e.exits[k]
	cut := now.Add(-e.cfg.RestartLoop.Window.D())
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	return ts[i:]
}

// Check looks at every app at now: no ready instance, the error rate,
// restart loops and pauses that have run out, apps that are gone, and
// alerts due to be notified again.
func (e *Evaluator) Check(now time.Time, apps []AppState) []Notification {
	var out []Notification
	live := map[string]bool{}
	failing := map[string]map[string]bool{}
	for i := range apps {
		a := &apps[i]
		live[a.Name] = true
		failing[a.Name] = a.Failing
		out = append(out, e.noReady(now, a)...)
		out = append(out, e.errorRate(now, a)...)
		out = append(out, e.atMax(now, a)...)
		if t, ok := e.paused[a.Name]; ok && !now.Before(t.Add(a.PausePer)) {
			delete(e.paused, a.Name)
			out = append(out, e.resolve(Key{AutoHealPaused, a.Name, ""}, now)...)
		}
	}
	for k := range e.exits {
		if ts := e.recentExits(k, now); len(ts) < e.cfg.RestartLoop.Exits {
			out = append(out, e.resolve(k, now)...)
			if len(ts) == 0 {
				delete(e.exits, k)
			} else {
				e.exits[k] = ts
			}
		}
	}
	for k := range e.eps {
		if k.App != "" && !live[k.App] {
			out = append(out, e.resolve(k, now)...)
		} else if k.Alert == StartFailure && !failing[k.App][k.Instance] {
			out = append(out, e.resolve(k, now)...)
		}
	}
	for app := range e.rates {
		if !live[app] {
			delete(e.rates, app)
			delete(e.pending, app)
		}
	}
	return append(out, e.repeat(now)...)
}

// noReady: an app with a command meant to have a ready instance has had
// none for no_ready_for.
func (e *Evaluator) noReady(now time.Time, a *AppState) []Notification {
	k := Key{NoReadyInstance, a.Name, ""}
	if a.External || a.Need == 0 || a.Ready > 0 {
		delete(e.pending, a.Name)
		return e.resolve(k, now)
	}
	since, ok := e.pending[a.Name]
	if !ok {
		since = now
		e.pending[a.Name] = now
	}
	if now.Sub(since) < e.cfg.NoReadyFor.D() {
		return nil
	}
	ns := e.fire(k, since, fmt.Sprintf("%s has no ready instance", a.Name),
		fmt.Sprintf("no instance of %s has been ready since %s: requests are held, then answered 503; see gatehouse diagnose", a.Name, since.UTC().Format(time.RFC3339)))
	if len(ns) > 0 {
		// The episode began with the pending period, but it is notified
		// now: repeat_interval counts from here.
		e.eps[k].lastNotified = now
	}
	return ns
}

// errorRate: the share of 5xx over error_rate.window.
func (e *Evaluator) errorRate(now time.Time, a *AppState) []Notification {
	er := e.cfg.ErrorRate
	ss := append(e.rates[a.Name], sample{at: now, requests: a.Requests, errors: a.Errors})
	// Keep one sample at or before the window's start, as the baseline.
	cut := now.Add(-er.Window.D())
	i := 0
	for i+1 < len(ss) && !ss[i+1].at.After(cut) {
		i++
	}
	ss = ss[i:]
	e.rates[a.Name] = ss
	if er.Above <= 0 {
		return nil
	}
	base := ss[0]
	reqs, errs := a.Requests-base.requests, a.Errors-base.errors
	k := Key{ErrorRate, a.Name, ""}
	if reqs == 0 || reqs < uint64(er.MinRequests) || float64(errs)/float64(reqs) < er.Above {
		return e.resolve(k, now)
	}
	return e.fire(k, now, fmt.Sprintf("%s answers %.1f%% of requests with 5xx", a.Name, 100*float64(errs)/float64(reqs)),
		fmt.Sprintf("%d of %d requests in the last %s were answered 5xx (threshold %g%%)", errs, reqs, now.Sub(base.at).Round(time.Second), 100*er.Above))
}

// atMax: autoscale pinned at max instances.
func (e *Evaluator) atMax(now time.Time, a *AppState) []Notification {
	k := Key{AutoscaleAtMax, a.Name, ""}
	if !a.AtMax {
		return e.resolve(k, now)
	}
	return e.fire(k, now, "autoscale pinned at max instances", a.AtMaxWhy)
}

// repeat re-notifies episodes still firing after repeat_interval.
func (e *Evaluator) repeat(now time.Time) []Notification {
	var out []Notification
	for _, ep := range e.eps {
		if now.Sub(ep.lastNotified) >= e.cfg.RepeatInterval.D() {
			ep.lastNotified = now
			out = append(out, ep.n)
		}
	}
	return out
}
