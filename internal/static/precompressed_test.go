package static

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPrecompressedSelection: the client's Accept-Encoding q-values pick
// the sibling, Options.Precompressed breaks ties, a refused or missing
// sibling falls back to the file itself, and whichever is sent carries
// the original's Content-Type, its own ETag and Vary: Accept-Encoding.
func TestPrecompressedSelection(t *testing.T) {
	tr := makeTree(t)
	all, allResults := serveRecording(t, newServer(t, Options{Root: tr.root, Precompressed: []string{"br", "zstd", "gzip"}}))
	gzipFirst, gzipFirstResults := serveRecording(t, newServer(t, Options{Root: tr.root, Precompressed: []string{"gzip", "br"}}))
	none, noneResults := serveRecording(t, newServer(t, Options{Root: tr.root}))

	const js = "text/javascript; charset=utf-8"
	gz := string(gzipped(t, plainJS))
	type got struct {
		Status   int
		Result   Result
		Encoding string // Content-Encoding
		Type     string
		Vary     string
		Body     string
	}
	cases := []struct {
		name   string
		server string // "all" (br, zstd, gzip), "gzipFirst" (gzip, br), "none"
		path   string
		ae     string // Accept-Encoding; "-" for none
		want   got
	}{
		{name: "no Accept-Encoding", path: "/app.js", ae: "-", want: got{200, Result{200, "app.js", ""}, "", js, "Accept-Encoding", plainJS}},
		{name: "gzip", path: "/app.js", ae: "gzip", want: got{200, Result{200, "app.js.gz", "gzip"}, "gzip", js, "Accept-Encoding", gz}},
		{name: "br", path: "/app.js", ae: "br", want: got{200, Result{200, "app.js.br", "br"}, "br", js, "Accept-Encoding", "BROTLI-MARKER-app.js"}},
		{name: "zstd", path: "/app.js", ae: "zstd", want: got{200, Result{200, "app.js.zst", "zstd"}, "zstd", js, "Accept-Encoding", "ZSTD-MARKER-app.js"}},
		{name: "equal weights: configured order", path: "/app.js", ae: "gzip, zstd, br", want: got{200, Result{200, "app.js.br", "br"}, "br", js, "Accept-Encoding", "BROTLI-MARKER-app.js"}},
		{name: "equal weights, other configured order", server: "gzipFirst", path: "/app.js", ae: "br, gzip", want: got{200, Result{200, "app.js.gz", "gzip"}, "gzip", js, "Accept-Encoding", gz}},
		{name: "higher q wins over configured order", path: "/app.js", ae: "br;q=0.5, gzip;q=1", want: got{200, Result{200, "app.js.gz", "gzip"}, "gzip", js, "Accept-Encoding", gz}},
		{name: "q with spaces and upper case", path: "/app.js", ae: "BR ; Q=0.2 ,GZIP; q=0.9", want: got{200, Result{200, "app.js.gz", "gzip"}, "gzip", js, "Accept-Encoding", gz}},
		{name: "br;q=0 alone", path: "/app.js", ae: "br;q=0", want: got{200, Result{200, "app.js", ""}, "", js, "Accept-Encoding", plainJS}},
		{name: "br;q=0 then gzip", path: "/app.js", ae: "br;q=0, gzip", want: got{200, Result{200, "app.js.gz", "gzip"}, "gzip", js, "Accept-Encoding", gz}},
		{name: "q=0.000 is refusal", path: "/app.js", ae: "gzip;q=0.000", want: got{200, Result{200, "app.js", ""}, "", js, "Accept-Encoding", plainJS}},
		{name: "star takes the configured first", path: "/app.js", ae: "*", want: got{200, Result{200, "app.js.br", "br"}, "br", js, "Accept-Encoding", "BROTLI-MARKER-app.js"}},
		{name: "star below a named one", path: "/app.js", ae: "*;q=0.5, gzip", want: got{200, Result{200, "app.js.gz", "gzip"}, "gzip", js, "Accept-Encoding", gz}},
		{name: "star with br refused", path: "/app.js", ae: "*, br;q=0", want: got{200, Result{200, "app.js.zst", "zstd"}, "zstd", js, "Accept-Encoding", "ZSTD-MARKER-app.js"}},
		{name: "star;q=0 refuses all", path: "/app.js", ae: "*;q=0", want: got{200, Result{200, "app.js", ""}, "", js, "Accept-Encoding", plainJS}},
		{name: "identity;q=0 alone: the file anyway", path: "/app.js", ae: "identity;q=0", want: got{200, Result{200, "app.js", ""}, "", js, "Accept-Encoding", plainJS}},
		{name: "identity;q=0 with gzip", path: "/app.js", ae: "identity;q=0, gzip", want: got{200, Result{200, "app.js.gz", "gzip"}, "gzip", js, "Accept-Encoding", gz}},
		{name: "identity preferred over br", path: "/app.js", ae: "br;q=0.5, identity", want: got{200, Result{200, "app.js", ""}, "", js, "Accept-Encoding", plainJS}},
		{name: "unknown coding only", path: "/app.js", ae: "compress, deflate", want: got{200, Result{200, "app.js", ""}, "", js, "Accept-Encoding", plainJS}},
		{name: "malformed q ignores the element", path: "/app.js", ae: "gzip;q=1.5, br;q=abc", want: got{200, Result{200, "app.js", ""}, "", js, "Accept-Encoding", plainJS}},
		{name: "x-gzip is gzip", path: "/app.js", ae: "x-gzip", want: got{200, Result{200, "app.js.gz", "gzip"}, "gzip", js, "Accept-Encoding", gz}},
		{name: "missing sibling falls back to the next", path: "/only-gz.css", ae: "br, gzip", want: got{200, Result{200, "only-gz.css.gz", "gzip"}, "gzip", "text/css; charset=utf-8", "Accept-Encoding", string(gzipped(t, "body{}\n"))}},
		{name: "missing sibling falls back to the file", path: "/only-gz.css", ae: "br", want: got{200, Result{200, "only-gz.css", ""}, "", "text/css; charset=utf-8", "Accept-Encoding", "body{}\n"}},
		{name: "sibling that is a directory is not one", path: "/sib.txt", ae: "gzip", want: got{200, Result{200, "sib.txt", ""}, "", "text/plain; charset=utf-8", "Accept-Encoding", "sibling is a directory\n"}},
		{name: "sniffed type comes from the original", path: "/LICENSE", ae: "gzip", want: got{200, Result{200, "LICENSE.gz", "gzip"}, "gzip", "text/plain; charset=utf-8", "Accept-Encoding", string(gzipped(t, "plain text licence, sniffed\n"))}},
		{name: "index of a directory", path: "/dir/", ae: "gzip", want: got{200, Result{200, "dir/index.html", ""}, "", "text/html; charset=utf-8", "Accept-Encoding", "<html>dir</html>\n"}},
		{name: "precompression off", server: "none", path: "/app.js", ae: "br, gzip", want: got{200, Result{200, "app.js", ""}, "", js, "", plainJS}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, results := all, allResults
			switch c.server {
			case "gzipFirst":
				addr, results = gzipFirst, gzipFirstResults
			case "none":
				addr, results = none, noneResults
			}
			var hs []string
			if c.ae != "-" {
				hs = append(hs, "Accept-Encoding: "+c.ae)
			}
			a := rawDo(t, addr, "GET", c.path, hs...)
			g := got{
				Status:   a.status,
				Result:   <-results,
				Encoding: a.header.Get("Content-Encoding"),
				Type:     a.header.Get("Content-Type"),
				Vary:     a.header.Get("Vary"),
				Body:     string(a.body),
			}
			if d := cmp.Diff(c.want, g); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestPrecompressedValidators: each representation has its own strong
// ETag, so a validator of one never matches another; a range is cut from
// the sibling's bytes, and If-Range with the plain file's ETag gets the
// whole sibling.
func TestPrecompressedValidators(t *testing.T) {
	tr := makeTree(t)
	addr := serveOver(t, newServer(t, Options{Root: tr.root, Precompressed: []string{"br", "zstd", "gzip"}}))
	etags := map[string]string{}
	for _, ae := range []string{"identity", "br", "zstd", "gzip"} {
		a := rawDo(t, addr, "GET", "/app.js", "Accept-Encoding: "+ae)
		e := a.header.Get("Etag")
		if etagShape(e) != "strong" {
			t.Fatalf("%s: ETag %q is not strong", ae, e)
		}
		for other, oe := range etags {
			if oe == e {
				t.Errorf("%s and %s share the ETag %s", ae, other, e)
			}
		}
		etags[ae] = e
	}

	if a := rawDo(t, addr, "GET", "/app.js", "Accept-Encoding: gzip", "If-None-Match: "+etags["identity"]); a.status != 200 {
		t.Errorf("gzip with the plain ETag: %d, want 200", a.status)
	}
	if a := rawDo(t, addr, "GET", "/app.js", "Accept-Encoding: gzip", "If-None-Match: "+etags["gzip"]); a.status != 304 || a.header.Get("Vary") != "Accept-Encoding" || a.header.Get("Content-Encoding") != "" {
		t.Errorf("gzip with its ETag: %d %v, want 304 with Vary and no Content-Encoding", a.status, a.header)
	}
	a := rawDo(t, addr, "GET", "/app.js", "Accept-Encoding: br", "Range: bytes=0-5")
	if a.status != 206 || string(a.body) != "BROTLI" || a.header.Get("Content-Range") != "bytes 0-5/20" || a.header.Get("Content-Encoding") != "br" {
		t.Errorf("br range: %d %q %v", a.status, a.body, a.header)
	}
	a = rawDo(t, addr, "GET", "/app.js", "Accept-Encoding: br", "Range: bytes=0-5", "If-Range: "+etags["identity"])
	if a.status != 200 || string(a.body) != "BROTLI-MARKER-app.js" {
		t.Errorf("br range with the plain file's If-Range: %d %q, want the whole sibling", a.status, a.body)
	}
	a = rawDo(t, addr, "GET", "/app.js", "Accept-Encoding: br", "Range: bytes=0-5", "If-Range: "+etags["br"])
	if a.status != 206 {
		t.Errorf("br range with its own If-Range: %d, want 206", a.status)
	}
}

// TestRangeOfASiblingAndItsRefusalNameOneRepresentation: a Range applies
// to the representation the Accept-Encoding selects, the sibling's bytes
// when one is sent. The 206 cuts from it, and a 416 gives its length and
// ETag, so a client that resumes the bytes it was sent (curl -C with
// Accept-Encoding: gzip) learns that it has them all; a client that takes
// no coding gets the file's.
func TestRangeOfASiblingAndItsRefusalNameOneRepresentation(t *testing.T) {
	tr := makeTree(t)
	addr := serveOver(t, newServer(t, Options{Root: tr.root, Precompressed: []string{"gzip"}}))
	type view struct {
		Status                   int
		ContentRange, ETag, Vary string
	}
	viewOf := func(a answer) view {
		return view{a.status, a.header.Get("Content-Range"), a.header.Get("Etag"), a.header.Get("Vary")}
	}
	for _, c := range []struct {
		name string
		ae   string
		size int
	}{
		{name: "gzip sibling", ae: "gzip", size: len(gzipped(t, hundred))},
		{name: "identity", ae: "identity", size: len(hundred)},
	} {
		t.Run(c.name, func(t *testing.T) {
			whole := rawDo(t, addr, "GET", "/comp.txt", "Accept-Encoding: "+c.ae)
			etag := whole.header.Get("Etag")
			if len(whole.body) != c.size {
				t.Fatalf("the whole is %d bytes, want %d", len(whole.body), c.size)
			}
			part := rawDo(t, addr, "GET", "/comp.txt", "Accept-Encoding: "+c.ae, "Range: bytes=0-4")
			want := view{206, "bytes 0-4/" + strconv.Itoa(c.size), etag, "Accept-Encoding"}
			if d := cmp.Diff(want, viewOf(part)); d != "" {
				t.Errorf("206 (-want +got):\n%s", d)
			}
			if string(part.body) != string(whole.body[:5]) {
				t.Errorf("206 sent %q, want the whole's first 5 bytes %q", part.body, whole.body[:5])
			}
			refused := rawDo(t, addr, "GET", "/comp.txt", "Accept-Encoding: "+c.ae, "Range: bytes="+strconv.Itoa(c.size)+"-")
			want = view{416, "bytes */" + strconv.Itoa(c.size), etag, "Accept-Encoding"}
			if d := cmp.Diff(want, viewOf(refused)); d != "" {
				t.Errorf("416 (-want +got):\n%s", d)
			}
		})
	}
}
