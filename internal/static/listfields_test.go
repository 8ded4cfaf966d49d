package static

import (
	"testing"
)

// TestListFieldsReadOverEveryLine: Accept-Encoding, If-None-Match and
// If-Match are lists, which a client or a proxy may split over several
// field lines (RFC 9110 5.3); each line counts, not the first alone.
func TestListFieldsReadOverEveryLine(t *testing.T) {
	tr := makeTree(t)
	addr := serveOver(t, newServer(t, Options{Root: tr.root, Precompressed: []string{"br", "zstd", "gzip"}}))
	etag := rawDo(t, addr, "GET", "/a.txt").header.Get("Etag")
	cases := []struct {
		name         string
		path         string
		header       []string
		wantStatus   int
		wantEncoding string
	}{
		{name: "a coding refused on a later line", path: "/app.js", header: []string{"Accept-Encoding: *", "Accept-Encoding: br;q=0"}, wantStatus: 200, wantEncoding: "zstd"},
		{name: "a coding accepted on a later line", path: "/app.js", header: []string{"Accept-Encoding: gzip;q=0", "Accept-Encoding: br"}, wantStatus: 200, wantEncoding: "br"},
		{name: "If-None-Match matched on a later line", path: "/a.txt", header: []string{`If-None-Match: "nope"`, "If-None-Match: " + etag}, wantStatus: 304},
		{name: "If-Match matched on a later line", path: "/a.txt", header: []string{`If-Match: "nope"`, "If-Match: " + etag}, wantStatus: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := rawDo(t, addr, "GET", c.path, c.header...)
			if a.status != c.wantStatus || a.header.Get("Content-Encoding") != c.wantEncoding {
				t.Errorf("%d with Content-Encoding %q, want %d with %q", a.status, a.header.Get("Content-Encoding"), c.wantStatus, c.wantEncoding)
			}
		})
	}
}
