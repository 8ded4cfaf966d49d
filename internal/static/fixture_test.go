package static

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain proves that every goroutine the package's tests start has
// stopped when they end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixtureTime is every fixture file's modification time, so that both
// servers of a differential case send the same Last-Modified.
var fixtureTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// tree is a served root and, beside it, a directory that must never be
// served from it.
type tree struct {
	root    string
	outside string
	secret  []byte // the content of outside/secret.txt
}

// hundred is a.txt: 100 bytes, each line naming its offset.
var hundred = func() string {
	var b strings.Builder
	for i := range 10 {
		fmt.Fprintf(&b, "line %02d..\n", i*10)
	}
	return b.String()
}()

// plainJS is app.js; its siblings hold markers, not real compressed data,
// except app.js.gz and comp.txt.gz, which nginx's gzip_static also reads.
const plainJS = "console.log('the plain app');\n"

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// makeTree writes the fixture: files, directories with and without an
// index, precompressed siblings, and symlinks that stay in and leave the
// root.
func makeTree(t testing.TB) tree {
	t.Helper()
	base := t.TempDir()
	tr := tree{
		root:    filepath.Join(base, "root"),
		outside: filepath.Join(base, "outside"),
		secret:  []byte(fmt.Sprintf("TOP-SECRET-%d-never-served", time.Now().UnixNano())),
	}
	files := map[string][]byte{
		"index.html":            []byte("<html>home</html>\n"),
		"a.txt":                 []byte(hundred),
		"noext":                 []byte("plain words, no extension\n"),
		".hidden.txt":           []byte("hidden but served\n"),
		"dir/index.html":        []byte("<html>dir</html>\n"),
		"empty/other.txt":       []byte("no index beside me\n"),
		"app.js":                []byte(plainJS),
		"app.js.br":             []byte("BROTLI-MARKER-app.js"),
		"app.js.zst":            []byte("ZSTD-MARKER-app.js"),
		"app.js.gz":             gzipped(t, plainJS),
		"only-gz.css":           []byte("body{}\n"),
		"only-gz.css.gz":        gzipped(t, "body{}\n"),
		"comp.txt":              []byte(hundred),
		"comp.txt.gz":           gzipped(t, hundred),
		"LICENSE":               []byte("plain text licence, sniffed\n"),
		"LICENSE.gz":            gzipped(t, "plain text licence, sniffed\n"),
		"spa/index.html":        []byte("<html>spa shell</html>\n"),
		"spa/assets/main.js":    []byte("main();\n"),
		"spa/docs/index.html":   []byte("<html>docs</html>\n"),
		"spa/emptydir/keep.txt": []byte("keep\n"),
		"sib.txt":               []byte("sibling is a directory\n"),
		"sib.txt.gz/x":          []byte("a directory named like a sibling\n"),
		"with space.txt":        []byte("spaced\n"),
	}
	for name, data := range files {
		p := filepath.Join(tr.root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(tr.outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr.outside, "secret.txt"), tr.secret, 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"link-in.txt":    "a.txt",
		"dir/up-in.txt":  "../a.txt",
		"link-out.txt":   "../outside/secret.txt",
		"link-outdir":    "../outside",
		"link-abs-in":    filepath.Join(tr.root, "a.txt"),
		"link-abs-out":   filepath.Join(tr.outside, "secret.txt"),
		"dir/deep-out":   "../../outside/secret.txt",
		"link-loop":      "link-loop",
		"link-dangling":  "nowhere.txt",
		"app2.js":        "app.js",
		"app2.js.gz":     "../outside/secret.txt",
		"dir-link":       "dir",
		"spa/secret.txt": "../../outside/secret.txt",
	}
	for name, to := range links {
		if err := os.Symlink(to, filepath.Join(tr.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	filepath.WalkDir(tr.root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type()&os.ModeSymlink == 0 {
			os.Chtimes(p, fixtureTime, fixtureTime)
		}
		return nil
	})
	return tr
}

// serveOver runs s behind a plain net/http server on loopback, handing it
// the decoded path as a gateway would, and returns its address.
func serveOver(t testing.TB, s *Server) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Serve(w, r, r.URL.Path)
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// answer is one response as a raw client read it.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// rawDo sends one request, written byte for byte (so the target reaches
// the server as written), and reads the answer to the end of the
// connection.
func rawDo(t testing.TB, addr, method, target string, header ...string) answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for _, h := range header {
		req.WriteString(h + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

func newServer(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serveRecording is serveOver that also hands back each request's Result,
// in order, as Serve returns it.
func serveRecording(t testing.TB, s *Server) (addr string, results <-chan Result) {
	t.Helper()
	ch := make(chan Result, 64)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- s.Serve(w, r, r.URL.Path)
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String(), ch
}

// writeFileAt writes body to p and sets its modification time.
func writeFileAt(t *testing.T, p, body string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}
