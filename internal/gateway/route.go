package gateway

import (
	"net"
	"sort"
	"strings"
)

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
