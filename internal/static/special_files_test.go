//go:build linux

package static

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Special files in the root — a FIFO no one writes to, a unix socket, a
// character device reached by a symlink — are never opened for their
// bytes: each is answered 404 at once, as the path itself, as an index,
// as a try_files candidate or as a precompressed sibling (the original
// sent then), and a kept file replaced by one is dropped at its
// revalidation. A FIFO opened for reading would hold the answer until a
// writer came.
func TestSpecialFilesNotServed(t *testing.T) {
	root := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fifo := func(name string) {
		t.Helper()
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fifo("pipe")
	fifo("pipedir/index.html")
	write("plain.txt", "plain\n")
	fifo("plain.txt.gz")
	write("fallback.html", "fallback\n")
	write("swapped.txt", "soon a fifo\n")
	sock := filepath.Join(root, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Symlink("/dev/zero", filepath.Join(root, "zero")); err != nil {
		t.Fatal(err)
	}

	clk := newFakeClock()
	plain := serveOver(t, newServer(t, Options{Root: root, Now: clk.Now, Precompressed: []string{"gzip"}}))
	symlinks := serveOver(t, newServer(t, Options{Root: root, AllowSymlinks: true}))
	try := serveOver(t, newServer(t, Options{Root: root, TryFiles: []string{"$path", "/fallback.html"}}))
	type got struct {
		Status int
		Body   string
	}
	cases := []struct {
		name, addr, path string
		header           []string
		want             got
	}{
		{"fifo", plain, "/pipe", nil, got{404, "404 Not Found\n"}},
		{"fifo as index", plain, "/pipedir/", nil, got{404, "404 Not Found\n"}},
		{"socket", plain, "/s", nil, got{404, "404 Not Found\n"}},
		{"device through an allowed symlink", symlinks, "/zero", nil, got{404, "404 Not Found\n"}},
		{"fifo through allowed symlinks", symlinks, "/pipe", nil, got{404, "404 Not Found\n"}},
		{"fifo as precompressed sibling", plain, "/plain.txt", []string{"Accept-Encoding: gzip"}, got{200, "plain\n"}},
		{"fifo as try_files candidate", try, "/pipe", nil, got{200, "fallback\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := rawDo(t, c.addr, "GET", c.path, c.header...)
			if diff := cmp.Diff(c.want, got{a.status, string(a.body)}); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", c.path, diff)
			}
		})
	}

	t.Run("kept file replaced by a fifo", func(t *testing.T) {
		if a := rawDo(t, plain, "GET", "/swapped.txt"); a.status != 200 {
			t.Fatalf("first GET: %d", a.status)
		}
		p := filepath.Join(root, "swapped.txt")
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		clk.Advance(revalidateEvery)
		if a := rawDo(t, plain, "GET", "/swapped.txt"); a.status != 404 {
			t.Errorf("after revalidation: %d %q, want 404", a.status, a.body)
		}
	})
}
