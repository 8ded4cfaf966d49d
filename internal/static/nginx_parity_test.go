package static

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

// startNginx serves root with nginx on a free loopback port, configured as
// a plain static site (index.html, etag, gzip_static, charset utf-8 for
// text), and returns its address. Without nginx it skips, unless
// GATEHOUSE_NGINX_TESTS=1, which makes that a failure.
func startNginx(t *testing.T, root string) string {
	t.Helper()
	testutil.SkipInShort(t)
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, serr := os.Stat(bin); serr != nil {
			if os.Getenv("GATEHOUSE_NGINX_TESTS") == "1" {
				t.Fatalf("GATEHOUSE_NGINX_TESTS=1 but no nginx on PATH or at /usr/sbin/nginx: %v", err)
			}
			t.Skip("nginx not installed (apt-get install nginx-light); GATEHOUSE_NGINX_TESTS=1 makes this a failure")
		}
	}
	dir := t.TempDir()
	port := testutil.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := fmt.Sprintf(`daemon off;
master_process off;
error_log stderr warn;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    types {
        text/html html;
        text/plain txt;
        text/javascript js;
        text/css css;
    }
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/html text/plain text/css text/javascript;
    gzip_static on;
    gzip_vary on;
    server {
        listen %[2]s;
        root %[3]s;
        index index.html;
    }
}
`, dir, addr, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr testutil.LockedBuffer
	cmd := exec.Command(bin, "-e", "stderr", "-p", dir, "-c", confPath)
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	testutil.WaitFor(t, 30*time.Second, "nginx to listen on "+addr, func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("nginx exited: %v\n%s", err, stderr.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return addr
}

// view is what a differential case compares of an answer: the headers
// that matter, the ETag's shape (values differ between servers), and the
// body, or for multipart/byteranges the parts (boundaries differ).
type view struct {
	Status        int
	ContentType   string
	ContentLength string
	ContentRange  string
	ETag          string // "strong", "weak" or ""
	LastModified  string
	AcceptRanges  string
	Encoding      string
	Vary          string
	Body          string
	Parts         []part
}

type part struct {
	ContentType  string
	ContentRange string
	Body         string
}

func etagShape(v string) string {
	switch {
	case v == "":
		return ""
	case strings.HasPrefix(v, "W/\""):
		return "weak"
	case strings.HasPrefix(v, "\"") && strings.HasSuffix(v, "\""):
		return "strong"
	}
	return "malformed: " + v
}

func viewOf(t *testing.T, a answer) view {
	t.Helper()
	v := view{
		Status:        a.status,
		ContentType:   a.header.Get("Content-Type"),
		ContentLength: a.header.Get("Content-Length"),
		ContentRange:  a.header.Get("Content-Range"),
		ETag:          etagShape(a.header.Get("Etag")),
		LastModified:  a.header.Get("Last-Modified"),
		AcceptRanges:  a.header.Get("Accept-Ranges"),
		Encoding:      a.header.Get("Content-Encoding"),
		Vary:          a.header.Get("Vary"),
		Body:          string(a.body),
	}
	mt, params, err := mime.ParseMediaType(v.ContentType)
	if err == nil && mt == "multipart/byteranges" {
		v.ContentType = mt
		v.ContentLength = "" // counts the boundaries
		v.Body = ""
		mr := multipart.NewReader(bytes.NewReader(a.body), params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("multipart body: %v\n%q", err, a.body)
			}
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatalf("multipart part: %v", err)
			}
			v.Parts = append(v.Parts, part{p.Header.Get("Content-Type"), p.Header.Get("Content-Range"), string(b)})
		}
	}
	return v
}

// diffCase is one request sent to nginx and to Server. In header,
// {etag} is the ETag that server sent for the file on a plain GET, {lm}
// its Last-Modified, {older} and {newer} an hour either side of it.
type diffCase struct {
	name   string
	method string
	target string
	header []string
	// want is the status Server must answer with.
	want int
	// gzip sends the case to a Server with Precompressed: gzip.
	gzip bool
	// differs says why Server and nginx answer differently on purpose;
	// ignore names the view fields (cmp paths) that then are not compared.
	differs string
	ignore  []string
}

// TestConditionalAndRangeMatchNginx sends each case to nginx and to
// Server serving the same directory and compares what a client sees.
// Error answers carry each server's own page, so for a status of 300 and
// above only the status, Content-Range and Location-ish facts in the
// table are compared, not the body, its type or length.
func TestConditionalAndRangeMatchNginx(t *testing.T) {
	tr := makeTree(t)
	ngx := startNginx(t, tr.root)
	plain := serveOver(t, newServer(t, Options{Root: tr.root}))
	// Vary: Accept-Encoding is on every answer of a Server with
	// precompression, nginx's only where a .gz exists; the gzip cases use
	// this one.
	gz := serveOver(t, newServer(t, Options{Root: tr.root, Precompressed: []string{"gzip"}}))
	lm := fixtureTime.Format(http.TimeFormat)
	older := fixtureTime.Add(-time.Hour).Format(http.TimeFormat)
	newer := fixtureTime.Add(time.Hour).Format(http.TimeFormat)

	cases := []diffCase{
		{name: "plain GET", method: "GET", target: "/a.txt", want: 200},
		{name: "HEAD", method: "HEAD", target: "/a.txt", want: 200},
		{name: "index.html at /", method: "GET", target: "/", want: 200},
		{name: "index.html by name", method: "GET", target: "/index.html", want: 200},
		{name: "hidden file", method: "GET", target: "/.hidden.txt", want: 200},
		{name: "name with an encoded space", method: "GET", target: "/with%20space.txt", want: 200},
		{name: "If-None-Match match", method: "GET", target: "/a.txt", header: []string{"If-None-Match: {etag}"}, want: 304},
		{name: "If-None-Match match among others", method: "GET", target: "/a.txt", header: []string{`If-None-Match: "nope", {etag}`}, want: 304},
		{name: "If-None-Match weak form of the ETag", method: "GET", target: "/a.txt", header: []string{"If-None-Match: W/{etag}"}, want: 304},
		{name: "If-None-Match mismatch", method: "GET", target: "/a.txt", header: []string{`If-None-Match: "nope"`}, want: 200},
		{name: "If-None-Match star", method: "GET", target: "/a.txt", header: []string{"If-None-Match: *"}, want: 304},
		{name: "If-None-Match on HEAD", method: "HEAD", target: "/a.txt", header: []string{"If-None-Match: {etag}"}, want: 304},
		{name: "If-Modified-Since equal", method: "GET", target: "/a.txt", header: []string{"If-Modified-Since: {lm}"}, want: 304},
		{name: "If-Modified-Since older", method: "GET", target: "/a.txt", header: []string{"If-Modified-Since: {older}"}, want: 200},
		{
			name: "If-Modified-Since newer", method: "GET", target: "/a.txt", header: []string{"If-Modified-Since: {newer}"}, want: 304,
			differs: "nginx's if_modified_since defaults to exact (304 only for the very date); RFC 9110 13.1.3 and net/http answer 304 for any date at or after Last-Modified",
			ignore:  []string{"Status", "ContentType", "ContentLength", "AcceptRanges", "Body"},
		},
		{name: "If-None-Match mismatch wins over If-Modified-Since", method: "GET", target: "/a.txt", header: []string{`If-None-Match: "nope"`, "If-Modified-Since: {lm}"}, want: 200},
		{name: "If-Match match", method: "GET", target: "/a.txt", header: []string{"If-Match: {etag}"}, want: 200},
		{name: "If-Match mismatch", method: "GET", target: "/a.txt", header: []string{`If-Match: "nope"`}, want: 412, differs: validatorsOnError, ignore: []string{"ETag", "LastModified"}},
		{name: "If-Match star", method: "GET", target: "/a.txt", header: []string{"If-Match: *"}, want: 200},
		{name: "If-Unmodified-Since equal", method: "GET", target: "/a.txt", header: []string{"If-Unmodified-Since: {lm}"}, want: 200},
		{name: "If-Unmodified-Since older", method: "GET", target: "/a.txt", header: []string{"If-Unmodified-Since: {older}"}, want: 412, differs: validatorsOnError, ignore: []string{"ETag", "LastModified"}},
		{name: "Range bytes=0-9", method: "GET", target: "/a.txt", header: []string{"Range: bytes=0-9"}, want: 206},
		{name: "Range bytes=-5", method: "GET", target: "/a.txt", header: []string{"Range: bytes=-5"}, want: 206},
		{name: "Range bytes=5-", method: "GET", target: "/a.txt", header: []string{"Range: bytes=5-"}, want: 206},
		{name: "Range suffix longer than the file", method: "GET", target: "/a.txt", header: []string{"Range: bytes=-500"}, want: 206},
		{name: "Range end past the file", method: "GET", target: "/a.txt", header: []string{"Range: bytes=90-500"}, want: 206},
		{name: "Range on HEAD", method: "HEAD", target: "/a.txt", header: []string{"Range: bytes=0-9"}, want: 206},
		{name: "multi-range", method: "GET", target: "/a.txt", header: []string{"Range: bytes=0-9,20-29,-5"}, want: 206},
		{name: "multi-range with one unsatisfiable", method: "GET", target: "/a.txt", header: []string{"Range: bytes=0-9,200-300"}, want: 206},
		{
			name: "multi-range adding up to more than the file", method: "GET", target: "/a.txt", header: []string{"Range: bytes=0-99,0-99"}, want: 200,
			differs: "nginx sends the overlapping parts; like net/http, ranges that add up to more than the file get the whole file, which bounds what one request can cost",
			ignore:  []string{"Status", "ContentType", "ContentLength", "Body", "Parts"},
		},
		{name: "unsatisfiable", method: "GET", target: "/a.txt", header: []string{"Range: bytes=100-"}, want: 416, differs: validatorsOnError, ignore: []string{"ETag", "LastModified"}},
		{name: "unsatisfiable suffix of 0", method: "GET", target: "/a.txt", header: []string{"Range: bytes=-0"}, want: 416, differs: validatorsOnError, ignore: []string{"ETag", "LastModified"}},
		{name: "malformed range", method: "GET", target: "/a.txt", header: []string{"Range: bytes=9-0"}, want: 416, differs: validatorsOnError, ignore: []string{"ETag", "LastModified"}},
		{name: "malformed range, not a number", method: "GET", target: "/a.txt", header: []string{"Range: bytes=a-b"}, want: 416, differs: validatorsOnError, ignore: []string{"ETag", "LastModified"}},
		{name: "Range in another unit is ignored", method: "GET", target: "/a.txt", header: []string{"Range: items=0-9"}, want: 200},
		{name: "If-Range with the ETag", method: "GET", target: "/a.txt", header: []string{"Range: bytes=0-9", "If-Range: {etag}"}, want: 206},
		{name: "If-Range with another ETag", method: "GET", target: "/a.txt", header: []string{"Range: bytes=0-9", `If-Range: "nope"`}, want: 200},
		{name: "If-Range with Last-Modified", method: "GET", target: "/a.txt", header: []string{"Range: bytes=0-9", "If-Range: {lm}"}, want: 206},
		{name: "If-Range with another date", method: "GET", target: "/a.txt", header: []string{"Range: bytes=0-9", "If-Range: {older}"}, want: 200},
		{name: "directory with trailing slash", method: "GET", target: "/dir/", want: 200},
		{
			name: "directory without trailing slash", method: "GET", target: "/dir", want: 308,
			differs: "308 (method kept, Caddy's choice) with a relative Location ./dir/, which survives a stripped prefix; nginx sends 301 with an absolute one",
			ignore:  append([]string{"Status"}, errorPage...),
		},
		{
			name: "directory without index, with slash", method: "GET", target: "/empty/", want: 404,
			differs: "no listing and no hint that the directory exists: 404; nginx says 403",
			ignore:  append([]string{"Status"}, errorPage...),
		},
		{
			name: "directory without index, without slash", method: "GET", target: "/empty", want: 404,
			differs: "a directory with nothing to serve is not redirected: 404; nginx redirects (301) to the slash form, which then is 403",
			ignore:  append([]string{"Status"}, errorPage...),
		},
		{name: "missing file", method: "GET", target: "/missing.txt", want: 404, ignore: errorPage},
		{name: "file with a trailing slash", method: "GET", target: "/a.txt/", want: 404, ignore: errorPage},
		{
			name: "method not allowed", method: "POST", target: "/a.txt", want: 405,
			ignore: errorPage,
		},
		{
			name: "no extension", method: "GET", target: "/noext", want: 200,
			differs: "the type of a file without a known extension is sniffed from its first 512 bytes (net/http's rule); nginx sends default_type",
			ignore:  []string{"ContentType"},
		},
		{
			name: "gzip sibling", gzip: true, method: "GET", target: "/comp.txt", header: []string{"Accept-Encoding: gzip"}, want: 200,
			differs: noRangesOnGzipStatic, ignore: []string{"AcceptRanges"},
		},
		{
			name: "gzip sibling, HEAD", gzip: true, method: "HEAD", target: "/comp.txt", header: []string{"Accept-Encoding: gzip"}, want: 200,
			differs: noRangesOnGzipStatic, ignore: []string{"AcceptRanges"},
		},
		{name: "gzip sibling refused by q=0", gzip: true, method: "GET", target: "/comp.txt", header: []string{"Accept-Encoding: gzip;q=0"}, want: 200},
		{name: "gzip sibling not asked for", gzip: true, method: "GET", target: "/comp.txt", want: 200},
		{
			name: "gzip sibling, x-gzip", gzip: true, method: "GET", target: "/comp.txt", header: []string{"Accept-Encoding: x-gzip"}, want: 200,
			differs: "RFC 9110 8.4.1.3: x-gzip is gzip; nginx's gzip_static knows only gzip and sends the plain file",
			ignore:  []string{"ContentLength", "AcceptRanges", "Encoding", "Body"},
		},
		{
			name: "gzip sibling range", gzip: true, method: "GET", target: "/comp.txt", header: []string{"Accept-Encoding: gzip", "Range: bytes=0-9"}, want: 206,
			differs: noRangesOnGzipStatic, ignore: []string{"Status", "ContentLength", "ContentRange", "AcceptRanges", "Body"},
		},
		{name: "gzip sibling If-None-Match", gzip: true, method: "GET", target: "/comp.txt", header: []string{"Accept-Encoding: gzip", "If-None-Match: {etag}"}, want: 304},
		{name: "gzip sibling, plain ETag does not match", gzip: true, method: "GET", target: "/comp.txt", header: []string{"Accept-Encoding: gzip", "If-None-Match: {plainetag}"}, want: 200, differs: noRangesOnGzipStatic, ignore: []string{"AcceptRanges"}},
	}
	etags := map[string]map[string]string{} // server → path → ETag of a plain GET, per Accept-Encoding
	validator := func(addr, target string, header []string) string {
		ae := ""
		for _, h := range header {
			if v, ok := strings.CutPrefix(h, "Accept-Encoding: "); ok {
				ae = "Accept-Encoding: " + v
			}
		}
		key := target + "|" + ae
		if etags[addr] == nil {
			etags[addr] = map[string]string{}
		}
		if e, ok := etags[addr][key]; ok {
			return e
		}
		var hs []string
		if ae != "" {
			hs = append(hs, ae)
		}
		e := rawDo(t, addr, "GET", target, hs...).header.Get("Etag")
		etags[addr][key] = e
		return e
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			send := func(addr string) answer {
				hs := make([]string, len(c.header))
				for i, h := range c.header {
					if strings.Contains(h, "{plainetag}") {
						h = strings.ReplaceAll(h, "{plainetag}", validator(addr, c.target, nil))
					}
					if strings.Contains(h, "{etag}") {
						h = strings.ReplaceAll(h, "{etag}", validator(addr, c.target, c.header))
					}
					h = strings.NewReplacer("{lm}", lm, "{older}", older, "{newer}", newer).Replace(h)
					hs[i] = h
				}
				return rawDo(t, addr, c.method, c.target, hs...)
			}
			ours := plain
			if c.gzip {
				ours = gz
			}
			ourAnswer := send(ours)
			got, want := viewOf(t, ourAnswer), viewOf(t, send(ngx))
			if got.Status != c.want {
				t.Errorf("status %d, want %d\n%v\n%s", got.Status, c.want, ourAnswer.header, ourAnswer.body)
			}
			ignored := map[string]bool{}
			for _, f := range c.ignore {
				ignored[f] = true
			}
			if got.Status == http.StatusPartialContent {
				// nginx leaves Accept-Ranges off a 206; RFC 9110 14.3
				// lets a server send it on any answer.
				ignored["AcceptRanges"] = true
			}
			if got.Status >= 300 {
				for _, f := range errorPage {
					ignored[f] = true
				}
			}
			opt := cmp.FilterPath(func(p cmp.Path) bool {
				return len(p) > 1 && ignored[strings.TrimPrefix(p[1].String(), ".")]
			}, cmp.Ignore())
			if d := cmp.Diff(want, got, opt); d != "" {
				t.Errorf("Server and nginx differ (-nginx +Server):\n%s", d)
			}
			if c.differs != "" {
				t.Logf("differs on purpose: %s\nnginx: %+v\nours: %+v", c.differs, want, got)
			}
		})
	}
}

const (
	validatorsOnError    = "the ETag and Last-Modified of the file stay on a 412 or 416, which tells the client what is current; nginx drops them"
	noRangesOnGzipStatic = "ranges of a precompressed sibling are served from its bytes, as Caddy does (the sibling is the selected representation, with its own ETag); nginx's gzip_static answers 200 with the whole .gz and no Accept-Ranges"
)

// errorPage names what each server fills in its own way on an error
// answer: the page's type, length and text.
var errorPage = []string{"ContentType", "ContentLength", "Body"}
