package static

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTryFilesSPAFallback: with nginx's `try_files $uri $uri/
// /index.html`, a file is served, a directory answers with its index
// without a redirect, and anything else with the app's shell; a refused
// path is refused before any entry is tried.
func TestTryFilesSPAFallback(t *testing.T) {
	tr := makeTree(t)
	spa, spaResults := serveRecording(t, newServer(t, Options{Root: filepath.Join(tr.root, "spa"), TryFiles: []string{"$path", "$path/", "/index.html"}}))
	html, htmlResults := serveRecording(t, newServer(t, Options{Root: tr.root, TryFiles: []string{"$path", "$path.html", "=404"}}))
	missing, missingResults := serveRecording(t, newServer(t, Options{Root: tr.root, TryFiles: []string{"$path", "/nope.html"}}))
	teapot, teapotResults := serveRecording(t, newServer(t, Options{Root: tr.root, TryFiles: []string{"$path", "=418"}}))
	const shell = "<html>spa shell</html>\n"

	type got struct {
		Result Result
		Body   string
	}
	cases := []struct {
		name   string
		server string
		target string
		want   got
	}{
		{name: "a file", server: "spa", target: "/assets/main.js", want: got{Result{200, "assets/main.js", ""}, "main();\n"}},
		{name: "a directory without its slash: its index, no redirect", server: "spa", target: "/docs", want: got{Result{200, "docs/index.html", ""}, "<html>docs</html>\n"}},
		{name: "a directory with its slash", server: "spa", target: "/docs/", want: got{Result{200, "docs/index.html", ""}, "<html>docs</html>\n"}},
		{name: "the root", server: "spa", target: "/", want: got{Result{200, "index.html", ""}, shell}},
		{name: "a client-side route", server: "spa", target: "/users/42/settings", want: got{Result{200, "index.html", ""}, shell}},
		{name: "a directory without an index", server: "spa", target: "/emptydir", want: got{Result{200, "index.html", ""}, shell}},
		{name: "a symlink out of the root is not tried", server: "spa", target: "/secret.txt", want: got{Result{200, "index.html", ""}, shell}},
		{name: "a refused path gets no fallback", server: "spa", target: "/%2e%2e/outside/secret.txt", want: got{Result{404, "", ""}, "404 Not Found\n"}},
		{name: "$path.html", server: "html", target: "/index", want: got{Result{200, "index.html", ""}, "<html>home</html>\n"}},
		{name: "$path first", server: "html", target: "/a.txt", want: got{Result{200, "a.txt", ""}, hundred}},
		{name: "=404 at the end", server: "html", target: "/nothing", want: got{Result{404, "", ""}, "404 Not Found\n"}},
		{name: "a missing fallback is 404", server: "missing", target: "/nothing", want: got{Result{404, "", ""}, "404 Not Found\n"}},
		{name: "=CODE at the end", server: "teapot", target: "/nothing", want: got{Result{418, "", ""}, "418 I'm a teapot\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, results := spa, spaResults
			switch c.server {
			case "html":
				addr, results = html, htmlResults
			case "missing":
				addr, results = missing, missingResults
			case "teapot":
				addr, results = teapot, teapotResults
			}
			a := rawDo(t, addr, "GET", c.target)
			g := got{Result: <-results, Body: string(a.body)}
			if d := cmp.Diff(c.want, g); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if a.status != g.Result.Status {
				t.Errorf("wrote %d, reported %d", a.status, g.Result.Status)
			}
			if bytes.Contains(a.body, tr.secret) {
				t.Error("sent the secret outside the root")
			}
		})
	}
}

// TestNewRefusesBadOptions: New checks the root and every option, and its
// errors are told apart by type.
func TestNewRefusesBadOptions(t *testing.T) {
	tr := makeTree(t)
	cases := []struct {
		name string
		o    Options
		want error
	}{
		{"relative root", Options{Root: "root"}, ErrInvalidOptions},
		{"empty root", Options{}, ErrInvalidOptions},
		{"missing root", Options{Root: filepath.Join(tr.root, "nope")}, fs.ErrNotExist},
		{"root is a file", Options{Root: filepath.Join(tr.root, "a.txt")}, ErrRootNotDirectory},
		{"unknown encoding", Options{Root: tr.root, Precompressed: []string{"deflate"}}, ErrInvalidOptions},
		{"encoding twice", Options{Root: tr.root, Precompressed: []string{"gzip", "gzip"}}, ErrInvalidOptions},
		{"index climbing out", Options{Root: tr.root, Index: []string{"../index.html"}}, ErrInvalidOptions},
		{"absolute index", Options{Root: tr.root, Index: []string{"/index.html"}}, ErrInvalidOptions},
		{"=CODE not last", Options{Root: tr.root, TryFiles: []string{"=404", "$path"}}, ErrInvalidOptions},
		{"=CODE out of range", Options{Root: tr.root, TryFiles: []string{"$path", "=99"}}, ErrInvalidOptions},
		{"relative entry", Options{Root: tr.root, TryFiles: []string{"$path", "index.html"}}, ErrInvalidOptions},
		{"climbing entry", Options{Root: tr.root, TryFiles: []string{"$path", "/../index.html"}}, ErrInvalidOptions},
		{"$path twice", Options{Root: tr.root, TryFiles: []string{"$path$path"}}, ErrInvalidOptions},
		{"fine", Options{Root: tr.root, TryFiles: []string{"$path", "$path/", "/index.html"}, Precompressed: []string{"zstd", "br", "gzip"}, Index: []string{"index.htm", "index.html"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.o)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("New = %v, want %v", err, c.want)
			}
		})
	}
}
