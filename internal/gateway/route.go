package gateway

import (
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/http1"
)

// admit decides whether the exchange goes to an app, and which: nil once
// the client has been answered (a request the front refused, OPTIONS *,
// no route, a body over the limit, an upgrade the app does not take).
func (g *Gateway) admit(x *front.Exchange, rw *responseWriter, st *reqState) *appProxy {
	r := x.Req
	switch {
	case x.Reject != nil:
		st.fail = x.Reject
		if !x.Answered {
			writeError(rw, r, st.requestID, x.Reject)
		}
		return nil
	case r.RequestURI == "*":
		answerOptions(rw)
		return nil
	}
	a, cleaned, fail := g.route(r.Host, r.URL.Path, r.RequestURI, st)
	if cleaned {
		r.URL.Path, r.URL.RawPath = st.cleanPath, ""
	}
	if fail == nil {
		fail = a.limitBody(r, rw, st)
	}
	if fail == nil && x.Upgrade != "" {
		fail = a.allowUpgrade(x.Upgrade)
	}
	if fail != nil {
		g.fail(rw, r, st, fail)
		return nil
	}
	return a
}

// answerOptions answers OPTIONS * (RFC 9110 §9.3.7), a question about
// the server, not any app's resource: what net/http answers.
func answerOptions(rw *responseWriter) {
	h := rw.Header()
	h["Allow"] = allowed
	h["Content-Length"] = zeroLength
	rw.WriteHeader(http.StatusOK)
}

var (
	allowed    = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
	zeroLength = []string{"0"}
)

// allowUpgrade refuses an upgrade to a protocol the app's upgrades: does
// not list; every protocol the client names must be listed.
func (a *appProxy) allowUpgrade(protos string) *cause.Error {
	cfg := a.cfg.Load()
	for p := range strings.SplitSeq(protos, ",") {
		if p = http1.TrimOWS(p); !cfg.AllowsUpgrade(p) {
			return cause.Errorf(cause.UpgradeRefused, "", nil, "the upgrade to %q is not forwarded to %s (its upgrades: %s)",
				p, a.name, strings.Join(cfg.Upgrades, ", "))
		}
	}
	return nil
}

// route finds the app for host and target (the request's origin-form
// target) and notes in st what is sent on: the target as it came, or its
// path cleaned of dot segments, which is also what the route is chosen by
// (so "/public/../admin" is routed as "/admin", the path the app will
// serve). cleaned: st.cleanPath holds the decoded clean path. A path whose
// meaning is ambiguous is refused; a path no route takes gets no_route.
func (g *Gateway) route(host, path, target string, st *reqState) (a *appProxy, cleaned bool, fail *cause.Error) {
	rawPath, query, hasQuery := strings.Cut(target, "?")
	clean, changed, err := http1.CleanPath(rawPath)
	if err != nil {
		return nil, false, cause.New(cause.BadRequest, "", err.Error(), err)
	}
	st.requestURI = target
	if changed {
		if path, err = url.PathUnescape(clean); err != nil {
			return nil, false, cause.New(cause.BadRequest, "", "malformed path escape", err)
		}
		st.cleanPath = path
		st.requestURI = clean
		if hasQuery {
			st.requestURI += "?" + query
		}
	}
	a = g.router.Load().match(host, path)
	if a == nil {
		return nil, false, cause.New(cause.NoRoute, "", "no route for "+host+path, nil)
	}
	st.app = a
	a.pool.Touch()
	return a, changed, nil
}

// limitBody applies the app's request body limits: a body declared larger
// is refused before anything is sent, one of unknown length is cut at the
// limit as it streams, and each read waits at most the app's body_timeout.
func (a *appProxy) limitBody(r *http.Request, w http.ResponseWriter, st *reqState) *cause.Error {
	l := a.cfg.Load().Limits
	if d := l.BodyTimeout.D(); d > 0 {
		st.x.SetBodyTimeout(d)
	}
	limit := int64(l.RequestBody)
	switch {
	case limit <= 0 || r.Body == nil || r.Body == http.NoBody:
	case r.ContentLength > limit:
		return cause.Errorf(cause.RequestTooLarge, "", nil, "request body of %d bytes is larger than limits.request_body (%d)", r.ContentLength, limit)
	case r.ContentLength < 0:
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return nil
}

// router maps host and path prefix to an app. Host-specific routes win over
// host-less ones; among those, the longest prefix wins.
type router struct {
	routes []route
}

type route struct {
	host   string // lower-case, no port; "" matches any host
	prefix string
	app    *appProxy
}

// parseRoute splits "api.example.com/v1/" into host and prefix; "/api/"
// has no host.
func parseRoute(s string) (host, prefix string) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return strings.ToLower(s), "/"
	}
	return strings.ToLower(s[:i]), s[i:]
}

func newRouter(routes []route) *router {
	sort.SliceStable(routes, func(i, j int) bool {
		if (routes[i].host != "") != (routes[j].host != "") {
			return routes[i].host != ""
		}
		return len(routes[i].prefix) > len(routes[j].prefix)
	})
	return &router{routes: routes}
}

func (r *router) match(host, path string) *appProxy {
	if len(r.routes) == 1 && r.routes[0].host == "" && r.routes[0].prefix == "/" {
		return r.routes[0].app
	}
	host = stripPort(host)
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.host != "" && !strings.EqualFold(rt.host, host) {
			continue
		}
		if strings.HasPrefix(path, rt.prefix) {
			return rt.app
		}
	}
	return nil
}

func stripPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
