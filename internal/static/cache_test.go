package static

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a Server's clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestKeptFileChangeSeenAfterRevalidation: a small file is answered from
// memory until it is due to be checked again, so a rewrite, or a removal,
// is seen within revalidateEvery and not before.
func TestKeptFileChangeSeenAfterRevalidation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	t0 := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	write := func(body string, mtime time.Time) { writeFileAt(t, p, body, mtime) }
	write("first", t0)
	clk := newFakeClock()
	addr := serveOver(t, newServer(t, Options{Root: dir, Now: clk.Now}))
	first := rawDo(t, addr, "GET", "/f.txt")

	write("again", t0.Add(time.Second))
	clk.Advance(revalidateEvery - time.Nanosecond)
	if a := rawDo(t, addr, "GET", "/f.txt"); string(a.body) != "first" || a.header.Get("Etag") != first.header.Get("Etag") {
		t.Errorf("within the interval: %q ETag %s, want the kept %q ETag %s", a.body, a.header.Get("Etag"), "first", first.header.Get("Etag"))
	}
	clk.Advance(time.Nanosecond)
	again := rawDo(t, addr, "GET", "/f.txt")
	if string(again.body) != "again" || again.header.Get("Etag") == first.header.Get("Etag") {
		t.Errorf("after the interval: %q ETag %s, want %q and a new ETag", again.body, again.header.Get("Etag"), "again")
	}

	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if a := rawDo(t, addr, "GET", "/f.txt"); a.status != 200 || string(a.body) != "again" {
		t.Errorf("removed, within the interval: %d %q, want the kept 200 %q", a.status, a.body, "again")
	}
	clk.Advance(revalidateEvery)
	if a := rawDo(t, addr, "GET", "/f.txt"); a.status != 404 {
		t.Errorf("removed, after the interval: %d %q, want 404", a.status, a.body)
	}
}

// TestKeptIndexFollowsDirectory: a directory's index kept in memory
// answers for the directory until it is due to be checked again; a
// directory replaced by a file is then not found under its slash.
func TestKeptIndexFollowsDirectory(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "index.html"), []byte("index of d"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	addr := serveOver(t, newServer(t, Options{Root: dir, Now: clk.Now}))
	if a := rawDo(t, addr, "GET", "/d/"); a.status != 200 || string(a.body) != "index of d" {
		t.Fatalf("before: %d %q", a.status, a.body)
	}
	if err := os.RemoveAll(d); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d, []byte("a file now"), 0o644); err != nil {
		t.Fatal(err)
	}
	if a := rawDo(t, addr, "GET", "/d/"); a.status != 200 || string(a.body) != "index of d" {
		t.Errorf("within the interval: %d %q, want the kept index", a.status, a.body)
	}
	clk.Advance(revalidateEvery)
	if a := rawDo(t, addr, "GET", "/d/"); a.status != 404 {
		t.Errorf("after the interval: %d %q, want 404", a.status, a.body)
	}
	if a := rawDo(t, addr, "GET", "/d"); a.status != 200 || string(a.body) != "a file now" {
		t.Errorf("the file: %d %q", a.status, a.body)
	}
}

// TestKeptFileReplacedBySymlinkOut: a kept file replaced by a symlink
// that leaves the root is refused once it is checked again, and what is
// outside is never sent.
func TestKeptFileReplacedBySymlinkOut(t *testing.T) {
	tr := makeTree(t)
	clk := newFakeClock()
	addr := serveOver(t, newServer(t, Options{Root: tr.root, Now: clk.Now}))
	if a := rawDo(t, addr, "GET", "/a.txt"); a.status != 200 || string(a.body) != hundred {
		t.Fatalf("before: %d %q", a.status, a.body)
	}
	link := filepath.Join(tr.root, "a.txt.new")
	if err := os.Symlink(filepath.Join("..", "outside", "secret.txt"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, filepath.Join(tr.root, "a.txt")); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name    string
		advance time.Duration
		want    int
	}{
		{"within the interval", 0, 200},
		{"after the interval", revalidateEvery, 404},
		{"again after", 0, 404},
	} {
		clk.Advance(step.advance)
		a := rawDo(t, addr, "GET", "/a.txt")
		if a.status != step.want {
			t.Errorf("%s: %d %q, want %d", step.name, a.status, a.body, step.want)
		}
		if bytes.Contains(a.body, tr.secret) {
			t.Errorf("%s: the secret outside the root was sent", step.name)
		}
	}
}

// TestFileOverCacheLimitNotKept: a file larger than CacheFileMax is opened
// for every request (a rewrite is seen at once) and handed to ReadFrom;
// one within it is written from memory.
func TestFileOverCacheLimitNotKept(t *testing.T) {
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.txt"), filepath.Join(dir, "big.txt")
	for p, body := range map[string]string{small: "0123456789", big: "0123456789a"} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newServer(t, Options{Root: dir, CacheFileMax: 10, Now: newFakeClock().Now})
	serve := func(name string) (*readerFromRecorder, Result) {
		w := &readerFromRecorder{discardWriter: discardWriter{h: http.Header{}}}
		res := s.Serve(w, httptest.NewRequest("GET", "/"+name, nil), "/"+name)
		return w, res
	}
	if w, _ := serve("small.txt"); len(w.got) != 0 || w.n != 10 {
		t.Errorf("small.txt: ReadFrom got %v, %d bytes; want it written from memory, 10 bytes", w.got, w.n)
	}
	if w, _ := serve("big.txt"); fmt.Sprint(w.got) != "[*os.File]" || w.n != 11 {
		t.Errorf("big.txt: ReadFrom got %v, %d bytes; want [*os.File], 11 bytes", w.got, w.n)
	}
	if err := os.WriteFile(big, []byte("0123456789abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w, _ := serve("big.txt"); w.n != 13 {
		t.Errorf("big.txt rewritten: %d bytes, want the new 13 at once", w.n)
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	if got := keys(s.cache.files); !cmp.Equal(got, []string{"small.txt"}) {
		t.Errorf("kept %v, want [small.txt]", got)
	}
}

// TestCacheTotalBound: however many small files are served, what is kept
// stays within CacheTotal, and every answer carries its own file.
func TestCacheTotalBound(t *testing.T) {
	dir := t.TempDir()
	const files, size = 40, 100
	for i := range files {
		body := strings.Repeat(fmt.Sprintf("%02d", i), size/2)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.txt", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const total int64 = 5 * (size + entryOverhead + int64(len("f00.txt")))
	s := newServer(t, Options{Root: dir, CacheTotal: total, Now: newFakeClock().Now})
	for round := range 3 {
		for i := range files {
			// Some files more often than others, so the clock has marks
			// to clear.
			for range 1 + i%3 {
				rec := httptest.NewRecorder()
				name := fmt.Sprintf("/f%02d.txt", i)
				s.Serve(rec, httptest.NewRequest("GET", name, nil), name)
				if want := strings.Repeat(fmt.Sprintf("%02d", i), size/2); rec.Code != 200 || rec.Body.String() != want {
					t.Fatalf("round %d %s: %d %q", round, name, rec.Code, rec.Body)
				}
			}
			s.cache.mu.RLock()
			kept, held := len(s.cache.files), s.cache.total
			var sum int64
			for _, e := range s.cache.ring {
				sum += e.cost
			}
			ring := len(s.cache.ring)
			s.cache.mu.RUnlock()
			if held > total || kept != ring || sum != held || kept > 5 || kept == 0 {
				t.Fatalf("round %d after f%02d: %d files in the map, %d in the ring, %d bytes counted, %d summed; want at most 5 and %d bytes", round, i, kept, ring, held, sum, total)
			}
		}
	}
}

// TestCacheTotalBoundConcurrently: requests for more small files than
// fit, from several goroutines at once, each get their own file's bytes,
// and what is kept stays within CacheTotal.
func TestCacheTotalBoundConcurrently(t *testing.T) {
	dir := t.TempDir()
	const files, size, workers = 24, 64, 4
	body := func(i int) string { return strings.Repeat(fmt.Sprintf("%02d", i), size/2) }
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.txt", i)), []byte(body(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const total int64 = 4 * (size + entryOverhead + int64(len("f00.txt")))
	clk := newFakeClock()
	s := newServer(t, Options{Root: dir, CacheTotal: total, Now: clk.Now})
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Go(func() {
			for n := range 300 {
				i := (n*7 + w*5) % files
				if n%50 == 0 {
					clk.Advance(revalidateEvery)
				}
				rec := httptest.NewRecorder()
				name := fmt.Sprintf("/f%02d.txt", i)
				s.Serve(rec, httptest.NewRequest("GET", name, nil), name)
				if rec.Code != 200 || rec.Body.String() != body(i) {
					errs <- fmt.Sprintf("%s: %d %q", name, rec.Code, rec.Body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	if s.cache.total > total || len(s.cache.files) != len(s.cache.ring) {
		t.Errorf("%d bytes kept in %d files (%d in the ring), want at most %d", s.cache.total, len(s.cache.files), len(s.cache.ring), total)
	}
}

// TestKeptFileAnswersMatchOpened: every kind of answer (conditionals,
// ranges, several ranges, HEAD, a precompressed sibling, an index) is the
// same from memory as from the file opened.
func TestKeptFileAnswersMatchOpened(t *testing.T) {
	tr := makeTree(t)
	opts := Options{Root: tr.root, Precompressed: []string{"gzip"}, CacheControl: "max-age=60"}
	kept := newServer(t, opts)
	opts.CacheFileMax = -1
	opened := newServer(t, opts)
	lastMod := fixtureTime.Format(http.TimeFormat)
	etag := func(path string, header ...string) string {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", path, nil)
		for _, h := range header {
			k, v, _ := strings.Cut(h, ": ")
			r.Header.Set(k, v)
		}
		opened.Serve(rec, r, path)
		return rec.Header().Get("Etag")
	}
	cases := []struct {
		name, method, path string
		header             []string
	}{
		{"whole", "GET", "/a.txt", nil},
		{"HEAD", "HEAD", "/a.txt", nil},
		{"If-None-Match", "GET", "/a.txt", []string{"If-None-Match: " + etag("/a.txt")}},
		{"If-Modified-Since", "GET", "/a.txt", []string{"If-Modified-Since: " + lastMod}},
		{"If-Match fails", "GET", "/a.txt", []string{`If-Match: "nope"`}},
		{"one range", "GET", "/a.txt", []string{"Range: bytes=10-29"}},
		{"suffix range", "GET", "/a.txt", []string{"Range: bytes=-7"}},
		{"several ranges", "GET", "/a.txt", []string{"Range: bytes=0-4,50-59,-3"}},
		{"unsatisfiable range", "GET", "/a.txt", []string{"Range: bytes=500-"}},
		{"If-Range stale", "GET", "/a.txt", []string{"Range: bytes=0-4", `If-Range: "old"`}},
		{"sniffed type", "GET", "/LICENSE", nil},
		{"precompressed", "GET", "/app.js", []string{"Accept-Encoding: gzip"}},
		{"precompressed range", "GET", "/app.js", []string{"Accept-Encoding: gzip", "Range: bytes=2-9"}},
		{"precompressed 304", "GET", "/app.js", []string{"Accept-Encoding: gzip", "If-None-Match: " + etag("/app.js", "Accept-Encoding: gzip")}},
		{"index", "GET", "/dir/", nil},
		{"root index", "GET", "/", nil},
		{"root index of the prefix", "GET", "", nil},
		{"redirect to index", "GET", "/dir", nil},
		{"file as directory", "GET", "/a.txt/", nil},
		{"symlink out", "GET", "/link-out.txt", nil},
		{"symlink in", "GET", "/link-in.txt", nil},
	}
	type answer struct {
		Status int
		Header http.Header
		Body   string
	}
	do := func(s *Server, method, path string, header []string) answer {
		rec := httptest.NewRecorder()
		url := path
		if url == "" {
			url = "/prefix/" // what a caller stripped to ""
		}
		r := httptest.NewRequest(method, url, nil)
		for _, h := range header {
			k, v, _ := strings.Cut(h, ": ")
			r.Header.Set(k, v)
		}
		s.Serve(rec, r, path)
		a := answer{Status: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
		// A multipart answer's boundary is random.
		if _, b, ok := strings.Cut(a.Header.Get("Content-Type"), "boundary="); ok {
			a.Header.Set("Content-Type", strings.ReplaceAll(a.Header.Get("Content-Type"), b, "BOUNDARY"))
			a.Body = strings.ReplaceAll(a.Body, b, "BOUNDARY")
		}
		return a
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := do(opened, c.method, c.path, c.header)
			// The first asks through the file and keeps it, the second
			// answers from memory.
			for _, pass := range []string{"first", "kept"} {
				if diff := cmp.Diff(want, do(kept, c.method, c.path, c.header)); diff != "" {
					t.Errorf("%s (-opened +kept):\n%s", pass, diff)
				}
			}
		})
	}
	kept.cache.mu.RLock()
	defer kept.cache.mu.RUnlock()
	if got := keys(kept.cache.files); len(got) == 0 {
		t.Errorf("nothing kept")
	}
}

func keys(m map[string]*cached) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
