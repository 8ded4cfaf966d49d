// Package routing chooses the route a request takes among an app's or a
// gatehouse's routes, by host and path prefix. The gateway routes with
// it, and diagnose replays the gateway's choice with it from the access
// log, so that the two cannot disagree.
package routing

import (
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/http1"
)

// Route is one route and what it leads to.
type Route[T any] struct {
	// Host is lower-case, without port or trailing dot (as
	// config.Route.Host gives it); "" matches any host.
	Host string
	// Prefix is the path prefix; New merges its repeated slashes, as
	// the paths matched against it are.
	Prefix string
	Value  T
}

// Table is a set of routes ordered for matching: those with a host
// before those without, longer prefixes before shorter.
type Table[T any] struct {
	routes []Route[T]
}

// New orders routes for matching (routes is reordered, and kept).
func New[T any](routes []Route[T]) *Table[T] {
	for i := range routes {
		// A route spelling "//" is the route of its slashes merged.
		routes[i].Prefix = http1.MergeSlashes(routes[i].Prefix)
	}
	slices.SortStableFunc(routes, func(a, b Route[T]) int {
		if (a.Host != "") != (b.Host != "") {
			if a.Host != "" {
				return -1
			}
			return 1
		}
		return len(b.Prefix) - len(a.Prefix)
	})
	return &Table[T]{routes: routes}
}

// Routes are the table's routes, in matching order.
func (t *Table[T]) Routes() []Route[T] { return t.routes }

// Match is the route that takes a request for host and path: the first,
// in the table's order, whose host is the request's (or none) and whose
// prefix starts the path; nil when none does.
//
// The host is matched without its port, brackets or trailing dot:
// "example.com." is the absolute spelling of "example.com", which apps
// take for the same host, and a host route's rules must hold for it too.
// The path is matched with its slashes merged: "//admin/" is "/admin/"
// to apps that merge slashes (Rails, Spring), so it takes "/admin/"'s
// route, as nginx's merge_slashes has it; else a shorter route's rules
// would apply to the page.
//
// Path parameters (";jsessionid=…") are matched without: servlet
// containers and Spring serve "/admin;x/secret" as "/admin/secret", so it
// takes "/admin/"'s route and its rules, not "/"'s.
//
// A path that is a route's prefix but its last slash ("/admin" for
// "/admin/") takes that route (bare), unless a route of its host, or of
// none if it has none, whose prefix is the path itself does: apps serve
// the two as one page, and a shorter route's rules must not apply to it.
func (t *Table[T]) Match(host, path string) *Route[T] {
	rs := t.routes
	if len(rs) == 1 && rs[0].Host == "" && rs[0].Prefix == "/" {
		return &rs[0]
	}
	host = http1.RouteHost(host)
	path = http1.RoutePath(path)
	var bare *Route[T]
	for i := range rs {
		rt := &rs[i]
		if rt.Host != "" && !strings.EqualFold(rt.Host, host) {
			continue
		}
		if strings.HasPrefix(path, rt.Prefix) {
			if bare != nil && (len(rt.Prefix) < len(path) || bare.Host != "" && rt.Host == "") {
				return bare
			}
			return rt
		}
		if bare == nil && len(rt.Prefix) == len(path)+1 && rt.Prefix[len(path)] == '/' && strings.HasPrefix(rt.Prefix, path) {
			bare = rt
		}
	}
	return bare
}
