package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse/gatehouse/internal/config"
)

// strictRange reports whether rng is a byte ranges-specifier of RFC 9110
// §14.1.2, whose list may hold empty elements (§5.6.1).
func strictRange(rng string) bool {
	if len(rng) < 6 || !strings.EqualFold(rng[:6], "bytes=") {
		return false
	}
	n := 0
	for _, spec := range strings.Split(rng[6:], ",") {
		if spec = strings.Trim(spec, " 	"); spec == "" {
			continue
		}
		if !rangeSpec.MatchString(spec) {
			return false
		}
		n++
	}
	return n > 0
}

// aroundSeparators is white space beside a range's "-" or ",", which
// nginx and gatehouse skip.
var aroundSeparators = regexp.MustCompile(`[ \t]*([-,])[ \t]*`)

var rangeSpec = regexp.MustCompile(`^([0-9]+-[0-9]*|-[0-9]+)$`)

// satisfiable is RFC 9110 §14.1.1's rule for a valid specifier: some
// int-range starts before the end, or some suffix-range is not empty.
func satisfiable(rng string, size int) bool {
	for _, spec := range strings.Split(rng[6:], ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue
		}
		first, last, _ := strings.Cut(spec, "-")
		if first == "" {
			if n, err := strconv.Atoi(last); err != nil || n > 0 {
				return true
			}
			continue
		}
		if n, err := strconv.Atoi(first); err != nil || n < size {
			return true
		}
	}
	return false
}

// A static file's answer to a Range, through the gateway on a plain
// connection (sendfile for whole files and single ranges), matches
// net/http's ServeContent for the same bytes and header: status, and the
// body where both serve one.
func FuzzStaticRangeMatchesServeContent(f *testing.F) {
	for _, seed := range []struct {
		size int
		rng  string
	}{{0, ""}, {1, "bytes=0-0"}, {5000, "bytes=100-"}, {70000, "bytes=-500"}, {1 << 20, "bytes=0-1048575"}, {3000, "bytes=10-5"}, {2000, "bytes=5000-"}} {
		f.Add(seed.size, seed.rng)
	}
	root := f.TempDir()
	app := newEdgeApp(f)
	d := directWith(f, app.addr, wireH1.h1Options(), func(a *config.App) {
		a.Routes = []config.Route{{Match: "/", Static: &config.Static{Root: root}}}
	})
	c := &http.Client{Timeout: 10 * time.Second}
	n := 0
	f.Fuzz(func(t *testing.T, size int, rng string) {
		if size < 0 || size > 2<<20 || !httpguts.ValidHeaderFieldValue(rng) {
			return
		}
		n++
		name := fmt.Sprintf("f%d.bin", n)
		body := bytes.Repeat([]byte("0123456789"), size/10+1)[:size]
		if err := os.WriteFile(filepath.Join(root, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
		mod := time.Now()
		req, err := http.NewRequest("GET", d.url+"/"+name, nil)
		if err != nil {
			return
		}
		if rng != "" {
			req.Header["Range"] = []string{rng}
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET with Range %q: %v", rng, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()

		refRange := rng
		if len(rng) < 6 {
			// too short for a unit
		} else if squeezed := rng[:6] + aroundSeparators.ReplaceAllString(rng[6:], "$1"); !strictRange(rng) && strictRange(squeezed) {
			refRange = squeezed // spaces inside a range are taken, as nginx takes them
		}
		if rng != "" && !strictRange(refRange) {
			// Not a ranges-specifier of RFC 9110 §14.1.2 (net/http takes
			// some, "+0-0"): gatehouse may ignore it or refuse it, and
			// never serves part of the file for it.
			if resp.StatusCode != 200 && resp.StatusCode != 416 {
				t.Fatalf("invalid Range %q: %d, want 200 or 416", rng, resp.StatusCode)
			}
			return
		}
		ref := httptest.NewRecorder()
		refReq := httptest.NewRequest("GET", "/"+name, nil)
		refReq.Header = req.Header.Clone()
		if rng != "" {
			// Range units are case-insensitive (RFC 9110 §14.1);
			// net/http knows only "bytes".
			refReq.Header["Range"] = []string{"bytes=" + refRange[6:]}
		}
		http.ServeContent(ref, refReq, name, mod, bytes.NewReader(body))
		if resp.StatusCode == 416 && ref.Code != 416 && rng != "" && !satisfiable(refRange, size) {
			return // RFC 9110 §14.1.1 ("bytes=-0"); net/http serves it
		}
		if resp.StatusCode != ref.Code && !(resp.StatusCode == 200 && ref.Code == 416) {
			t.Fatalf("Range %q on %d bytes: gatehouse %d, net/http %d", rng, size, resp.StatusCode, ref.Code)
		}
		if resp.StatusCode == ref.Code && (ref.Code == 200 || ref.Code == 206 && resp.Header.Get("Content-Range") != "" && !bytes.HasPrefix(ref.Body.Bytes(), []byte("--"))) {
			if !bytes.Equal(got, ref.Body.Bytes()) {
				t.Fatalf("Range %q on %d bytes: gatehouse sent %d bytes, net/http %d", rng, size, len(got), ref.Body.Len())
			}
		}
	})
}
