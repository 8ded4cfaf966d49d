package static

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// readerFromRecorder is a ResponseWriter that can read from a file itself,
// as one using sendfile does, and records what it was handed.
type readerFromRecorder struct {
	discardWriter
	got []string
}

func (w *readerFromRecorder) ReadFrom(r io.Reader) (int64, error) {
	desc := fmt.Sprintf("%T", r)
	if lr, ok := r.(*io.LimitedReader); ok {
		desc += fmt.Sprintf("(%T, %d)", lr.R, lr.N)
	}
	w.got = append(w.got, desc)
	n, err := io.Copy(io.Discard, r)
	w.n += n
	return n, err
}

// TestFileReachesReaderFrom: a whole file not kept in memory goes to
// ReadFrom as the *os.File itself, so sendfile is possible; a range as an
// *io.LimitedReader over it (which net/http's sendfile path accepts);
// HEAD sends nothing.
func TestFileReachesReaderFrom(t *testing.T) {
	tr := makeTree(t)
	s := newServer(t, Options{Root: tr.root, Precompressed: []string{"gzip"}, CacheFileMax: -1})
	cases := []struct {
		name, method string
		header       http.Header
		want         []string
		wantN        int64
	}{
		{"whole file", "GET", nil, []string{"*os.File"}, 100},
		{"precompressed sibling", "GET", http.Header{"Accept-Encoding": {"gzip"}}, []string{"*os.File"}, int64(len(gzipped(t, hundred)))},
		{"one range", "GET", http.Header{"Range": {"bytes=10-19"}}, []string{"*io.LimitedReader(*os.File, 10)"}, 10},
		{"HEAD", "HEAD", nil, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &readerFromRecorder{discardWriter: discardWriter{h: http.Header{}}}
			r := httptest.NewRequest(c.method, "/comp.txt", nil)
			for k, v := range c.header {
				r.Header[k] = v
			}
			s.Serve(w, r, "/comp.txt")
			if fmt.Sprint(w.got) != fmt.Sprint(c.want) || w.n != c.wantN {
				t.Errorf("ReadFrom got %v (%d bytes), want %v (%d bytes)", w.got, w.n, c.want, c.wantN)
			}
		})
	}
}
