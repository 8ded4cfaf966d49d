package static

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestPathsCannotLeaveRoot sends paths that try to climb out of the root,
// in every encoding a client can put on the wire, and symlinks in and out
// of it, through a real server; each gets its documented status and the
// secret beside the root is never sent unless AllowSymlinks says to
// follow a symlink to it.
func TestPathsCannotLeaveRoot(t *testing.T) {
	tr := makeTree(t)
	confined := serveOver(t, newServer(t, Options{Root: tr.root, Precompressed: []string{"gzip"}}))
	following := serveOver(t, newServer(t, Options{Root: tr.root, Precompressed: []string{"gzip"}, AllowSymlinks: true}))

	cases := []struct {
		name   string
		target string // as written on the request line
		header []string
		// want and wantFollow are the statuses without and with
		// AllowSymlinks; secretFollow says the secret is what AllowSymlinks
		// rightly serves.
		want, wantFollow int
		secretFollow     bool
		body             string // when set, the body of a 200
	}{
		{name: "dot-dot", target: "/../outside/secret.txt", want: 404, wantFollow: 404},
		{name: "dot-dot deeper", target: "/dir/../../outside/secret.txt", want: 404, wantFollow: 404},
		{name: "encoded dot-dot", target: "/%2e%2e/outside/secret.txt", want: 404, wantFollow: 404},
		{name: "upper-case encoded dot-dot", target: "/%2E%2E/outside/secret.txt", want: 404, wantFollow: 404},
		{name: "half-encoded dot-dot", target: "/%2E./outside/secret.txt", want: 404, wantFollow: 404},
		{name: "other half-encoded dot-dot", target: "/.%2e/outside/secret.txt", want: 404, wantFollow: 404},
		{name: "overlong UTF-8 dots", target: "/%c0%ae%c0%ae/outside/secret.txt", want: 404, wantFollow: 404},
		{name: "overlong UTF-8 dots with encoded slash", target: "/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt", want: 404, wantFollow: 404},
		{name: "dot-dot and encoded slashes", target: "/..%2foutside%2fsecret.txt", want: 404, wantFollow: 404},
		{name: "encoded slashes all the way", target: "/dir%2f..%2f..%2foutside%2fsecret.txt", want: 404, wantFollow: 404},
		{name: "double-encoded dot-dot is a name", target: "/%252e%252e/outside/secret.txt", want: 404, wantFollow: 404},
		{name: "backslashes", target: "/..%5coutside%5csecret.txt", want: 404, wantFollow: 404},
		{name: "backslash in a name", target: "/dir%5cindex.html", want: 404, wantFollow: 404},
		{name: "NUL", target: "/a.txt%00.html", want: 400, wantFollow: 400},
		{name: "dot segment", target: "/./a.txt", want: 404, wantFollow: 404},
		{name: "encoded dot segment", target: "/%2e/a.txt", want: 404, wantFollow: 404},
		{name: "encoded slash inside the root", target: "/dir%2findex.html", want: 200, wantFollow: 200, body: "<html>dir</html>\n"},
		{name: "doubled slashes", target: "/dir//index.html", want: 200, wantFollow: 200, body: "<html>dir</html>\n"},
		{name: "symlink out of the root", target: "/link-out.txt", want: 404, wantFollow: 200, secretFollow: true},
		{name: "symlinked directory out of the root", target: "/link-outdir/secret.txt", want: 404, wantFollow: 200, secretFollow: true},
		{name: "absolute symlink out of the root", target: "/link-abs-out", want: 404, wantFollow: 200, secretFollow: true},
		{name: "symlink out of the root from below", target: "/dir/deep-out", want: 404, wantFollow: 200, secretFollow: true},
		{name: "symlink out of the root under an SPA", target: "/spa/secret.txt", want: 404, wantFollow: 200, secretFollow: true},
		{name: "symlink inside the root", target: "/link-in.txt", want: 200, wantFollow: 200, body: hundred},
		{name: "symlink up but inside the root", target: "/dir/up-in.txt", want: 200, wantFollow: 200, body: hundred},
		{name: "symlinked directory inside the root", target: "/dir-link/", want: 200, wantFollow: 200, body: "<html>dir</html>\n"},
		// os.Root refuses absolute symlinks wherever they point.
		{name: "absolute symlink inside the root", target: "/link-abs-in", want: 404, wantFollow: 200, body: hundred},
		{name: "symlink loop", target: "/link-loop", want: 404, wantFollow: 404},
		{name: "dangling symlink", target: "/link-dangling", want: 404, wantFollow: 404},
		{name: "precompressed sibling that is a symlink out", target: "/app2.js", header: []string{"Accept-Encoding: gzip"}, want: 200, wantFollow: 200, secretFollow: true},
		{name: "name too long", target: "/" + strings.Repeat("a", 5000), want: 404, wantFollow: 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, mode := range []struct {
				name   string
				addr   string
				want   int
				secret bool
			}{{"confined", confined, c.want, false}, {"AllowSymlinks", following, c.wantFollow, c.secretFollow}} {
				a := rawDo(t, mode.addr, "GET", c.target, c.header...)
				if a.status != mode.want {
					t.Errorf("%s: status %d, want %d; body %q", mode.name, a.status, mode.want, a.body)
				}
				leaked := bytes.Contains(a.body, tr.secret)
				switch {
				case mode.secret && !leaked:
					t.Errorf("%s: the symlink's target was not served: %q", mode.name, a.body)
				case !mode.secret && leaked:
					t.Errorf("%s: the secret outside the root was sent", mode.name)
				}
				if c.body != "" && a.status == 200 && string(a.body) != c.body {
					t.Errorf("%s: body %q, want %q", mode.name, a.body, c.body)
				}
			}
		})
	}
}

// TestServeRefusesDecodedPaths calls Serve with decoded paths no HTTP
// parser would produce but a caller might pass: without a leading slash,
// with dot segments, NUL and backslashes.
func TestServeRefusesDecodedPaths(t *testing.T) {
	tr := makeTree(t)
	s := newServer(t, Options{Root: tr.root})
	cases := []struct {
		path string
		want int
	}{
		{"../outside/secret.txt", 404},
		{"..", 404},
		{"/..", 404},
		{"/../", 404},
		{"/a/../../outside/secret.txt", 404},
		{"/dir/..", 404},
		{"/dir/./index.html", 404},
		{`\..\outside\secret.txt`, 404},
		{"/..\\outside/secret.txt", 404},
		{"/a.txt\x00", 400},
		{"/\x00../outside/secret.txt", 400},
		{"/outside/secret.txt", 404},
		{"a.txt", 200},
		{"", 200},
		{"/", 200},
	}
	for _, c := range cases {
		t.Run(url.PathEscape(c.path), func(t *testing.T) {
			rec := httptest.NewRecorder()
			res := s.Serve(rec, httptest.NewRequest("GET", "/", nil), c.path)
			if res.Status != c.want || rec.Code != c.want {
				t.Errorf("Serve(%q) = %+v, wrote %d; want %d", c.path, res, rec.Code, c.want)
			}
			if bytes.Contains(rec.Body.Bytes(), tr.secret) {
				t.Errorf("Serve(%q) sent the secret outside the root", c.path)
			}
		})
	}
}

// TestDirectoryAnswers: a directory with an index is redirected to its
// slash form with a Location that resolves to it from the path the client
// asked for (with a prefix the caller stripped, too); one without an
// index is not found, with or without the slash; a file asked for as a
// directory is not found.
func TestDirectoryAnswers(t *testing.T) {
	tr := makeTree(t)
	s := newServer(t, Options{Root: tr.root})
	cases := []struct {
		url, path    string // what the client asked for, what the caller passes
		want         int
		wantLocation string // resolved against url
	}{
		{url: "/dir", path: "/dir", want: 308, wantLocation: "/dir/"},
		{url: "/dir?x=1&y", path: "/dir", want: 308, wantLocation: "/dir/?x=1&y"},
		{url: "/site/dir", path: "/dir", want: 308, wantLocation: "/site/dir/"},
		{url: "/site", path: "", want: 308, wantLocation: "/site/"},
		{url: "/site/", path: "/", want: 200},
		{url: "/site/", path: "", want: 200},
		// A prefix the caller added (/site to /dir) names nothing the
		// client asked for; an escaped slash stays as the client wrote it.
		{url: "/site", path: "/dir", want: 308, wantLocation: "/site/"},
		{url: "/site/spa%2Fdocs", path: "/spa/docs", want: 308, wantLocation: "/site/spa%2Fdocs/"},
		{url: "/spa/docs", path: "/spa/docs", want: 308, wantLocation: "/spa/docs/"},
		{url: "/dir/", path: "/dir/", want: 200},
		{url: "/empty", path: "/empty", want: 404},
		{url: "/empty/", path: "/empty/", want: 404},
		{url: "/a.txt/", path: "/a.txt/", want: 404},
		{url: "/sib.txt.gz", path: "/sib.txt.gz", want: 404},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", c.url, nil)
			res := s.Serve(rec, req, c.path)
			if res.Status != c.want || rec.Code != c.want {
				t.Fatalf("got %+v, wrote %d; want %d", res, rec.Code, c.want)
			}
			if c.wantLocation == "" {
				return
			}
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if got := req.URL.ResolveReference(loc).RequestURI(); got != c.wantLocation {
				t.Errorf("Location %q resolves to %q, want %q", loc, got, c.wantLocation)
			}
		})
	}

	t.Run("directory named with characters a Location must escape", func(t *testing.T) {
		if got := escapeSegment("a b:c?#%"); got != "a%20b:c%3F%23%25" {
			t.Errorf("escapeSegment = %q", got)
		}
	})

	t.Run("only GET and HEAD", func(t *testing.T) {
		for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
			rec := httptest.NewRecorder()
			res := s.Serve(rec, httptest.NewRequest(m, "/a.txt", nil), "/a.txt")
			if res.Status != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s: %+v, Allow %q", m, res, rec.Header().Get("Allow"))
			}
		}
	})
}
