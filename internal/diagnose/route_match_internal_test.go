package diagnose

import "testing"

// The edge findings count a refused request against the route the
// gateway gave it: its host without port, brackets or trailing dot, its
// path with merged slashes, and "/admin" taken by the route "/admin/".
// Counted against another route, a rate_limited finding names the wrong
// route's rate_limit and fix.
func TestRouteTableAsTheGatewayRoutes(t *testing.T) {
	rs := []RouteSnap{
		{Match: "/"},
		{Match: "/admin/"},
		{Match: "Example.com./"},
		{Match: "[::1]/"},
	}
	tests := []struct {
		name, host, path, want string
	}{
		{"longest prefix", "other.test", "/admin/users", "/admin/"},
		{"no prefix but root", "other.test", "/x", "/"},
		{"path and a slash takes the slashed route", "other.test", "/admin", "/admin/"},
		{"merged slashes", "other.test", "//admin/users", "/admin/"},
		{"host route first", "example.com", "/admin/users", "Example.com./"},
		{"host with port", "example.com:8443", "/", "Example.com./"},
		{"host with a trailing dot", "example.com.", "/", "Example.com./"},
		{"IPv6 host with port", "[::1]:8080", "/", "[::1]/"},
		{"IPv6 host without port", "[::1]", "/", "[::1]/"},
	}
	routes := routeTable(rs)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if r := routes.Match(tt.host, tt.path); r != nil {
				got = r.Value.Match
			}
			if got != tt.want {
				t.Errorf("Match(%q, %q) = %q; want %q", tt.host, tt.path, got, tt.want)
			}
		})
	}
}
