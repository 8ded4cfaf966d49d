package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gatehouse/gatehouse/internal/static"
)

// growingWriter is a front.ResponseWriter that cannot read from a file
// itself (as an HTTP/2 stream's cannot), and that makes the file at name
// grow once the head is written: a file appended to while it is served.
type growingWriter struct {
	h    http.Header
	name string
	code int
	body bytes.Buffer
}

func (w *growingWriter) Header() http.Header           { return w.h }
func (w *growingWriter) SetRequestID(string)           {}
func (w *growingWriter) UseHeader(h http.Header)       { w.h = h }
func (w *growingWriter) SetTrailer(*http.Header)       {}
func (w *growingWriter) WriteInterim(int, http.Header) {}
func (w *growingWriter) Flush()                        {}
func (w *growingWriter) Abort()                        {}
func (w *growingWriter) Write(p []byte) (int, error)   { return w.body.Write(p) }
func (w *growingWriter) WriteHeader(code int) {
	w.code = code
	f, err := os.OpenFile(w.name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(bytes.Repeat([]byte("appended "), 8<<10))
}

// A static file that grows while it is answered is sent as long as the
// Content-Length the answer declared, when the front writer cannot read
// from the file itself (HTTP/2): not the grown file, whose excess x/net
// refuses along with the rest of the write it came in.
func TestStaticFileThatGrowsSentAsDeclared(t *testing.T) {
	content := bytes.Repeat([]byte("line of the log\n"), 10<<10) // 160 KiB: not kept in memory
	s, name := staticServing(t, "log.txt", content)
	fw := &growingWriter{h: http.Header{}, name: name}
	rw := &responseWriter{ResponseWriter: fw}
	s.Serve(rw, httptest.NewRequest("GET", "/log.txt", nil), "/log.txt")
	if fw.code != http.StatusOK || fw.h.Get("Content-Length") != strconv.Itoa(len(content)) {
		t.Fatalf("answer %d with Content-Length %q, want 200 with %d", fw.code, fw.h.Get("Content-Length"), len(content))
	}
	if fw.body.Len() != len(content) || !bytes.Equal(fw.body.Bytes(), content) || rw.bytes != int64(len(content)) {
		t.Errorf("sent %d bytes (counted %d) for a Content-Length of %d (the file as stat'ed: %v)",
			fw.body.Len(), rw.bytes, len(content), bytes.Equal(fw.body.Bytes()[:min(fw.body.Len(), len(content))], content))
	}
}

// staticServing is a static file server over a directory of its own that
// holds file, with content; it returns the server and the file's path.
func staticServing(t *testing.T, file string, content []byte) (*static.Server, string) {
	t.Helper()
	root := t.TempDir()
	name := filepath.Join(root, file)
	if err := os.WriteFile(name, content, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := static.New(static.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, name
}
