package static

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that reuses its header map, as the
// front's writer does, and drops the body; with readFrom it also takes a
// file the way a sendfile-capable writer would.
type discardWriter struct {
	h    http.Header
	code int
	n    int64
}

func (w *discardWriter) Header() http.Header  { return w.h }
func (w *discardWriter) WriteHeader(code int) { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

type readFromWriter struct{ discardWriter }

func (w *readFromWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(io.Discard, r)
	w.n += n
	return n, err
}

func benchServe(b *testing.B, size int) {
	dir := b.TempDir()
	body := []byte(strings.Repeat("x", size))
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), body, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.txt.gz"), body[:size/3], 0o644); err != nil {
		b.Fatal(err)
	}
	plain := newServer(b, Options{Root: dir, CacheControl: "public, max-age=60"})
	pre := newServer(b, Options{Root: dir, CacheControl: "public, max-age=60", Precompressed: []string{"br", "gzip"}})
	etag := func(s *Server, ae string) string {
		w := &discardWriter{h: http.Header{}}
		r := httptest.NewRequest("GET", "/f.txt", nil)
		if ae != "" {
			r.Header.Set("Accept-Encoding", ae)
		}
		s.Serve(w, r, "/f.txt")
		return w.h.Get("Etag")
	}
	run := func(name string, s *Server, w http.ResponseWriter, header http.Header, wantStatus int) {
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/f.txt", nil)
			r.Header = header
			h := w.Header()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				clear(h)
				if res := s.Serve(w, r, "/f.txt"); res.Status != wantStatus {
					b.Fatalf("status %d, want %d", res.Status, wantStatus)
				}
			}
		})
	}
	run("plain", plain, &discardWriter{h: http.Header{}}, http.Header{}, 200)
	run("plain-readfrom", plain, &readFromWriter{discardWriter{h: http.Header{}}}, http.Header{}, 200)
	run("if-none-match-304", plain, &discardWriter{h: http.Header{}}, http.Header{"If-None-Match": {etag(plain, "")}}, 304)
	run("range", plain, &discardWriter{h: http.Header{}}, http.Header{"Range": {"bytes=0-99"}}, 206)
	run("precompressed-gzip", pre, &discardWriter{h: http.Header{}}, http.Header{"Accept-Encoding": {"gzip, deflate, br;q=0"}}, 200)
	run("precompressed-304", pre, &discardWriter{h: http.Header{}}, http.Header{"Accept-Encoding": {"gzip"}, "If-None-Match": {etag(pre, "gzip")}}, 304)
	// The standard library's way, for comparison: open, stat, ServeContent.
	b.Run("net-http-ServeContent", func(b *testing.B) {
		w := &discardWriter{h: http.Header{}}
		r := httptest.NewRequest("GET", "/f.txt", nil)
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			f, err := os.Open(filepath.Join(dir, "f.txt"))
			if err != nil {
				b.Fatal(err)
			}
			fi, _ := f.Stat()
			http.ServeContent(w, r, "f.txt", fi.ModTime(), f)
			f.Close()
		}
	})
}

func BenchmarkServe1KiB(b *testing.B) { benchServe(b, 1<<10) }
func BenchmarkServe1MiB(b *testing.B) { benchServe(b, 1<<20) }
