package gateway

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/compress"
	"github.com/gatehouse/gatehouse/internal/edge"
)

// changingWriter is a front.ResponseWriter that calls change once the
// head is written (a file rewritten while it is answered) and records
// whether the answer was cut short.
type changingWriter struct {
	h       http.Header
	change  func()
	code    int
	body    bytes.Buffer
	aborted bool
}

func (w *changingWriter) Header() http.Header           { return w.h }
func (w *changingWriter) SetRequestID(string)           {}
func (w *changingWriter) UseHeader(h http.Header)       { w.h = h }
func (w *changingWriter) SetTrailer(*http.Header)       {}
func (w *changingWriter) WriteInterim(int, http.Header) {}
func (w *changingWriter) Flush()                        {}
func (w *changingWriter) Abort()                        { w.aborted = true }
func (w *changingWriter) Write(p []byte) (int, error)   { return w.body.Write(p) }
func (w *changingWriter) WriteHeader(code int) {
	w.code = code
	w.change()
}

// A compressed answer has no Content-Length for the front to hold the
// file to, so the gateway does: a static file that shrinks while it is
// sent compressed (rewritten in place, as cp does) is cut short, not
// ended as a whole answer that a cache keeps under the old ETag; one that
// grows is sent as long as it was stat'ed, as it would be uncompressed.
func TestCompressedStaticFileHeldToItsStatedLength(t *testing.T) {
	content := bytes.Repeat([]byte("console.log('gatehouse');\n"), 8<<10) // 208 KiB: not kept in memory
	for _, c := range []struct {
		name        string
		now         []byte // what the file holds once the head is written
		wantAborted bool
	}{
		{name: "shrinks", now: content[:1000], wantAborted: true},
		{name: "grows", now: append(bytes.Clone(content), "appended();\n"...)},
		{name: "unchanged", now: content},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, name := staticServing(t, "app.js", content)
			comp, err := compress.New(compress.Options{Encodings: []string{compress.Gzip}})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/app.js", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			fw := &changingWriter{h: http.Header{}, change: func() {
				// In place, as cp does: the open file sees it.
				if err := os.WriteFile(name, c.now, 0o644); err != nil {
					t.Error(err)
				}
			}}
			rw := &responseWriter{ResponseWriter: fw, edge: &edge.Route{Compress: comp}, ask: &edge.Ask{Req: req}}
			s.Serve(rw, req, "/app.js")
			rw.end()
			if fw.code != http.StatusOK || fw.h.Get("Content-Encoding") != "gzip" {
				t.Fatalf("answer %d with Content-Encoding %q, want 200 gzip", fw.code, fw.h.Get("Content-Encoding"))
			}
			if fw.aborted != c.wantAborted {
				t.Fatalf("answer cut short: %v, want %v", fw.aborted, c.wantAborted)
			}
			if c.wantAborted {
				return
			}
			zr, err := gzip.NewReader(&fw.body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("decoding the answer: %v", err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("decoded %d bytes, want the %d the file had when it was stat'ed", len(got), len(content))
			}
		})
	}
}
