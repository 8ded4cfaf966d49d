package static

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRootSwitchedByDeploy: a root that is a symlink switched to a new
// release (renamed over, atomically) serves the new release once the
// root is due to be checked again, though the Server keeps the root open,
// and the old release's files in memory, between requests.
func TestRootSwitchedByDeploy(t *testing.T) {
	base := t.TempDir()
	for _, rel := range []string{"r1", "r2"} {
		if err := os.MkdirAll(filepath.Join(base, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, rel, "index.html"), []byte("release "+rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	current := filepath.Join(base, "current")
	if err := os.Symlink("r1", current); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	s := newServer(t, Options{Root: current, Now: clk.Now})
	t.Cleanup(func() { s.Close() })
	addr := serveOver(t, s)
	if a := rawDo(t, addr, "GET", "/"); string(a.body) != "release r1" {
		t.Fatalf("before the switch: %d %q", a.status, a.body)
	}
	next := filepath.Join(base, "current.next")
	if err := os.Symlink("r2", next); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, current); err != nil {
		t.Fatal(err)
	}
	clk.Advance(revalidateEvery)
	if a := rawDo(t, addr, "GET", "/"); string(a.body) != "release r2" {
		t.Fatalf("after the switch: %d %q", a.status, a.body)
	}
}

// TestValidatorsFollowContent: a file rewritten with the same size gets a
// new ETag and Last-Modified, and the new bytes, once it is due to be
// checked again, though the Server keeps the last ones formatted and the
// old bytes in memory.
func TestValidatorsFollowContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	t0 := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	write := func(body string, mtime time.Time) { writeFileAt(t, p, body, mtime) }
	write("first", t0)
	clk := newFakeClock()
	addr := serveOver(t, newServer(t, Options{Root: dir, Now: clk.Now}))
	a := rawDo(t, addr, "GET", "/f.txt")
	write("again", t0.Add(1500*time.Millisecond))
	clk.Advance(revalidateEvery)
	b := rawDo(t, addr, "GET", "/f.txt")
	if string(b.body) != "again" || b.header.Get("Etag") == a.header.Get("Etag") || b.header.Get("Last-Modified") == a.header.Get("Last-Modified") {
		t.Errorf("after a rewrite: %q ETag %s→%s Last-Modified %s→%s", b.body, a.header.Get("Etag"), b.header.Get("Etag"), a.header.Get("Last-Modified"), b.header.Get("Last-Modified"))
	}
	// Within the same second: Last-Modified cannot tell, the ETag must.
	write("third", t0.Add(1700*time.Millisecond))
	clk.Advance(revalidateEvery)
	c := rawDo(t, addr, "GET", "/f.txt", "If-None-Match: "+b.header.Get("Etag"))
	if c.status != 200 || string(c.body) != "third" {
		t.Errorf("If-None-Match with the previous ETag after a sub-second rewrite: %d %q, want 200 third", c.status, c.body)
	}
}
