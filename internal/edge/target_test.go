package edge

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

func compile(t *testing.T, r config.Route) *Route {
	t.Helper()
	rt, err := Compile(config.NewApp("web"), &r)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// oldToNew rewrites the paths under /old/ to /new/.
var oldToNew = &config.Rewrite{From: "^/old/(.*)$", To: "/new/$1"}

// The app's path: strip_prefix (also of an escaped spelling of the
// prefix, or one with doubled slashes, which routes as the prefix, and
// of a prefix the path's first slash follows escaped, which the app is
// sent as "/", as nginx sends it), then rewrite, then add_prefix; the
// query is the caller's. A rewrite holds for every spelling of a path
// that routes as the path it matches: with parameters in its segments
// or doubled slashes, which the route was matched without.
func TestTargetIsThePathTheAppIsSent(t *testing.T) {
	for _, tt := range []struct {
		name  string
		route config.Route
		raw   string
		want  string
	}{
		{"strip", config.Route{Match: "/api/", StripPrefix: true}, "/api/items", "/items"},
		{"strip to root", config.Route{Match: "/api/", StripPrefix: true}, "/api/", "/"},
		{"strip the bare prefix", config.Route{Match: "/api/", StripPrefix: true}, "/api", "/"},
		{"strip an escaped prefix", config.Route{Match: "/api/", StripPrefix: true}, "/%61pi/items", "/items"},
		{"strip a prefix spelled with doubled slashes", config.Route{Match: "/api/", StripPrefix: true}, "//api/items", "/items"},
		{"strip a deeper prefix spelled with doubled slashes", config.Route{Match: "/a/b/", StripPrefix: true}, "/a//b/items", "/items"},
		{"strip the bare prefix spelled with doubled slashes", config.Route{Match: "/api/", StripPrefix: true}, "//api", "/"},
		{"strip keeps escapes after it", config.Route{Match: "/api/", StripPrefix: true}, "/api/a%2Fb", "/a%2Fb"},
		{"strip a prefix ended by an escaped slash", config.Route{Match: "/api/", StripPrefix: true}, "/api%2Fitems", "/items"},
		{"strip an escaped prefix ended by an escaped slash", config.Route{Match: "/api/", StripPrefix: true}, "/%61pi%2fitems/x", "/items/x"},
		{"strip a deeper prefix with an escaped slash in it", config.Route{Match: "/a/b/", StripPrefix: true}, "/a%2Fb/items", "/items"},
		{"strip and add after an escaped slash", config.Route{Match: "/api/", StripPrefix: true, AddPrefix: "/v2"}, "/api%2Fitems", "/v2/items"},
		{"strip with a host", config.Route{Match: "example.com/v1/", StripPrefix: true}, "/v1/x", "/x"},
		{"strip the prefix's parameters", config.Route{Match: "/api/", StripPrefix: true}, "/api;v=1/items", "/items"},
		{"strip the parameters of a deeper prefix's segments", config.Route{Match: "/a/b/", StripPrefix: true}, "/a;x/b;y/items", "/items"},
		{"strip the bare prefix's parameters", config.Route{Match: "/api/", StripPrefix: true}, "/api;v=1", "/"},
		{"strip the prefix's escaped parameters", config.Route{Match: "/api/", StripPrefix: true}, "/api%3Bv=1/items", "/items"},
		{"strip the bare prefix's escaped parameters", config.Route{Match: "/api/", StripPrefix: true}, "/api%3bv=1", "/"},
		{"strip escaped parameters before the prefix", config.Route{Match: "/api/", StripPrefix: true}, "/%3Bx/api/items", "/items"},
		{"strip escaped parameters ended by an escaped slash", config.Route{Match: "/api/", StripPrefix: true}, "/api%3Bv%2Fitems/x", "/items/x"},
		{"strip keeps parameters after it", config.Route{Match: "/api/", StripPrefix: true}, "/api/items;v=1", "/items;v=1"},
		{"rewrite", config.Route{Match: "/old/", Rewrite: &config.Rewrite{From: "^/old/(.*)$", To: "/new/$1"}}, "/old/a b", "/new/a%20b"},
		{"rewrite that does not match", config.Route{Match: "/", Rewrite: &config.Rewrite{From: "^/x$", To: "/y"}}, "/z", "/z"},
		{"rewrite a path with parameters in a segment it matches", config.Route{Match: "/", Rewrite: oldToNew}, "/old;x/page", "/new/page"},
		{"rewrite a path with parameters before the part it matches", config.Route{Match: "/", Rewrite: oldToNew}, "/;x/old/page", "/new/page"},
		{"rewrite a path with escaped parameters", config.Route{Match: "/", Rewrite: oldToNew}, "/old%3Bx/page", "/new/page"},
		{"rewrite a path spelled with doubled slashes", config.Route{Match: "/", Rewrite: oldToNew}, "//old//page", "/new/page"},
		{"rewrite keeps parameters inside what it matches", config.Route{Match: "/", Rewrite: oldToNew}, "/old/page;jsessionid=1", "/new/page;jsessionid=1"},
		{"rewrite keeps parameters inside what it matches of a path with doubled slashes", config.Route{Match: "/", Rewrite: oldToNew}, "//old/page;jsessionid=1", "/new/page;jsessionid=1"},
		{"rewrite keeps parameters inside what it matches of a path with parameters before them", config.Route{Match: "/", Rewrite: oldToNew}, "/old;x/page;jsessionid=1", "/new/page;jsessionid=1"},
		{"rewrite keeps parameters of the last segment after a segment of parameters", config.Route{Match: "/", Rewrite: oldToNew}, "/;x/old/page;jsessionid=1", "/new/page;jsessionid=1"},
		{"rewrite keeps what it matches of a path with doubled slashes and parameters", config.Route{Match: "/", Rewrite: oldToNew}, "//old/a;x/b;y", "/new/a;x/b;y"},
		{"rewrite keeps the slashes of what it matches", config.Route{Match: "/", Rewrite: oldToNew}, "/old/a//b", "/new/a//b"},
		{"rewrite every match of the path the route read", config.Route{Match: "/", Rewrite: &config.Rewrite{From: "/old/", To: "/new/"}}, "/old/a/old;x/b", "/new/a/new/b"},
		{"rewrite after strip_prefix of a path with parameters", config.Route{Match: "/api/", StripPrefix: true, Rewrite: oldToNew}, "/api;v=1/old;x/page", "/new/page"},
		{"rewrite written for a path with parameters", config.Route{Match: "/", Rewrite: &config.Rewrite{From: "^/a;x/b$", To: "/c"}}, "/a;x/b", "/c"},
		{"rewrite that matches no spelling keeps the parameters", config.Route{Match: "/", Rewrite: oldToNew}, "/other;x/page", "/other;x/page"},
		{"add", config.Route{Match: "/", AddPrefix: "/v2"}, "/items", "/v2/items"},
		{"strip and add", config.Route{Match: "/api/", StripPrefix: true, AddPrefix: "/v2"}, "/api/items", "/v2/items"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := compile(t, tt.route).Target(&Ask{RawPath: tt.raw})
			if got != tt.want || changed != (tt.want != tt.raw) {
				t.Errorf("Target(%q) = %q, %v; want %q", tt.raw, got, changed, tt.want)
			}
		})
	}
}

// Placeholders are the request's; an unknown one is kept as text.
func TestTemplatesExpandPlaceholders(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://example.com/a/b?x=1", nil)
	r.RequestURI = "/a/b?x=1"
	q := &Ask{Req: r, ClientIP: "192.0.2.7", Scheme: "https", RequestID: "id-1", RawPath: "/a/b", Query: "x=1", User: "alice"}
	for in, want := range map[string]string{
		"plain":                          "plain",
		"{client_ip} {scheme} {user}":    "192.0.2.7 https alice",
		"https://www.example.com{uri}":   "https://www.example.com/a/b?x=1",
		"{scheme}://{host}{path}{query}": "https://example.com/a/b?x=1",
		"{request_id}-{method}":          "id-1-GET",
		"{nope} and {":                   "{nope} and {",
	} {
		if got := parseTemplate(in).expand(q); got != want {
			t.Errorf("%q expanded to %q, want %q", in, got, want)
		}
	}
}

// response_headers: removal (a name, a prefix), then set, then add.
func TestHeaderOpsRemoveSetAdd(t *testing.T) {
	ops := compileHeaderOps(&config.HeaderOps{
		Remove: []string{"server", "X-Debug-*"},
		Set:    map[string]string{"x-served-by": "gatehouse", "Cache-Control": "no-store"},
		Add:    map[string]string{"Vary": "Origin"},
	})
	h := http.Header{"Server": {"app"}, "X-Debug-A": {"1"}, "X-Debug-B": {"2"}, "Cache-Control": {"public"}, "Vary": {"Accept"}, "Kept": {"k"}}
	ops.apply(h, &Ask{})
	want := http.Header{"X-Served-By": {"gatehouse"}, "Cache-Control": {"no-store"}, "Vary": {"Accept", "Origin"}, "Kept": {"k"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}
