package static

import (
	"bytes"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzServePath: whatever the decoded path, Accept-Encoding and Range, a
// 200 sends exactly the bytes of a regular file under the root (the one
// Result names), a 206 a piece of one, and the secret beside the root
// never appears.
func FuzzServePath(f *testing.F) {
	tr := makeTree(f)
	contents := map[string][]byte{} // regular files under the root, by relative path
	filepath.WalkDir(tr.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		rel, _ := filepath.Rel(tr.root, p)
		contents[filepath.ToSlash(rel)] = b
		return nil
	})
	servers := []*Server{
		newServer(f, Options{Root: tr.root, Precompressed: []string{"br", "zstd", "gzip"}}),
		newServer(f, Options{Root: tr.root, TryFiles: []string{"$path", "$path/", "$path.txt", "/index.html"}, Precompressed: []string{"gzip"}}),
	}
	for _, seed := range []string{
		"/", "/a.txt", "/../outside/secret.txt", "/dir/../../outside/secret.txt", "/link-out.txt",
		"/link-outdir/secret.txt", "/link-abs-out", "/dir/deep-out", "/spa/secret.txt", "/app2.js",
		"\\..\\outside\\secret.txt", "/\xc0\xae\xc0\xae/outside/secret.txt", "/a.txt\x00", "//outside/secret.txt",
		"..", "/dir", "/link-in.txt", "/dir-link/index.html", "/.hidden.txt", "/app.js",
	} {
		f.Add(seed, "gzip, br", "", uint8(0))
		f.Add(seed, "", "bytes=0-3,5-9", uint8(1))
	}
	f.Fuzz(func(t *testing.T, path, ae, rng string, which uint8) {
		s := servers[int(which)%len(servers)]
		req := httptest.NewRequest("GET", "/", nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		rec := httptest.NewRecorder()
		res := s.Serve(rec, req, path)
		body := rec.Body.Bytes()
		if len(tr.secret) > 0 && bytes.Contains(body, tr.secret) {
			t.Fatalf("Serve(%q) sent the secret outside the root", path)
		}
		if res.Status != rec.Code {
			t.Fatalf("Serve(%q) reported %d, wrote %d", path, res.Status, rec.Code)
		}
		if res.File != "" && (strings.HasPrefix(res.File, "/") || res.File == ".." || strings.HasPrefix(res.File, "../") || strings.Contains(res.File, "/../")) {
			t.Fatalf("Serve(%q) reports file %q outside the root", path, res.File)
		}
		switch res.Status {
		case 200:
			want, ok := contents[res.File]
			if !ok {
				want, ok = symlinkInside(tr.root, res.File, contents)
			}
			if !ok {
				t.Fatalf("Serve(%q) sent %q, not a regular file under the root", path, res.File)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("Serve(%q) sent %q, which is not the content of %s", path, body, res.File)
			}
		case 206:
			if rec.Header().Get("Content-Range") == "" {
				return // multipart: each part is checked as part of the whole below
			}
			whole, ok := contents[res.File]
			if !ok {
				whole, ok = symlinkInside(tr.root, res.File, contents)
			}
			if !ok || !bytes.Contains(whole, body) {
				t.Fatalf("Serve(%q) sent a range %q that is not part of %s", path, body, res.File)
			}
		}
	})
}

// symlinkInside resolves rel, a name under root that may pass through
// symlinks, and returns the content of the regular file it reaches if
// that is under root.
func symlinkInside(root, rel string, contents map[string][]byte) ([]byte, bool) {
	real, err := filepath.EvalSymlinks(filepath.Join(root, rel))
	if err != nil {
		return nil, false
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, false
	}
	r, err := filepath.Rel(realRoot, real)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return nil, false
	}
	b, ok := contents[filepath.ToSlash(r)]
	return b, ok
}
