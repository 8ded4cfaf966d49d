package gateway

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/edge"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/routing"
	"github.com/gatehouse/gatehouse/internal/spool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/trust"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Gateway serves the front's exchanges (Serve), whatever their protocol.
type Gateway struct {
	router atomic.Pointer[router]
	apps   map[string]*appProxy
	access *telemetry.AccessLog
	ids    *requestIDs
	// observe, if set, sees every finished request (metrics, auto-heal).
	observe func(*telemetry.AccessEntry)
	// late holds the access entries waiting for their instance's exit.
	late   *lateExits
	errLog *log.Logger
	// secret is the affinity key, shared by the apps.
	secret *secret
	// trust is trusted_proxies; nil when there are none, as by default.
	trust *trust.Proxies
	// buffers bounds the memory of every body held ahead of its reader
	// (limits.buffer_memory), disk their temporary files
	// (limits.buffer_disk).
	buffers, disk *spool.Budget
	// order is the apps' names in the config's order, for the router.
	order []string
	// err is why the routes' rules could not be built at start (Err).
	err error
	// reloadMu makes reloads one at a time: each builds the router from
	// every app's config in effect, and two at once would each store a
	// router that lacks the other's app config.
	reloadMu sync.Mutex
	// streamsEnd ends when EndStreams is called.
	streamsEnd context.Context
	endStreams context.CancelFunc
	// tracer makes the requests' spans; nil when tracing is off.
	tracer Tracer
}

// Options are the gateway's collaborators.
type Options struct {
	// Access receives one entry per request; nil disables the access log.
	Access *telemetry.AccessLog
	// Observe, if set, sees every finished request.
	Observe func(*telemetry.AccessEntry)
	// ErrorLog receives warnings when Logger is nil; nil discards them.
	ErrorLog *log.Logger
	// Logger receives warnings (an affinity key that cannot be kept in
	// data_dir); nil sends them to ErrorLog.
	Logger *slog.Logger
	// Tracer, if set, makes a span of every request and of every attempt
	// on an instance (see trace.go); nil turns tracing off.
	Tracer Tracer
}

// appProxy forwards to one app's pool.
type appProxy struct {
	name      string
	cfg       atomic.Pointer[config.App]
	pool      *pool.Pool
	upstreams sync.Map // *pool.Member → *upstream.Pool
	// secret is the gateway's affinity key; pinned the members' affinity
	// cookies (see affinity.go).
	secret *secret
	pinned atomic.Pointer[pinTable]
	// buffers and disk are the gateway's.
	buffers, disk *spool.Budget
	// streamsEnd is the gateway's (see EndStreams).
	streamsEnd context.Context
	// tracer is the gateway's; nil when tracing is off.
	tracer Tracer
	// exitWait is how long a request waits to learn of an instance's
	// exit (exitWait, but for tests).
	exitWait time.Duration
	// built are the app's routes as the router has them, and the config
	// they were compiled from (buildRoutes', under reloadMu).
	built builtRoutes
}

// builtRoutes are one app's routes, their rules compiled from cfg.
type builtRoutes struct {
	cfg    *config.App
	routes []route
}

// New builds a gateway for cfg's apps over the supervisor's pools.
func New(cfg *config.Config, pools map[string]*pool.Pool, opts Options) *Gateway {
	g := &Gateway{apps: map[string]*appProxy{}, access: opts.Access, ids: newRequestIDs(), observe: opts.Observe,
		trust: trust.New(cfg.TrustedPrefixes()), buffers: spool.NewBudget(int64(cfg.Limits.BufferMemory)),
		disk: spool.NewBudget(int64(cfg.Limits.BufferDisk)), tracer: opts.Tracer}
	g.streamsEnd, g.endStreams = context.WithCancel(context.Background())
	g.late = newLateExits(g.emit)
	g.errLog = opts.ErrorLog
	if g.errLog == nil {
		g.errLog = log.New(discard{}, "", 0)
	}
	g.secret = &secret{dir: cfg.DataDir, warn: func(err error) { g.errLog.Printf("%s: %v", keyWarning, err) }}
	if opts.Logger != nil {
		g.secret.warn = func(err error) { opts.Logger.Warn(keyWarning, "err", err) }
	}
	for _, name := range cfg.Order {
		ac := cfg.Apps[name]
		a := &appProxy{name: name, pool: pools[name], secret: g.secret, streamsEnd: g.streamsEnd, buffers: g.buffers, disk: g.disk,
			tracer: g.tracer, exitWait: exitWait}
		if ac.Affinity {
			g.secret.get() // now, so that a key that cannot be kept is told at start
		}
		a.cfg.Store(ac)
		a.pool.SetMaxInflight(ac.MaxInflight)
		g.apps[name] = a
		g.order = append(g.order, name)
	}
	g.err = g.buildRoutes()
	return g
}

// buildRoutes builds the router from each app's config in effect and
// closes the rules of the previous routes it no longer has. An app whose
// config is the one its routes were built from keeps them, rules and
// all: a reload of one app leaves another's rate limits counting and its
// signed-in users' basic_auth verified. On an error the router is left
// as it was.
func (g *Gateway) buildRoutes() error {
	var routes, fresh []route
	var errs []error
	built := make(map[*appProxy]builtRoutes, len(g.order))
	for _, name := range g.order {
		a := g.apps[name]
		b := a.built
		if ac := a.cfg.Load(); b.cfg != ac {
			var err error
			b, err = compileRoutes(a, ac)
			fresh = append(fresh, b.routes...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		built[a] = b
		routes = append(routes, b.routes...)
	}
	if err := errors.Join(errs...); err != nil {
		closeRoutes(fresh, nil)
		return err
	}
	for a, b := range built {
		a.built = b
	}
	next := routing.New(routes)
	if prev := g.router.Swap(next); prev != nil {
		kept := make(map[*edge.Route]bool, len(routes))
		for _, rt := range routes {
			kept[rt.Value.edge] = true
		}
		closeRoutes(prev.Routes(), kept)
	}
	return nil
}

// compileRoutes builds app a's routes from its config ac.
func compileRoutes(a *appProxy, ac *config.App) (builtRoutes, error) {
	b := builtRoutes{cfg: ac}
	var errs []error
	var set edge.Set // the app's routes share its rate limit
	for i := range ac.Routes {
		r := &ac.Routes[i]
		rt := route{Host: r.Host(), Prefix: r.Prefix(), Value: target{app: a}}
		e, err := set.Compile(ac, r)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("apps.%s.routes[%d]: %w", a.name, i, err))
		case !e.Plain():
			rt.Value.edge = e
		}
		b.routes = append(b.routes, rt)
	}
	return b, errors.Join(errs...)
}

// Err is why a route's rules could not be built (a static root that
// cannot be opened, …); nil when every route is ready.
func (g *Gateway) Err() error { return g.err }

// BufferedBytes is the memory bodies read ahead of their reader hold now.
func (g *Gateway) BufferedBytes() int64 { return g.buffers.Used() }

// CheckApp reports whether UpdateApp could apply ac: it builds the
// app's routes and their rules (a static root opened, …) as UpdateApp
// would, then lets them go. A reload asks first, so that a config whose
// routes cannot be built is refused before its instances are replaced.
func (g *Gateway) CheckApp(ac *config.App) error {
	var set edge.Set // as buildRoutes: the app's routes share its rate limit
	var errs []error
	for i := range ac.Routes {
		e, err := set.Compile(ac, &ac.Routes[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("apps.%s.routes[%d]: %w", ac.Name, i, err))
			continue
		}
		e.Close()
	}
	return errors.Join(errs...)
}

// UpdateApp applies a reloaded app config that needs no restart (timeouts,
// limits, max_inflight, probes, upstream_tls, routes and their rules).
// Routes whose rules cannot be built leave the app's config and routes
// as they were, and the error says why. ac is a config of its own, not
// the one in effect changed in place: the routes built from a config
// are kept while it stays in effect.
func (g *Gateway) UpdateApp(ac *config.App) error {
	a := g.apps[ac.Name]
	if a == nil {
		return nil
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if ac.Affinity {
		g.secret.get()
	}
	prev := a.cfg.Swap(ac)
	if err := g.buildRoutes(); err != nil {
		a.cfg.Store(prev)
		return err
	}
	if prev.UpstreamTLS != nil || ac.UpstreamTLS != nil {
		a.dropUpstreams()
	}
	a.pool.SetMaxInflight(ac.MaxInflight)
	return nil
}

// EndStreams ends every event stream (text/event-stream) in flight, and
// every one that starts from now on at once, the way the app would end
// one: the response is complete, and the client reconnects. gatehouse
// calls it as it drains, so that a stream does not hold the drain until
// its bound and then get cut off mid-response. Other responses are left
// to finish.
func (g *Gateway) EndStreams() { g.endStreams() }

// SettleAccess waits, at most timeout, until the access entries that
// wait for their instance's exit are written (each waits a second, or
// MaxAccessWait for a process seen dying whose exit is late): whoever
// reads the access log next (diagnose) then finds every request finished
// so far, with the exits they failed with.
func (g *Gateway) SettleAccess(timeout time.Duration) { g.late.settle(timeout) }

// Close writes the access entries still waiting for their instance's
// exit as they are, and any later one at once; gatehouse calls it before
// it closes the access log.
func (g *Gateway) Close() {
	g.late.close()
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	closeRouter(g.router.Load())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// dropUpstreams closes every member's pool, so that new connections are
// made with a reloaded upstream_tls: (its files were read again).
func (a *appProxy) dropUpstreams() {
	a.upstreams.Range(func(m, u any) bool {
		if a.upstreams.CompareAndDelete(m, u) {
			u.(*upstream.Pool).Close()
		}
		return true
	})
}
