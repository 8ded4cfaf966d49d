package supervisor

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/extpool"
	"github.com/gatehouse/gatehouse/internal/instance"
	"github.com/gatehouse/gatehouse/internal/pool"
)

// Instance is one supervised slot of an app (see package instance).
type Instance = instance.Instance

// App is one app's set of instances and its pool.
type App struct {
	name string
	sup  *Supervisor
	// host is what the app's instances share (see package instance).
	host *instance.Host
	cfg  atomic.Pointer[config.App]
	pool *pool.Pool

	mu        sync.Mutex
	instances []*Instance
	nextN     int
	ctx       context.Context
	cancel    context.CancelFunc
	// wg tracks the goroutines of this app's instances and its idle
	// watcher.
	wg sync.WaitGroup
	// op serialises operations that change the set of instances:
	// reload, scale, recycle, restart, idle unload and wake, a handover;
	// an operator's preempts auto-heal's recycle (see opLock).
	op opLock
	// resume is how many instances Start brings back: the count Stop
	// found; 0 when the app was not stopped.
	resume atomic.Int64
	// waking: started again by a request after an idle unload, and not
	// yet seen ready since (Readiness): like an unloaded app, it holds
	// gatehouse's readiness back meanwhile for none.
	waking atomic.Bool
	// idleWatch is set once the idle watcher (idleLoop) runs; it runs
	// from the first config, at start or reload, with an idle_timeout.
	idleWatch atomic.Bool
	// configured is the instance count of the config file as last read
	// (Config's may differ since: a scale or a stop sets it).
	configured atomic.Int64
	// left are the members of the instances Leave let go, which stay in
	// the pool until TakeBack.
	left []*pool.Member
	// dns is the lookups of an external app's DNS upstreams; nil when it
	// has none. Guarded by mu.
	dns *dnsWatch
	// leftInstances are the instances Leave let go, shown by Status until
	// this process exits or takes them back: it serves through them.
	leftInstances []*Instance
	// autoscale is what the autoscaler last published for Status; nil
	// for an app without autoscale.
	autoscale atomic.Pointer[AutoscaleStatus]
	// lastRecycle is the app's last recycle that replaced its instance,
	// for Status; nil before the first.
	lastRecycle atomic.Pointer[RecycleStatus]
}

// SetAutoscaleStatus publishes the autoscaler's state of the app, shown
// by Status; st must not be changed after.
func (a *App) SetAutoscaleStatus(st *AutoscaleStatus) { a.autoscale.Store(st) }

func newApp(s *Supervisor, cfg *config.App) *App {
	a := &App{name: cfg.Name, sup: s, pool: pool.New(cfg.Name, cfg.QueueSize)}
	a.host = &instance.Host{App: a.name, Config: a.Config, Pool: a.pool, DataDir: s.opts.DataDir, LogFiles: s.opts.LogFiles, Events: s.opts.Events,
		Ports: s.ports, Records: s.records, StatusFiles: s.statusFiles, Prober: s.prober, Reader: s.reader,
		ProbeResult: s.opts.ProbeResult, ExplainPortMismatch: s.opts.ExplainPortMismatch, Environ: s.environ,
		Kick: s.sampler.Kick, Console: s.console, Lines: s.lines}
	a.cfg.Store(cfg)
	a.configured.Store(int64(cfg.Instances))
	return a
}

// Name is the app's name.
func (a *App) Name() string { return a.name }

// Config is the app's current configuration.
func (a *App) Config() *config.App { return a.cfg.Load() }

// Pool is the app's pool, for the gateway.
func (a *App) Pool() *pool.Pool { return a.pool }

// begin adopts the processes of adopt, then starts instances up to the
// configured number, or to the number st, the state the previous
// gatehouse recorded, wants (nil: none recorded): an app it had stopped
// stays stopped, one it had idle-unloaded stays unloaded until a request.
func (a *App) begin(ctx context.Context, adopt []adoption.ProcessRecord, st *adoption.AppRecord) {
	a.mu.Lock()
	a.ctx, a.cancel = context.WithCancel(ctx)
	a.mu.Unlock()
	cfg := a.Config()
	if cfg.External() {
		a.reconcileUpstreams(extpool.Static(cfg.StaticUpstreams()), nil, false)
		a.startDNS(cfg, nil)
		return
	}
	if st != nil && st.Configured == cfg.Instances {
		// The file says what it said when the state was recorded: what
		// the previous gatehouse made of it at run time holds.
		a.setInstances(st.Instances)
		a.resume.Store(int64(st.Resume))
		if st.Unloaded && len(adopt) == 0 && cfg.IdleTimeout > 0 {
			a.pool.SetUnloaded(true) // the idle loop waits for a request
		}
	}
	if !a.pool.Unloaded() {
		a.populate(adopt)
	}
	a.watchIdle()
}

// watchIdle starts the idle watcher if the app's config has an
// idle_timeout and it does not run yet: at start, or on the reload that
// turns idle_timeout on. Once started it runs until the app stops, and
// reads idle_timeout afresh each time (0: never idle).
func (a *App) watchIdle() {
	if a.Config().IdleTimeout <= 0 || a.Config().External() {
		return
	}
	// Under mu, as addAt: stopAll either waits for this goroutine or
	// finds it never started.
	a.mu.Lock()
	if a.ctx == nil || a.ctx.Err() != nil || a.idleWatch.Load() {
		a.mu.Unlock()
		return
	}
	a.idleWatch.Store(true)
	ctx := a.ctx
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		a.idleLoop(ctx)
	}()
}

// populate adopts the processes of adopt, each as the instance it ran as,
// then starts instances up to the configured number. More adopted
// instances than configured are kept: a scale the previous gatehouse
// made holds.
func (a *App) populate(adopt []adoption.ProcessRecord) {
	slices.SortFunc(adopt, func(x, y adoption.ProcessRecord) int { return cmp.Compare(instanceN(x.ID), instanceN(y.ID)) })
	for _, rec := range adopt {
		a.sup.adopting.add()
		in := a.addAt(instanceN(rec.ID), instance.Setup{Adopt: &rec, Restarts: rec.Restarts,
			Checked: sync.OnceFunc(a.sup.adopting.done)})
		if in == nil {
			a.sup.adopting.done()
		}
	}
	if a.pool.Unloaded() {
		return // unloaded for idleness (before a Leave): a request wakes it
	}
	for n := len(adopt); n < a.Config().Instances; n++ {
		a.addInstance(instance.Setup{})
	}
}

// instanceN is the number at the end of an instance id (web-3 → 3); 0
// for an id without one.
func instanceN(id string) int {
	i := strings.LastIndexByte(id, '-')
	n, err := strconv.Atoi(id[i+1:])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// leave lets go of every instance (see Supervisor.Leave) and waits until
// each has.
func (a *App) leave() {
	if a.Config().External() {
		return // no process to hand over: this gatehouse probes on until it exits
	}
	// Not in the middle of a reload, scale or recycle: those finish
	// first (an auto-heal recycle gives way), and the ones after find no
	// instance started.
	unlock := a.op.lockOperator("an upgrade")
	defer unlock()
	for _, in := range a.Instances() {
		a.mu.Lock()
		if m := in.CurrentMember(); m != nil {
			a.left = append(a.left, m)
		}
		a.leftInstances = append(a.leftInstances, in)
		a.mu.Unlock()
		in.Stop(instance.Leave)
	}
	for _, in := range a.Instances() {
		<-in.Done()
	}
}

// takeBack adopts adopt and starts what is missing (see
// Supervisor.TakeBack); then the members leave kept go.
func (a *App) takeBack(adopt []adoption.ProcessRecord) {
	if a.Config().External() {
		return
	}
	a.populate(adopt)
	a.mu.Lock()
	left := a.left
	a.left, a.leftInstances = nil, nil
	a.mu.Unlock()
	for _, m := range left {
		a.pool.Remove(m)
	}
}

// errStopping is returned by operations that would start an instance
// after gatehouse began to stop the app (or before it started it).
var errStopping = errors.New("gatehouse is stopping; no instance is started")

// addInstance creates and starts an instance with the next id, running
// the app's current config. It returns nil once stopAll has begun: a
// process started then would outlive the supervisor.
func (a *App) addInstance(o instance.Setup) *Instance { return a.addAt(0, o) }

// addAt is addInstance with the instance's number: n, or the next one
// when n is 0.
func (a *App) addAt(n int, o instance.Setup) *Instance {
	a.mu.Lock()
	if a.ctx == nil || a.ctx.Err() != nil || a.sup.leaving.Load() {
		a.mu.Unlock()
		return nil
	}
	if n <= 0 {
		n = a.nextN + 1
	}
	a.nextN = max(a.nextN, n)
	// The instance is visible to Stop as soon as it is listed: its
	// context must be made, and its goroutine counted before stopAll's
	// Wait.
	in := instance.New(a.ctx, a.host, n, a.cfg.Load(), o)
	a.wg.Add(1)
	a.instances = append(a.instances, in)
	a.mu.Unlock()
	in.Start(a.forget, a.wg.Done)
	return in
}

// stopping reports whether gatehouse began to stop the app (stopAll), or
// has not started it.
func (a *App) stopping() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctx == nil || a.ctx.Err() != nil
}

// Instances returns the app's current instances.
func (a *App) Instances() []*Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*Instance(nil), a.instances...)
}

// leftServing returns the instances Leave let go that still serve.
func (a *App) leftServing() []*Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*Instance
	for _, in := range a.leftInstances {
		if in.State() != pool.Stopped && in.State() != pool.Crashed {
			out = append(out, in)
		}
	}
	return out
}

// forget drops a stopped instance from the app's list.
func (a *App) forget(in *Instance) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, x := range a.instances {
		if x == in {
			a.instances = append(a.instances[:i], a.instances[i+1:]...)
			return
		}
	}
}

// live returns the instances that are not being stopped.
func (a *App) live() []*Instance {
	var out []*Instance
	for _, in := range a.Instances() {
		if !in.Stopping() {
			out = append(out, in)
		}
	}
	return out
}

// stopAll stops every instance drain-first and waits for them and the
// app's other goroutines.
func (a *App) stopAll() {
	// Cancelled under mu, so that addInstance either counted its instance
	// before the Wait below or sees the app stopping.
	a.mu.Lock()
	if a.cancel != nil {
		a.cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// Environ is the environment an instance of the app starts with, without
// its instance-specific PORT and ids.
func (a *App) Environ() []string { return a.sup.environ(a.Config().Env) }

// AutoscaleStatus is what the autoscaler last published for the app; nil
// for an app without autoscale.
func (a *App) AutoscaleStatus() *AutoscaleStatus { return a.autoscale.Load() }
