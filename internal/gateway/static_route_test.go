package gateway_test

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A static route's directory asked for without its trailing slash is
// redirected to its slash form, the route's own prefix too: its index
// served at /assets would resolve its relative links against /, outside
// the route. Under try_files nothing is redirected: /spa is the root.
func TestStaticRouteDirectoryWithoutSlashRedirects(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<h1>home</h1>"), 0o644)
	os.WriteFile(filepath.Join(root, "sub", "index.html"), []byte("<h1>sub</h1>"), 0o644)
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.Routes = []config.Route{
				{Match: "/assets/", StripPrefix: true, Static: &config.Static{Root: root}},
				{Match: "/site/", StripPrefix: true, AddPrefix: "/sub", Static: &config.Static{Root: root}},
				{Match: "/spa/", StripPrefix: true, Static: &config.Static{Root: root, TryFiles: []string{"$path", "=404"}}},
				{Match: "/"},
			}
		})
		for _, c := range []struct {
			path     string
			status   int
			location string // resolved against path
			body     string
		}{
			{path: "/assets", status: 308, location: "/assets/"},
			{path: "/assets?v=2", status: 308, location: "/assets/?v=2"},
			{path: "/assets/", status: 200, body: "<h1>home</h1>"},
			{path: "/assets/sub", status: 308, location: "/assets/sub/"},
			{path: "/assets/sub/", status: 200, body: "<h1>sub</h1>"},
			// /site/ is root's sub directory: the redirect goes to the
			// path the client asked for, not to the one the route made.
			{path: "/site", status: 308, location: "/site/"},
			{path: "/site/", status: 200, body: "<h1>sub</h1>"},
			{path: "/spa", status: 200, body: "<h1>home</h1>"},
			{path: "/spa/", status: 200, body: "<h1>home</h1>"},
		} {
			t.Run(c.path, func(t *testing.T) {
				got := d.send(t, proto, edgeReq{path: c.path})
				if got.status != c.status {
					t.Fatalf("status %d, want %d (body %q)", got.status, c.status, got.body)
				}
				if c.location != "" {
					loc, err := url.Parse(got.header.Get("Location"))
					if err != nil {
						t.Fatal(err)
					}
					base, _ := url.Parse(c.path)
					if r := base.ResolveReference(loc).RequestURI(); r != c.location {
						t.Errorf("Location %q leads to %q, want %q", got.header.Get("Location"), r, c.location)
					}
				}
				if c.body != "" && string(got.body) != c.body {
					t.Errorf("body %q, want %q", got.body, c.body)
				}
			})
		}
	})
}
