package gateway

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Gateway is the public http.Handler.
type Gateway struct {
	router atomic.Pointer[router]
	apps   map[string]*appProxy
	access *telemetry.AccessLog
	ids    *requestIDs
	// observe, if set, sees every finished request (metrics, auto-heal).
	observe func(*telemetry.AccessEntry)
	errLog  *log.Logger
}

// Options are the gateway's collaborators.
type Options struct {
	// Access receives one entry per request; nil disables the access log.
	Access *telemetry.AccessLog
	// Observe, if set, sees every finished request.
	Observe func(*telemetry.AccessEntry)
	// ErrorLog receives ReverseProxy's own complaints; nil discards them.
	ErrorLog *log.Logger
}

// appProxy forwards to one app's pool.
type appProxy struct {
	name      string
	cfg       atomic.Pointer[config.App]
	pool      *pool.Pool
	rp        *httputil.ReverseProxy
	upstreams sync.Map // *pool.Member → *upstream
}

// New builds a gateway for cfg's apps over the supervisor's pools.
func New(cfg *config.Config, pools map[string]*pool.Pool, opts Options) *Gateway {
	g := &Gateway{apps: map[string]*appProxy{}, access: opts.Access, ids: newRequestIDs(), observe: opts.Observe}
	errLog := opts.ErrorLog
	if errLog == nil {
		errLog = log.New(discard{}, "", 0)
	}
	var routes []route
	for _, name := range cfg.Order {
		ac := cfg.Apps[name]
		a := &appProxy{name: name, pool: pools[name]}
		a.cfg.Store(ac)
		a.rp = &httputil.ReverseProxy{
			Rewrite:        rewrite,
			Transport:      a,
			FlushInterval:  0, // event streams and unknown lengths flush at once anyway
			ErrorHandler:   g.errorHandler,
			BufferPool:     copyBuffers,
			ErrorLog:       errLog,
			ModifyResponse: nil,
		}
		g.apps[name] = a
		for _, r := range ac.Routes {
			host, prefix := parseRoute(r)
			routes = append(routes, route{host: host, prefix: prefix, app: a})
		}
	}
	g.errLog = errLog
	g.router.Store(newRouter(routes))
	return g
}

// UpdateApp applies a reloaded app config that needs no restart (timeouts,
// limits, probes).
func (g *Gateway) UpdateApp(ac *config.App) {
	if a := g.apps[ac.Name]; a != nil {
		a.cfg.Store(ac)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// rewrite prepares the outgoing request: the member is chosen per attempt
// in RoundTrip, which sets the URL's host.
func rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = st.app.name
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Request-Id", st.requestID)
}

// ServeHTTP routes, forwards, and logs one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := getState()
	defer putState(st)
	g.name(st, r.Header.Get("X-Request-Id"))
	rw := &responseWriter{ResponseWriter: w}
	defer func() {
		// ReverseProxy aborts a response whose body broke after the
		// headers went out by panicking with http.ErrAbortHandler; the
		// request must still be logged (response_truncated) before
		// net/http closes the client's connection.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				g.finish(rw, r, st, start)
			}
			panic(v)
		}
	}()
	if a := g.route(rw, r, st); a != nil {
		rw.Header().Set("X-Request-Id", st.requestID)
		a.rp.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
		if st.fail != nil && st.fail.Cause == cause.ClientClosed && rw.status == 0 {
			// Nothing was written for a client that is gone or whose
			// request body broke; returning would make net/http answer
			// 200. Abort the connection instead (logged by the recover).
			panic(http.ErrAbortHandler)
		}
	}
	g.finish(rw, r, st, start)
}

// name gives the request its id: the client's X-Request-Id, else a new one.
func (g *Gateway) name(st *reqState, clientID string) {
	st.requestID = clientID
	if st.requestID == "" || len(st.requestID) > 200 {
		st.requestID = g.ids.next(st.idBuf[:0])
	}
}

// route finds the request's app and notes it in st; nil once the client
// has been answered no_route.
func (g *Gateway) route(rw *responseWriter, r *http.Request, st *reqState) *appProxy {
	a := g.router.Load().match(r.Host, r.URL.Path)
	if a == nil {
		st.fail = cause.New(cause.NoRoute, "", "no route for "+r.Host+r.URL.Path, nil)
		writeError(rw, r, st.requestID, st.fail)
		return nil
	}
	st.app = a
	if strings.HasPrefix(r.RequestURI, "/") {
		st.requestURI = r.RequestURI // sent on unchanged
	}
	a.pool.Touch()
	return a
}

// errorHandler answers for a failed forward. Every transport error is a
// *cause.Error; anything else came from ReverseProxy itself (a failed
// upgrade, a broken client) and is classified as a bad response.
func (g *Gateway) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if st.upgrade != nil {
		// ReverseProxy refused the app's 101 (a switch nobody asked for,
		// another protocol) and leaves the body, which holds the member
		// and the connection, to us.
		st.upgrade.Close()
	}
	var ce *cause.Error
	if !errors.As(err, &ce) {
		c := cause.Classify(cause.Attempt{Err: err, Progress: cause.Progress{GotConn: true, WroteRequest: true, GotFirstByte: true},
			ClientGone: r.Context().Err() != nil})
		ce = cause.New(c, st.instance, "", err)
	}
	st.fail = ce
	writeError(w, r, st.requestID, ce)
}

// finish writes the access log entry.
func (g *Gateway) finish(rw *responseWriter, r *http.Request, st *reqState, start time.Time) {
	if g.access == nil && g.observe == nil {
		return
	}
	e := accessEntries.Get().(*telemetry.AccessEntry)
	defer accessEntries.Put(e)
	*e = telemetry.AccessEntry{
		Time: start, RequestID: st.requestID, Instance: st.instance, Method: r.Method, Host: r.Host,
		Path: r.URL.Path, Status: rw.status, Bytes: rw.bytes, Duration: time.Since(start), Upstream: st.upstream,
		Held: st.held, Attempts: st.attempts, ConnReused: st.reused, Client: clientIP(r.RemoteAddr), RetriedCauses: st.retried,
	}
	if st.app != nil {
		e.App = st.app.name
	}
	if st.upgraded && e.Status == 0 {
		e.Status = http.StatusSwitchingProtocols
	}
	switch {
	case r.Context().Err() != nil && (st.fail == nil || st.fail.Cause != cause.UpstreamTimeout):
		e.Cause, e.Status = string(cause.ClientClosed), cause.StatusClientClosed
	case st.fail != nil:
		e.Cause, e.Detail = string(st.fail.Cause), st.fail.Detail
		if e.Status == 0 {
			e.Status = st.fail.Status()
		}
	case st.truncated:
		e.Cause = string(cause.ResponseTruncated)
	case rw.status >= 500:
		e.Cause = string(cause.AppError)
	}
	if g.access != nil {
		g.access.Log(e)
	}
	if g.observe != nil {
		g.observe(e)
	}
}

// copyBuffers lends ReverseProxy its response copy buffers: without a
// BufferPool every response allocates 32 KiB.
var copyBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

type copyBuffer struct{ b []byte }

func (bp *bufferPool) Get() []byte {
	if c, ok := bp.p.Get().(*copyBuffer); ok {
		b := c.b
		c.b = nil
		bufHolders.Put(c)
		return b
	}
	return make([]byte, 32<<10)
}

// Put keeps the buffer; its holder comes from a second pool so that
// putting one back does not allocate.
func (bp *bufferPool) Put(b []byte) {
	c, _ := bufHolders.Get().(*copyBuffer)
	if c == nil {
		c = new(copyBuffer)
	}
	c.b = b
	bp.p.Put(c)
}

var bufHolders sync.Pool

var accessEntries = sync.Pool{New: func() any { return new(telemetry.AccessEntry) }}

func clientIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// upstream returns the connection pool of member m.
func (a *appProxy) upstream(m *pool.Member) *upstream {
	if u, ok := a.upstreams.Load(m); ok {
		return u.(*upstream)
	}
	u, loaded := a.upstreams.LoadOrStore(m, newUpstream(m.Addr, a.cfg.Load().UpstreamIdleTimeout.D()))
	if !loaded {
		m.OnRemove(func() {
			a.upstreams.Delete(m)
			u.(*upstream).close()
		})
	}
	return u.(*upstream)
}
