package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/extpool"
	"github.com/gatehouse/gatehouse/internal/instance"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Progress receives one line per step of an operation, for the CLI.
type Progress func(format string, args ...any)

// ErrBusy is returned when another operation on the same app is under
// way: a reload, or a scale, recycle, restart, idle unload or wake, which
// take the app as a reload does. Not for auto-heal's recycle, which
// gives way (see HealRecycle).
var ErrBusy = errors.New("another operation on this app is in progress (a reload, scale, recycle, restart, idle unload or wake): try again once it ends")

// ErrExternal is returned for process operations on an external pool.
var ErrExternal = errors.New("app is an external pool (upstreams:); it has no processes")

// ErrStaleDecision is returned by ScaleFor when the app no longer runs the
// count an autoscale decision was taken on, is unloaded, or the decision's
// target is outside the autoscale bounds it has now.
var ErrStaleDecision = errors.New("the app changed since the autoscale decision (gatehouse scale or stop, a reload, an idle unload)")

// ErrNoInstance is returned by Recycle and RestartInstance for an
// instance the app does not run, or no longer: stopped, or replaced by a
// reload, scale or recycle while the operation waited for the app.
var ErrNoInstance = errors.New("no running instance")

// errLeaving is returned by operations while the instances are left to a
// new gatehouse process (Leave until TakeBack): they are not this one's
// to change, and the change would not reach the new process.
var errLeaving = errors.New("gatehouse is handing its instances to a new process (an upgrade); try again once it is done")

// Reload applies a new config to the app. Settings that need no new
// process (probes, timeouts, limits) apply at once, and a new instance
// count alone scales (as Scale does); a new command, dir or env (or an
// unchanged config: the program on disk may be new) replaces instances
// one at a time: the replacement is ready before
// the old instance drains. If a replacement does not become ready, the
// reload stops there and the remaining old instances keep serving.
func (a *App) Reload(ctx context.Context, next *config.App, p Progress) error {
	r, err := a.Reserve()
	if err != nil {
		return err
	}
	return r.Reload(ctx, next, p)
}

// Reservation is an app taken for a reload (Reserve) and not yet
// released: no other operation (reload, scale, recycle, restart, idle
// unload or wake) changes its instances meanwhile.
type Reservation struct {
	a        *App
	unlock   func()
	released atomic.Bool
}

// Reserve takes the app for a reload, or returns ErrBusy while another
// operation has it. A reload of several apps takes each first, so that
// one app that is busy refuses the reload before any app is changed. An
// auto-heal recycle is not one: it gives way (HealRecycle), and Reserve
// waits the moment that takes.
func (a *App) Reserve() (*Reservation, error) {
	unlock, err := a.op.tryLockOperator("an operator's reload")
	if err != nil {
		return nil, fmt.Errorf("reload %s: %w", a.name, err)
	}
	return &Reservation{a: a, unlock: unlock}, nil
}

// Release lets the app go without a reload; after Reload, or a Release
// before, it does nothing.
func (r *Reservation) Release() {
	if r.released.CompareAndSwap(false, true) {
		r.unlock()
	}
}

// Reload is App.Reload on the reserved app, which it then releases. A
// reservation serves one reload.
func (r *Reservation) Reload(ctx context.Context, next *config.App, p Progress) error {
	if r.released.Load() {
		return fmt.Errorf("reload %s: %w", r.a.name, errReleased)
	}
	defer r.Release()
	return r.a.reload(ctx, next, p)
}

// errReleased is a reload asked of a reservation already let go.
var errReleased = errors.New("the app's reservation was released")

// reload is Reload; the app is held (Reserve).
func (a *App) reload(ctx context.Context, next *config.App, p Progress) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reload %s: %w", a.name, err)
	}
	if a.sup.leaving.Load() {
		return fmt.Errorf("reload %s: %w", a.name, errLeaving)
	}
	if err := a.CheckReload(next); err != nil {
		return err
	}
	prev, prevConfigured := a.Config(), a.configured.Load()
	a.configured.Store(int64(next.Instances))
	next = keepRunCount(prev, next, prevConfigured)
	next = keepAutoscaled(prev, next)
	a.pool.SetMaxQueue(next.QueueSize)
	if next.External() {
		// The lookups restart with the new entries and dns: block; the
		// members a name still has stay, from its last answer.
		carried := extpool.LookupAdded(ctx, a.name, next, a.stopDNS(), a.sup.opts.Events)
		a.cfg.Store(next)
		a.emit(telemetry.EventReload, "upstreams: "+strings.Join(next.Upstreams, ", "))
		a.reconcileUpstreams(extpool.Wanted(next, carried), p, true)
		a.startDNS(next, carried)
		return nil
	}
	if why := whatChanged(prev, next); why == "" {
		settings, scaled := settingsChanged(prev, next), prev.Instances != next.Instances
		if settings || scaled {
			// Nothing a process was started with changed: the running
			// ones stay; the instance count is met as `gatehouse scale`
			// meets it (start the difference, or drain the surplus).
			var parts []string
			if scaled {
				parts = append(parts, fmt.Sprintf("instances %d → %d: scaled", prev.Instances, next.Instances))
			}
			if settings {
				parts = append(parts, "applied without restarting processes (only probe, timeout or limit settings changed)")
			}
			a.cfg.Store(next)
			a.watchIdle()
			msg := strings.Join(parts, "; ")
			a.emit(telemetry.EventReload, msg)
			p("%s: %s", a.name, msg)
			return a.scaleAfterReload(ctx, next.Instances, p)
		}
	}
	old := a.live()
	why := whatChanged(prev, next)
	if why == "" {
		why = "config unchanged, restarting processes"
	}
	if prev.Instances != next.Instances {
		why += fmt.Sprintf("; instances %d → %d", prev.Instances, next.Instances)
	}
	a.emit(telemetry.EventReload, fmt.Sprintf("rolling reload of %d instances: %s", len(old), why))
	a.cfg.Store(next)
	for i, in := range old {
		if _, err := a.replace(ctx, in, p); err != nil {
			// Restarts and scale-ups go on with the config that works,
			// and the settings that came with the new one are undone.
			a.cfg.Store(prev)
			a.pool.SetMaxQueue(prev.QueueSize)
			a.configured.Store(prevConfigured)
			msg := fmt.Sprintf("reload stopped: %v; %d of %d instances still run the previous config", err, len(old)-i, len(old))
			a.emit(telemetry.EventReload, msg)
			return errors.New(msg)
		}
	}
	a.emit(telemetry.EventReload, fmt.Sprintf("reload done: %d instances replaced", len(old)))
	a.watchIdle()
	return a.scaleAfterReload(ctx, next.Instances, p)
}

// ScaleError is Reload's error when the new config was applied but the
// instance count it asks for was not reached (an added instance did not
// become ready): the app runs with the new settings, and whatever else
// serves it (the gateway) should too.
type ScaleError struct{ Err error }

func (e *ScaleError) Error() string { return e.Err.Error() }
func (e *ScaleError) Unwrap() error { return e.Err }

// scaleAfterReload meets a reloaded config's instance count.
func (a *App) scaleAfterReload(ctx context.Context, n int, p Progress) error {
	if err := a.scaleLocked(ctx, n, p); err != nil {
		return &ScaleError{Err: fmt.Errorf("reload %s: applied, but %w", a.name, err)}
	}
	return nil
}

// ErrNeedsRestart is returned by CheckReload and Reload for a change a
// reload cannot make to a running app.
var ErrNeedsRestart = errors.New("needs a restart of gatehouse; restart gatehouse to apply it")

// CheckReload reports why Reload would refuse next before changing
// anything. A reload of several apps asks each first, so that one app's
// refusal leaves the others unchanged too.
func (a *App) CheckReload(next *config.App) error {
	if a.Config().External() != next.External() {
		// Instances are either processes or upstreams: replacing one kind
		// by the other would leave both in the pool.
		return fmt.Errorf("reload %s: switching between command and upstreams %w", a.name, ErrNeedsRestart)
	}
	return nil
}

// keepRunCount keeps, for an app without autoscale, the instance count
// it runs now when the file's instances (next's) is the one last read
// (fileBefore): what was done at run time holds, as it does through an
// upgrade. A reload for another setting must not undo gatehouse scale,
// nor start an app gatehouse stop stopped; a changed instances: wins.
func keepRunCount(prev, next *config.App, fileBefore int64) *config.App {
	if next.Autoscale != nil || next.External() || int64(next.Instances) != fileBefore || prev.Instances == next.Instances {
		return next
	}
	c := *next
	c.Instances = prev.Instances
	return &c
}

// keepAutoscaled keeps, for an app with autoscale, the instance count it
// runs now (clamped to the new min..max) rather than the file's
// instances, which is only the count the app starts with: a reload must
// not undo a scale-out under load. A stopped app (0, which min does not
// bound) stays stopped until gatehouse start.
func keepAutoscaled(prev, next *config.App) *config.App {
	as := next.Autoscale
	if as == nil || next.External() {
		return next
	}
	c := *next
	c.Instances = 0
	if prev.Instances > 0 {
		c.Instances = min(max(prev.Instances, as.Min), as.Max)
	}
	return &c
}

// settingsChanged reports whether next differs from prev in anything but
// the instance count. With whatChanged empty, those are settings that need
// no new process (probes, timeouts, limits). A config that changes neither
// them nor the instance count is a request to roll the processes: the
// program on disk may be new.
func settingsChanged(prev, next *config.App) bool {
	a, b := *prev, *next
	a.Instances, b.Instances = 0, 0
	return !reflect.DeepEqual(a, b)
}

func whatChanged(prev, next *config.App) string {
	var ch []string
	if !slices.Equal(prev.Command, next.Command) {
		ch = append(ch, "command")
	}
	if prev.Dir != next.Dir {
		ch = append(ch, "dir")
	}
	if !maps.Equal(prev.Env, next.Env) {
		ch = append(ch, "env")
	}
	if !slices.Equal(prev.Upstreams, next.Upstreams) {
		ch = append(ch, "upstreams")
	}
	if len(ch) == 0 {
		return ""
	}
	return strings.Join(ch, ", ") + " changed"
}

// Recycle replaces one instance, overlapped: its replacement is ready
// before it drains, so no request fails. It is an operator's: an
// auto-heal recycle under way gives way to it (see HealRecycle).
func (a *App) Recycle(ctx context.Context, id, reason string, p Progress) error {
	unlock := a.op.lockOperator("an operator's recycle of " + id)
	defer unlock()
	_, err := a.recycle(ctx, id, reason, p)
	return err
}

// HealRecycle is Recycle for auto-heal, which gives way to the operator:
// it waits for the app while an operator's operation on it (a reload,
// scale, stop, start, restart or recycle) or an upgrade's handover
// wants it or holds it, and one that comes while it waits for its
// replacement to become ready takes the app at once, as gatehouse's
// shutdown does. The replacement, if one was started, is stopped, the
// instance is left as it was, and the error is a *PreemptedError. (Once
// the replacement is ready the recycle finishes: what is left is the old
// instance's drain.) due, unless nil, is asked once the recycle has the
// app, before it starts anything: what auto-heal saw when its trigger
// fired may not hold after an operation it waited out (a restart gave
// the instance a new process, or a probe passed); an error from due
// ends the recycle, wrapped.
func (a *App) HealRecycle(ctx context.Context, id string, due func() error, reason string) error {
	hctx, unlock, err := a.op.lockHeal(ctx)
	if err != nil {
		if ctx.Err() != nil {
			err = &PreemptedError{By: byShutdown}
		}
		return fmt.Errorf("recycle %s: %w", id, err)
	}
	defer unlock()
	if due != nil && a.instance(id) != nil {
		if err := due(); err != nil {
			return fmt.Errorf("recycle %s: %w", id, err)
		}
	}
	nw, err := a.recycle(hctx, id, reason, func(string, ...any) {})
	if by := a.preemptedBy(ctx, hctx, err); by != "" {
		return fmt.Errorf("recycle %s: %w", id, &PreemptedError{By: by, Replacement: nw})
	}
	return err
}

// byShutdown names gatehouse's shutdown in a PreemptedError.
const byShutdown = "gatehouse's shutdown"

// preemptedBy is what took the app from the auto-heal recycle that ended
// with err on hctx (derived from ctx, the healer's): an operator's
// operation, an upgrade, or gatehouse's shutdown; "" when nothing did.
func (a *App) preemptedBy(ctx, hctx context.Context, err error) string {
	var pe *PreemptedError
	switch {
	case err == nil || errors.Is(err, ErrNoInstance):
		return ""
	case errors.As(context.Cause(hctx), &pe):
		return pe.By
	case errors.Is(err, errLeaving):
		return "an upgrade"
	case ctx.Err() != nil || a.stopping():
		return byShutdown
	}
	return ""
}

// recycle is Recycle with the app held; it returns the replacement's
// id, also when the replacement was started and then stopped, not ready.
func (a *App) recycle(ctx context.Context, id, reason string, p Progress) (replacement string, err error) {
	if a.sup.leaving.Load() {
		return "", fmt.Errorf("recycle %s: %w", id, errLeaving)
	}
	in := a.instance(id)
	if in == nil {
		return "", fmt.Errorf("recycle: %w %q", ErrNoInstance, id)
	}
	if err := context.Cause(ctx); err != nil {
		return "", fmt.Errorf("recycle %s: %w", id, err)
	}
	a.emitFor(in, telemetry.EventRecycle, reason)
	nw, err := a.replace(ctx, in, p)
	if err != nil {
		if nw != nil {
			return nw.ID, err
		}
		return "", err
	}
	a.lastRecycle.Store(&RecycleStatus{Instance: id, Replacement: nw.ID, Reason: reason, At: time.Now().UTC()})
	return nw.ID, nil
}

// replace starts a replacement for old, waits until it is ready, then
// drains and stops old; it returns the replacement, which on an error is
// stopped (nil when none was started).
func (a *App) replace(ctx context.Context, old *Instance, p Progress) (*Instance, error) {
	var nw *Instance
	if old.Upstream() != "" {
		addr, source := old.Upstream(), old.Source()
		nw = a.addInstance(instance.Setup{Upstream: addr, Source: source})
	} else {
		nw = a.addInstance(instance.Setup{})
	}
	if nw == nil {
		return nil, errStopping
	}
	p("%s: starting (replaces %s)", nw.ID, old.ID)
	if err := a.awaitReady(ctx, nw, 0); err != nil {
		nw.Stop(instance.Hard)
		<-nw.Done()
		return nw, err
	}
	p("%s: ready", nw.ID)
	a.stopAndWait(old, p)
	return nw, nil
}

// stopAndWait stops in drain-first and waits until it has stopped.
func (a *App) stopAndWait(in *Instance, p Progress) {
	n, what := in.Inflight(), "in-flight requests"
	if n == 1 {
		what = "in-flight request"
	}
	p("%s: draining %d %s, then stopping", in.ID, n, what)
	in.Stop(instance.Drain)
	<-in.Done()
	p("%s: stopped", in.ID)
}

// awaitReady waits until in is ready. It gives up after start_timeout, or
// sooner when the instance keeps exiting before it ever becomes ready:
// restarted failFastRestarts times since its count was base (0 for a new
// instance; a restarted one counts from its restart, not from the
// crashes of its life before it).
func (a *App) awaitReady(ctx context.Context, in *Instance, base int) error {
	timeout := a.Config().StartTimeout.D()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st := in.Status()
		switch {
		case st.State == pool.Ready.String():
			return nil
		case in.CannotStart() != "":
			// Not restarted, so not worth waiting for: see Instance.CannotStart.
			return fmt.Errorf("%s %s", in.ID, st.Health)
		case st.Restarts-base >= failFastRestarts && st.State == pool.Crashed.String():
			return fmt.Errorf("%s exited %d times before it became ready: %s%s", in.ID, st.Restarts-base, st.Health, in.LastOutput())
		case time.Now().After(deadline):
			return fmt.Errorf("%s not ready within start_timeout %s: %s%s", in.ID, timeout, st.Health, in.LastOutput())
		}
		select {
		case <-ctx.Done():
			// The cause: an auto-heal recycle's is what preempted it.
			return fmt.Errorf("%s: %w", in.ID, context.Cause(ctx))
		case <-in.Done():
			return fmt.Errorf("%s stopped before it became ready", in.ID)
		case <-tick.C:
		}
	}
}

// failFastRestarts: a replacement that exited this many times before ever
// being ready is not going to be; waiting out start_timeout would only
// delay the bad news.
const failFastRestarts = 2

// Scale sets the number of instances: new ones are started and awaited,
// surplus ones (those not ready first, then the newest) drain and stop.
// 0 takes the app down and keeps it: its requests are held, then
// answered no_ready_instance, until it is scaled up again. With an autoscale: block a count above 0 is
// clamped to its min..max (the autoscaler then leaves the new count alone
// for its cool-downs); 0 still stops the app.
func (a *App) Scale(ctx context.Context, n int, p Progress) error {
	return a.operatorScale(ctx, "an operator's scale", n, p)
}

// operatorScale is Scale, an operator's operation by.
func (a *App) operatorScale(ctx context.Context, by string, n int, p Progress) error {
	if as := a.Config().Autoscale; as != nil && n > 0 {
		if c := min(max(n, as.Min), as.Max); c != n {
			p("%s: autoscale is on: %d instances clamped to %d (min %d, max %d)", a.name, n, c, as.Min, as.Max)
			n = c
		}
	}
	return a.scale(ctx, by, -1, n, nil, p)
}

// ScaleFor is an autoscale decision taken at from instances: Scale to n
// without the clamp, its scale event why (its Trigger, Value and Detail)
// rather than the plain "N → M instances". It is checked again under the
// app's lock, behind any scale, stop or reload that came meanwhile: if
// the app no longer runs from instances, is unloaded, or n is outside
// its autoscale bounds now, nothing is done and the error is
// ErrStaleDecision (a stale decision must not undo an operator's scale
// or stop, nor exceed a max a reload lowered).
func (a *App) ScaleFor(ctx context.Context, from, n int, why *telemetry.Event, p Progress) error {
	return a.scale(ctx, "", from, n, why, p)
}

// scale is Scale and ScaleFor; from < 0: not an autoscale decision but
// an operator's operation, by.
func (a *App) scale(ctx context.Context, by string, from, n int, why *telemetry.Event, p Progress) error {
	if a.Config().External() {
		return fmt.Errorf("scale %s: %w", a.name, ErrExternal)
	}
	if n < 0 || n > config.MaxInstances {
		return fmt.Errorf("scale %s: instances must be between 0 and %d, got %d", a.name, config.MaxInstances, n)
	}
	if from >= 0 {
		a.op.lock()
		defer a.op.unlock()
	} else {
		unlock := a.op.lockOperator(by)
		defer unlock()
	}
	if a.sup.leaving.Load() {
		return fmt.Errorf("scale %s: %w", a.name, errLeaving)
	}
	if from >= 0 && !a.decisionHolds(from, n) {
		return fmt.Errorf("scale %s from %d to %d: %w", a.name, from, n, ErrStaleDecision)
	}
	return a.scaleLockedFor(ctx, n, why, p)
}

// decisionHolds reports whether an autoscale decision from from to n
// instances still fits the app; called with the app held.
func (a *App) decisionHolds(from, n int) bool {
	cfg := a.Config()
	as := cfg.Autoscale
	return as != nil && cfg.Instances == from && !a.pool.Unloaded() && n >= as.Min && n <= as.Max
}

// Stop takes the app down without removing it: Scale to 0, remembering
// the count for Start.
func (a *App) Stop(ctx context.Context, p Progress) error {
	if n := a.Config().Instances; n > 0 {
		a.resume.Store(int64(n))
	}
	return a.operatorScale(ctx, "an operator's stop", 0, p)
}

// Start brings a stopped app back to the instances it had when it was
// stopped (its configured count if it was not).
func (a *App) Start(ctx context.Context, p Progress) error {
	n := int(a.resume.Load())
	if n <= 0 {
		n = max(a.Config().Instances, 1)
	}
	return a.operatorScale(ctx, "an operator's start", n, p)
}

func (a *App) scaleLocked(ctx context.Context, n int, p Progress) error {
	return a.scaleLockedFor(ctx, n, nil, p)
}

func (a *App) scaleLockedFor(ctx context.Context, n int, why *telemetry.Event, p Progress) error {
	cur := a.live()
	if a.Config().External() || n == len(cur) || a.pool.Unloaded() {
		a.setInstances(n)
		return nil
	}
	if why != nil {
		ev := *why
		ev.App, ev.Type = a.name, telemetry.EventScale
		a.sup.opts.Events.Emit(ev)
	} else {
		a.emit(telemetry.EventScale, fmt.Sprintf("%d → %d instances", len(cur), n))
	}
	a.setInstances(n)
	if n > len(cur) {
		return a.scaleUp(ctx, n-len(cur), p)
	}
	var wg sync.WaitGroup
	for _, in := range surplus(cur, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.stopAndWait(in, p)
		}()
	}
	wg.Wait()
	return nil
}

// surplus is what a scale down to n stops of cur, listed oldest first: the
// instances that do not serve (crashed, starting, unhealthy) first, then
// the newest. Stopping a ready instance while keeping one that cannot
// serve would leave the app less than it was scaled to, with none ready
// at all in the worst case.
func surplus(cur []*Instance, n int) []*Instance {
	keep := slices.Clone(cur)
	slices.SortStableFunc(keep, func(x, y *Instance) int {
		return cmp.Compare(servingRank(x), servingRank(y))
	})
	return keep[n:]
}

// servingRank orders instances for a scale down to keep: ready ones first.
func servingRank(in *Instance) int {
	if in.State() == pool.Ready {
		return 0
	}
	return 1
}

func (a *App) scaleUp(ctx context.Context, k int, p Progress) error {
	var added []*Instance
	var errs []error
	for range k {
		in := a.addInstance(instance.Setup{})
		if in == nil {
			errs = append(errs, errStopping)
			break
		}
		added = append(added, in)
		p("%s: starting", in.ID)
	}
	for _, in := range added {
		if err := a.awaitReady(ctx, in, 0); err != nil {
			errs = append(errs, err)
			continue
		}
		p("%s: ready", in.ID)
	}
	return errors.Join(errs...)
}

// setInstances records the instance count so that a wake or reload starts
// as many.
func (a *App) setInstances(n int) {
	cur := a.Config()
	if cur.Instances != n {
		c := *cur
		c.Instances = n
		a.cfg.Store(&c)
		cur = &c
	}
	// Also when the count is the config's already (a reload stores its
	// config before it scales).
	a.noteStopped(cur)
}

// stoppedID is the pool's key (SetCannotStart) for an app that runs no
// instance by an operator's choice: no instance's id is spelt so.
const stoppedID = "(stopped)"

// noteStopped tells the pool whether the app is stopped (gatehouse stop,
// or scaled to 0): a request to it is then answered at once, naming the
// way back, rather than held for hold_timeout for an instance nobody
// starts.
func (a *App) noteStopped(c *config.App) {
	why := ""
	if c.Instances == 0 && !c.External() {
		why = fmt.Sprintf("%s is stopped (gatehouse stop, or scaled to 0): gatehouse start %s starts it", a.name, a.name)
	}
	a.pool.SetCannotStart(stoppedID, why)
}

// Restart restarts every instance of the app at once, hard: processes are
// stopped without draining and start again under the same ids.
func (a *App) Restart(ctx context.Context, p Progress) error {
	if a.Config().External() {
		return fmt.Errorf("restart %s: %w", a.name, ErrExternal)
	}
	unlock := a.op.lockOperator("an operator's restart")
	defer unlock()
	if a.sup.leaving.Load() {
		return fmt.Errorf("restart %s: %w", a.name, errLeaving)
	}
	ins := a.live()
	var errs []error
	// Each count is taken before its restart is asked for: an instance
	// may restart before the wait for the ones ahead of it ends.
	before := make([]int, len(ins))
	for i, in := range ins {
		before[i] = in.Status().Restarts
		p("%s: restarting", in.ID)
		in.Restart()
	}
	for i, in := range ins {
		if err := a.awaitRestarted(ctx, in, before[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		p("%s: ready", in.ID)
	}
	return errors.Join(errs...)
}

// RestartInstance restarts one instance hard.
func (a *App) RestartInstance(ctx context.Context, id string, p Progress) error {
	unlock := a.op.lockOperator("an operator's restart of " + id)
	defer unlock()
	if a.sup.leaving.Load() {
		return fmt.Errorf("restart %s: %w", id, errLeaving)
	}
	in := a.instance(id)
	if in == nil || in.Upstream() != "" {
		return fmt.Errorf("restart: %w %q", ErrNoInstance, id)
	}
	p("%s: restarting", in.ID)
	before := in.Status().Restarts
	in.Restart()
	if err := a.awaitRestarted(ctx, in, before); err != nil {
		return err
	}
	p("%s: ready", in.ID)
	return nil
}

// awaitRestarted waits for in to leave its current process (its restart
// count, before the restart was asked for, was before) and become ready
// again.
func (a *App) awaitRestarted(ctx context.Context, in *Instance, before int) error {
	deadline := time.Now().Add(a.Config().StopTimeout.D() + 5*time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	restarts := in.Status().Restarts
	for restarts == before {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not restart", in.ID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		restarts = in.Status().Restarts
	}
	return a.awaitReady(ctx, in, restarts)
}

func (a *App) instance(id string) *Instance {
	for _, in := range a.live() {
		if in.ID == id {
			return in
		}
	}
	return nil
}

func (a *App) emit(typ, detail string) {
	a.sup.opts.Events.Emit(telemetry.Event{App: a.name, Type: typ, Detail: detail})
}

func (a *App) emitFor(in *Instance, typ, detail string) {
	a.sup.opts.Events.Emit(telemetry.Event{App: a.name, Instance: in.ID, PID: in.Status().PID, Type: typ, Detail: detail})
}
