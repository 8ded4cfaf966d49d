package edge

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/gatehouse/gatehouse/internal/access"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/compress"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/http1"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/static"
)

// Route is one route's rules, compiled. Its fields are read only once
// it is built; a reload builds new ones.
type Route struct {
	// Match is the route's match string, as configured.
	Match string

	strip string // the prefix strip_prefix takes off, without its trailing "/"
	// prefixField is X-Forwarded-Prefix's value, made once: header rules
	// replace a field's slice, never write into it.
	prefixField []string
	addPrefix   string
	rewrite     *regexp.Regexp
	rewriteTo   string
	redirect    *template
	redirStat   int

	// Static serves the route from a directory; nil: the app answers.
	Static *static.Server
	// Compress compresses answers; nil: they go as written.
	Compress *compress.Compressor

	reqHeaders, respHeaders *headerOps
	security                string

	access   *access.Rules
	limiter  *ratelimit.Limiter
	limitKey string
	// v6Bits is how much of an IPv6 client's address keys its bucket.
	v6Bits  int
	basic   *auth.Basic
	forward *auth.Forward
}

// Compile builds route r of app a: its own keys, else the app's
// (config.EdgeOf). The config has been validated. It shares nothing with
// the app's other routes; a Set does.
func Compile(a *config.App, r *config.Route) (*Route, error) {
	return new(Set).Compile(a, r)
}

// Set compiles the routes of one app, which share what they take from the
// app's own keys where it counts: the app's rate_limit is one table of
// buckets for every route without its own, as an nginx limit_req zone is
// one across its locations, so that a client cannot multiply its rate by
// spreading its requests over the routes. The zero value is ready; use
// one for one build of one app's routes.
type Set struct {
	appLimiter *ratelimit.Limiter // the app's rate_limit, once a route has taken it
}

// Compile builds route r of app a as the package's Compile does, sharing
// the app's rate limit with the routes the Set compiled before.
func (set *Set) Compile(a *config.App, r *config.Route) (*Route, error) {
	rt := &Route{Match: r.Match, addPrefix: r.AddPrefix}
	if r.StripPrefix {
		if rt.strip = strings.TrimSuffix(r.Prefix(), "/"); rt.strip != "" {
			rt.prefixField = []string{rt.strip}
			// Taken off the path as the route is matched against it
			// (stripPrefix): escapes decoded, slashes merged.
			rt.strip = http1.MergeSlashes(rt.strip)
		}
	}
	var err error
	if rw := r.Rewrite; rw != nil {
		if rt.rewrite, err = regexp.Compile(rw.From); err != nil {
			return nil, fmt.Errorf("rewrite.from: %w", err)
		}
		rt.rewriteTo = rw.To
	}
	if rd := r.Redirect; rd != nil {
		rt.redirect, rt.redirStat = parseTemplate(rd.To), rd.Status
		if rt.redirStat == 0 {
			rt.redirStat = 308
		}
	}
	if s := r.Static; s != nil {
		rt.Static, err = static.New(static.Options{Root: s.Root, Index: s.Index, TryFiles: s.TryFiles,
			CacheControl: s.CacheControl, Precompressed: s.Precompressed, AllowSymlinks: s.AllowSymlinks})
		if err != nil {
			return nil, fmt.Errorf("static: %w", err)
		}
	}
	e := config.EdgeOf(a, r)
	if err := rt.compileEdge(e, set.shared(a, e)); err != nil {
		return nil, err
	}
	return rt, nil
}

// shared is the limiter to use for e's rate_limit when it is the app's,
// made once for the Set; nil when the route has its own, or none.
func (set *Set) shared(a *config.App, e config.Edge) *ratelimit.Limiter {
	if e.RateLimit == nil || e.RateLimit != a.RateLimit {
		return nil
	}
	if set.appLimiter == nil {
		// An invalid rate is compileEdge's to report.
		rate, err := config.ParseRate(e.RateLimit.Rate)
		if err != nil || !(rate >= ratelimit.MinRate && rate <= ratelimit.MaxRate) {
			return nil
		}
		set.appLimiter = ratelimit.New(ratelimit.Options{Rate: rate, Burst: e.RateLimit.Burst, MaxKeys: e.RateLimit.MaxKeys})
	}
	return set.appLimiter
}

// compileEdge compiles e's rules; limiter, when not nil, is the one e's
// rate_limit shares with other routes.
func (rt *Route) compileEdge(e config.Edge, limiter *ratelimit.Limiter) error {
	var err error
	rt.reqHeaders = compileHeaderOps(e.RequestHeaders)
	rt.respHeaders = compileHeaderOps(e.ResponseHeaders)
	rt.security = e.SecurityHeaders
	if len(e.Allow) > 0 || len(e.Deny) > 0 {
		if rt.access, err = access.New(e.Allow, e.Deny); err != nil {
			return fmt.Errorf("allow/deny: %w", err)
		}
	}
	if rl := e.RateLimit; rl != nil {
		rate, err := config.ParseRate(rl.Rate)
		if err != nil {
			return fmt.Errorf("rate_limit.rate: %w", err)
		}
		if !(rate >= ratelimit.MinRate && rate <= ratelimit.MaxRate) {
			return fmt.Errorf("rate_limit.rate: %q is outside one a year to one a nanosecond", rl.Rate)
		}
		rt.limiter = limiter
		if rt.limiter == nil {
			rt.limiter = ratelimit.New(ratelimit.Options{Rate: rate, Burst: rl.Burst, MaxKeys: rl.MaxKeys})
		}
		rt.limitKey = rl.Key
		rt.v6Bits = rl.IPv6Prefix
		if rt.v6Bits == 0 {
			rt.v6Bits = config.DefaultIPv6Prefix
		}
	}
	if ba := e.BasicAuth; ba != nil {
		if rt.basic, err = auth.NewBasic(auth.BasicOptions{Users: ba.Users, Realm: ba.Realm}); err != nil {
			return fmt.Errorf("basic_auth: %w", err)
		}
	}
	if fa := e.ForwardAuth; fa != nil {
		if rt.forward, err = auth.NewForward(auth.ForwardOptions{URL: fa.URL, Timeout: fa.Timeout.D(), CopyHeaders: fa.CopyHeaders}); err != nil {
			return fmt.Errorf("forward_auth: %w", err)
		}
	}
	if c := e.Compress; c != nil {
		if rt.Compress, err = compress.New(compress.Options{Encodings: c.Encodings, Level: c.Level, MinSize: int64(c.MinSize), Types: c.Types}); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
	}
	return nil
}

// Close lets go of what the route holds open (the auth service's idle
// connections).
func (rt *Route) Close() {
	if rt.forward != nil {
		rt.forward.Close()
	}
}

// Plain reports whether the route does nothing but route: the gateway
// then skips the edge altogether.
func (rt *Route) Plain() bool {
	return rt.strip == "" && rt.addPrefix == "" && rt.rewrite == nil && rt.redirect == nil && rt.Static == nil &&
		rt.Compress == nil && rt.reqHeaders == nil && rt.respHeaders == nil && rt.security == "" && rt.access == nil &&
		rt.limiter == nil && rt.basic == nil && rt.forward == nil
}

// RewritesPath reports whether the app is sent another path than the
// client's.
func (rt *Route) RewritesPath() bool {
	return rt.strip != "" || rt.addPrefix != "" || rt.rewrite != nil
}
