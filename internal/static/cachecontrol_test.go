package static

import "testing"

// TestCacheControlOnSuccessOnly: the configured Cache-Control is on 200,
// 206 and 304 answers, and on no refusal or redirect, whose caching is
// not the route's to decide.
func TestCacheControlOnSuccessOnly(t *testing.T) {
	tr := makeTree(t)
	const cc = "public, max-age=3600"
	addr := serveOver(t, newServer(t, Options{Root: tr.root, CacheControl: cc, Precompressed: []string{"gzip"}}))
	etag := rawDo(t, addr, "GET", "/a.txt").header.Get("Etag")
	cases := []struct {
		name, method, target string
		header               []string
		status               int
		want                 string
	}{
		{"200", "GET", "/a.txt", nil, 200, cc},
		{"HEAD 200", "HEAD", "/a.txt", nil, 200, cc},
		{"200 precompressed", "GET", "/comp.txt", []string{"Accept-Encoding: gzip"}, 200, cc},
		{"206", "GET", "/a.txt", []string{"Range: bytes=0-1"}, 206, cc},
		{"206 multipart", "GET", "/a.txt", []string{"Range: bytes=0-1,4-5"}, 206, cc},
		{"304", "GET", "/a.txt", []string{"If-None-Match: " + etag}, 304, cc},
		{"412", "GET", "/a.txt", []string{`If-Match: "other"`}, 412, ""},
		{"416", "GET", "/a.txt", []string{"Range: bytes=500-"}, 416, ""},
		{"404", "GET", "/missing", nil, 404, ""},
		{"308", "GET", "/dir", nil, 308, ""},
		{"405", "DELETE", "/a.txt", nil, 405, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := rawDo(t, addr, c.method, c.target, c.header...)
			if a.status != c.status || a.header.Get("Cache-Control") != c.want {
				t.Errorf("%d with Cache-Control %q; want %d with %q", a.status, a.header.Get("Cache-Control"), c.status, c.want)
			}
		})
	}
}
