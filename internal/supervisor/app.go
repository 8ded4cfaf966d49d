package supervisor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
)

// App is one app's set of instances and its pool.
type App struct {
	name string
	sup  *Supervisor
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
	// opMu serialises operations that change the set of instances:
	// reload, scale, recycle, restart, idle unload and wake.
	opMu sync.Mutex
	// resume is how many instances Start brings back: the count Stop
	// found; 0 when the app was not stopped.
	resume atomic.Int64
}

func newApp(s *Supervisor, cfg *config.App) *App {
	a := &App{name: cfg.Name, sup: s, pool: pool.New(cfg.Name, cfg.QueueSize)}
	a.cfg.Store(cfg)
	return a
}

// Name is the app's name.
func (a *App) Name() string { return a.name }

// Config is the app's current configuration.
func (a *App) Config() *config.App { return a.cfg.Load() }

// Pool is the app's pool, for the gateway.
func (a *App) Pool() *pool.Pool { return a.pool }

// begin starts the configured number of instances.
func (a *App) begin(ctx context.Context) {
	a.mu.Lock()
	a.ctx, a.cancel = context.WithCancel(ctx)
	ctx = a.ctx
	a.mu.Unlock()
	cfg := a.Config()
	if cfg.External() {
		for _, addr := range cfg.Upstreams {
			a.addInstance(func(in *Instance) { in.upstream = addr })
		}
		return
	}
	for i := 0; i < cfg.Instances; i++ {
		a.addInstance(nil)
	}
	if cfg.IdleTimeout > 0 {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.idleLoop(ctx)
		}()
	}
}

// errStopping is returned by operations that would start an instance
// after gatehouse began to stop the app (or before it started it).
var errStopping = errors.New("gatehouse is stopping; no instance is started")

// addInstance creates and starts an instance with the next id, running
// the app's current config. It returns nil once stopAll has begun: a
// process started then would outlive the supervisor.
func (a *App) addInstance(setup func(*Instance)) *Instance {
	a.mu.Lock()
	if a.ctx == nil || a.ctx.Err() != nil {
		a.mu.Unlock()
		return nil
	}
	a.nextN++
	in := newInstance(a, a.nextN, a.cfg.Load())
	if setup != nil {
		setup(in)
	}
	// The instance is visible to Stop as soon as it is listed: its cancel
	// must be set, and its goroutine counted before stopAll's Wait.
	var ctx context.Context
	ctx, in.cancel = context.WithCancel(a.ctx)
	a.wg.Add(1)
	a.instances = append(a.instances, in)
	a.mu.Unlock()
	in.start(ctx)
	return in
}

// Instances returns the app's current instances.
func (a *App) Instances() []*Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*Instance(nil), a.instances...)
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
		if !in.stopping.Load() {
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
