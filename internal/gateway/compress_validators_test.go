package gateway_test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// compressedPage is a page of a type and size that a compress route
// compresses.
var compressedPage = strings.Repeat("<p>a page a cache keeps, compressed or not.</p>\n", 60)

// image is the body of logo.png: a type a compress route never
// compresses, of a size it would.
var image = strings.Repeat("\x89PNG\r\n\x1a\n", 200)

// conditionalApp is an app that answers /page with compressedPage, and
// /logo.png with image, through net/http's ServeContent, under a strong
// ETag of its own: conditionals and ranges as most frameworks answer
// them.
func conditionalApp(t *testing.T) string {
	t.Helper()
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"page-v1"`)
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "page.html", mod, strings.NewReader(compressedPage))
	})
	mux.HandleFunc("/logo.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"logo-v1"`)
		http.ServeContent(w, r, "logo.png", mod, strings.NewReader(image))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// compressedRoutes is a gateway with compress: true in front of app,
// whose /files/ route serves a directory holding page.html
// (compressedPage) and logo.png (image).
func compressedRoutes(t *testing.T, app string) *direct {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "page.html"), []byte(compressedPage), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "logo.png"), []byte(image), 0o644); err != nil {
		t.Fatal(err)
	}
	return newDirect(t, "h1", app, func(a *config.App) {
		a.Compress = &config.Compress{}
		a.Routes = []config.Route{{Match: "/files/", StripPrefix: true, Static: &config.Static{Root: root}}, {Match: "/"}}
	})
}

// A 304 to a client revalidating a compressed answer carries that
// answer's validators and Vary (RFC 9110 15.4.5), for an app's answer
// and a static file alike: its weak ETag, not the identity body's strong
// one, so a cache updates the compressed copy it holds, and Vary, so it
// keeps the copies apart. A client holding the identity body gets its
// strong ETag back.
func TestNotModifiedToACompressedAnswerKeepsItsValidators(t *testing.T) {
	d := compressedRoutes(t, conditionalApp(t))
	for _, path := range []string{"/page", "/files/page.html"} {
		t.Run(path, func(t *testing.T) {
			full := d.send(t, "h1", edgeReq{path: path, header: http.Header{"Accept-Encoding": {"gzip"}}})
			etag := full.header.Get("Etag")
			if full.status != 200 || full.header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(etag, `W/"`) {
				t.Fatalf("GET: %d %v, want 200 gzip with a weak ETag", full.status, full.header)
			}
			plain := d.send(t, "h1", edgeReq{path: path}).header.Get("Etag")
			for _, c := range []struct {
				name string
				ae   string
				inm  string
				want string // the 304's ETag
			}{
				{name: "compressed copy", ae: "gzip", inm: etag, want: etag},
				{name: "identity copy", ae: "gzip", inm: plain, want: plain},
				{name: "identity copy, no coding taken", ae: "identity", inm: plain, want: plain},
			} {
				t.Run(c.name, func(t *testing.T) {
					got := d.send(t, "h1", edgeReq{path: path, header: http.Header{"Accept-Encoding": {c.ae}, "If-None-Match": {c.inm}}})
					if got.status != 304 {
						t.Fatalf("If-None-Match %s: %d, want 304", c.inm, got.status)
					}
					if got.header.Get("Etag") != c.want || got.header.Get("Vary") != full.header.Get("Vary") {
						t.Errorf("304 with ETag %q Vary %q, want %q and the 200's %q", got.header.Get("Etag"), got.header.Get("Vary"), c.want, full.header.Get("Vary"))
					}
				})
			}
		})
	}
}

// A static file of a type never compressed (an image) is answered
// without Vary, and so is its 304, which shows no type: the extension of
// its path, from which the static route takes the file's type, tells it.
// Its ETag stays the strong one. An app's 304 says Vary whatever its
// path: an app's path tells nothing certain of its type.
func TestNotModifiedToAStaticFileNeverCompressedSaysNoVary(t *testing.T) {
	d := compressedRoutes(t, conditionalApp(t))
	revalidate := func(t *testing.T, path string) (full, got edgeAnswer) {
		t.Helper()
		full = d.send(t, "h1", edgeReq{path: path, header: http.Header{"Accept-Encoding": {"gzip"}}})
		if full.status != 200 || full.header.Get("Content-Type") != "image/png" || full.header["Vary"] != nil || !strings.HasPrefix(full.header.Get("Etag"), `"`) {
			t.Fatalf("GET: %d %v, want 200 image/png with a strong ETag and no Vary", full.status, full.header)
		}
		got = d.send(t, "h1", edgeReq{path: path, header: http.Header{"Accept-Encoding": {"gzip"}, "If-None-Match": {full.header.Get("Etag")}}})
		if got.status != 304 {
			t.Fatalf("If-None-Match %s: %d, want 304", full.header.Get("Etag"), got.status)
		}
		return full, got
	}
	t.Run("static", func(t *testing.T) {
		full, got := revalidate(t, "/files/logo.png")
		if got.header.Get("Etag") != full.header.Get("Etag") || got.header["Vary"] != nil {
			t.Errorf("304 with ETag %q Vary %q, want %q and no Vary, as the 200", got.header.Get("Etag"), got.header["Vary"], full.header.Get("Etag"))
		}
	})
	t.Run("app", func(t *testing.T) {
		_, got := revalidate(t, "/logo.png")
		if got.header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("app's 304 Vary %q, want Accept-Encoding", got.header.Get("Vary"))
		}
	})
}

// A range of a page a compress route would compress whole is answered
// from the identity body because the client asked for a range: the
// answer was chosen by Accept-Encoding as the 200 is, and says Vary as
// the 200 does, for an app's answer and a static file alike.
func TestRangeOfACompressedAnswerVariesByAcceptEncoding(t *testing.T) {
	d := compressedRoutes(t, conditionalApp(t))
	for _, path := range []string{"/page", "/files/page.html"} {
		for _, rng := range []string{"bytes=0-9", "bytes=0-9,20-29"} {
			t.Run(path+" "+rng, func(t *testing.T) {
				got := d.send(t, "h1", edgeReq{path: path, header: http.Header{"Accept-Encoding": {"gzip"}, "Range": {rng}}})
				if got.status != 206 || got.header.Get("Content-Encoding") != "" {
					t.Fatalf("Range %s: %d %v, want 206 of the identity body", rng, got.status, got.header)
				}
				if got.header.Get("Vary") != "Accept-Encoding" {
					t.Errorf("Range %s: Vary %q, want Accept-Encoding", rng, got.header.Get("Vary"))
				}
			})
		}
	}
}
