package http1

import "testing"

// Routes are matched on the host and path as these give them: a host's
// port, an IPv6 address's brackets and a trailing dot gone, a path's
// runs of slashes merged and its segments' parameters left out.
func TestRouteHostAndPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{"example.com:8443", "example.com"},
		{"example.com.", "example.com"},
		{"example.com.:80", "example.com"},
		{"[::1]", "::1"},
		{"[::1]:8080", "::1"},
		{"127.0.0.1:80", "127.0.0.1"},
		{"example.com:80:1", "example.com"},
		{"example.com.::", "example.com"},
		{"[::1]:80:1", "::1"},
		{"::1", "::1"},
		{"", ""},
	} {
		if got := RouteHost(tc.in); got != tc.want {
			t.Errorf("RouteHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"/admin/", "/admin/"},
		{"//admin/", "/admin/"},
		{"///a//b///c", "/a/b/c"},
		{"/a/b/", "/a/b/"},
		{"", ""},
	} {
		if got := MergeSlashes(tc.in); got != tc.want {
			t.Errorf("MergeSlashes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"/admin/x", "/admin/x"},
		{"/admin;jsessionid=1/x", "/admin/x"},
		{"/admin;", "/admin"},
		{"/;x/admin", "/admin"},
		{"/a/;x/b", "/a/b"},
		{"//a;x//b;y", "/a/b"},
		{"/a;x;y/b", "/a/b"},
		{"/x;/", "/x/"},
		{"", ""},
	} {
		if got := RoutePath(tc.in); got != tc.want {
			t.Errorf("RoutePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
