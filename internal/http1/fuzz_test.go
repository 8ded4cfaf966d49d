package http1

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Differential fuzz tests: the parsers here against net/http, the
// reference. A head ParseRequestHead or ParsePlainResponse accepts must
// mean to net/http exactly what it means here, down to where the body ends
// and the next message starts; they may refuse more than net/http, never
// less.

// requestSeeds are the seed corpus of FuzzParseRequestHead. Those with
// file set are also committed under testdata/fuzz/FuzzParseRequestHead
// under that name.
var requestSeeds = []struct{ file, raw string }{
	{"", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{"", "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"},
	{"post_pipelined", "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nshort"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{"cl_te", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
	{"cl_differing", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 000000000000000000003\r\n\r\nabc"},
	{"te_xchunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  chunked\t\r\n\r\n0\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
	{"te_vtab", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n"},
	{"te_two_lines", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n"},
	{"te_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc"},
	{"bare_lf", "GET / HTTP/1.1\nHost: h\n\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\nX: y\r\r\n\r\n"},
	{"obs_fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\nY: \x7f\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\nX: \xff\xfe obs-text\r\n\r\n"},
	{"absolute_form", "GET http://example.com/p?q HTTP/1.1\r\nHost: other\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n"},
	{"", "GET / HTTP/1.0\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
	{"underscores", "GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nx_y: z\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"},
	{"", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
	{"", "GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n"},
	{"", "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-foo, ,close\r\nConnection: te\r\nX-Foo: 1\r\n\r\n"},
	{"", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + strings.Repeat("a", 5000) + "\r\n\r\n"},
	{"", "M-SEARCH * HTTP/1.1\r\nHost: 239.255.255.250:1900\r\n\r\n"},
	{"", "G\x01ET / HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"pri_preface", PrefaceHead + "SM\r\n\r\n"},
	{"", "GET / HTTP/1.2\r\nHost: h\r\n\r\n"},
	{"", "GET / HTTP/2\r\nHost: h\r\n\r\n"},
	{"", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"},
	{"", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n"},
	{"", "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"", "get / http/1.1\r\nhost: h\r\ncontent-length: 1\r\n\r\nx"},
	{"", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"", "GET / HTTP/1.1\r\nHost: h\r\n: empty name\r\n\r\n"},
}

// responseSeeds are the seed corpus of FuzzParsePlainResponse, as
// requestSeeds.
var responseSeeds = []struct{ file, raw string }{
	{"plain_pipelined", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{"", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"},
	{"", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"},
	{"", "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"},
	{"", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"},
	{"http10", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	{"bare_lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
	{"", "HTTP/1.1 200 OK\r\nContent-Length: 2\rX: y\r\n\r\nok"},
	{"", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\r\n\r\nok"},
	{"", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
	{"cl_differing", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"},
	{"cl_te", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{"", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 1\r\n\r\na"},
	{"obs_fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 1\r\n\r\na"},
	{"", "HTTP/1.1 099 Odd\r\nContent-Length: 1\r\n\r\na"},
	{"", "HTTP/1.1 600 Odd\r\nContent-Length: 1\r\n\r\na"},
	{"", "HTTP/1.1 599 Odd\r\nContent-Length: 1\r\n\r\na"},
	{"no_reason", "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\na"},
	{"", "HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\na"},
	{"", "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\na"},
	{"", "HTTP/1.1  200 OK\r\nContent-Length: 1\r\n\r\na"},
	{"", "HTTP/1.1 +20 OK\r\nContent-Length: 1\r\n\r\na"},
	{"", "HTTP/1.1 200 O\x01K\xff\r\nContent-Length: 1\r\n\r\na"},
	{"lowercase", "HTTP/1.1 201 Created\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\ncontent-length: 1\r\nx-y:  spaced  \r\n\r\nx"},
	{"", "HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\n\r\n"},
	{"", "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n"},
	{"", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"", "HTTP/1.1 503 Service Unavailable\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nno"},
	{"", "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok"},
	{"", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\nok"},
	{"", "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\nok"},
	{"", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"},
	{"", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("b", 5000) + "\r\nContent-Length: 2\r\n\r\nok"},
}

func FuzzParseRequestHead(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s.raw))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRequest(t, data)
	})
}

func FuzzParsePlainResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s.raw))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkResponse(t, data)
	})
}

// TestFuzzRegressions holds inputs on which the parsers disagree with
// net/http (see the reasons); each fails until the parser is fixed.
func TestFuzzRegressions(t *testing.T) {
	tests := []struct {
		name, why string
		request   bool
		raw       string
	}{
		{
			"request: Kelvin sign in chunked",
			`strings.EqualFold folds U+212A KELVIN SIGN to "k": ParseRequestHead takes "chun\u212Aed" for chunked, net/http (ASCII fold) answers 501 unsupported transfer encoding`,
			true,
			"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chun\u212Aed\r\n\r\n0\r\n\r\n",
		},
		{
			"request: Kelvin sign in keep-alive",
			`an HTTP/1.0 "Connection: \u212Aeep-alive" keeps the connection open here; net/http closes it`,
			true,
			"GET / HTTP/1.0\r\nConnection: \u212Aeep-alive\r\n\r\n",
		},
		{
			"request: long s in close",
			`"Connection: clo\u017Fe" (U+017F LATIN SMALL LETTER LONG S folds to "s") closes here; net/http keeps the connection`,
			true,
			"GET / HTTP/1.1\r\nHost: h\r\nConnection: clo\u017Fe\r\n\r\n",
		},
		{
			"response: long s in close",
			`HasToken folds Unicode: "Connection: clo\u017Fe" closes and drops the Connection field here; net/http keeps both`,
			false,
			"HTTP/1.1 200 OK\r\nConnection: clo\u017Fe\r\nContent-Length: 2\r\n\r\nok",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Log(tt.why)
			if tt.request {
				checkRequest(t, []byte(tt.raw))
			} else {
				checkResponse(t, []byte(tt.raw))
			}
		})
	}
}

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "write the named seeds to testdata/fuzz")

// TestFuzzSeedFiles checks the committed corpus: each file is in the go
// fuzz format and holds one of the seeds, so that a seed edited here and
// its file do not drift apart. (go test runs the files themselves.)
func TestFuzzSeedFiles(t *testing.T) {
	for _, c := range []struct {
		fuzzer string
		seeds  []struct{ file, raw string }
	}{
		{"FuzzParseRequestHead", requestSeeds},
		{"FuzzParsePlainResponse", responseSeeds},
		{"FuzzChunkedBody", chunkedSeeds},
	} {
		named := 0
		for _, s := range c.seeds {
			if s.file == "" {
				continue
			}
			named++
			path := filepath.Join("testdata", "fuzz", c.fuzzer, s.file)
			if *updateSeeds {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s.raw), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Error(err)
				continue
			}
			if got := parseCorpusFile(t, b); got != s.raw {
				t.Errorf("%s/%s holds %q, want %q", c.fuzzer, s.file, got, s.raw)
			}
		}
		if named == 0 {
			t.Errorf("%s: no committed seeds", c.fuzzer)
		}
	}
}

func parseCorpusFile(t *testing.T, b []byte) string {
	t.Helper()
	header, rest, ok := strings.Cut(string(b), "\n")
	if !ok || header != "go test fuzz v1" {
		t.Errorf("not a go fuzz corpus file: %q", b)
		return ""
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(rest), "[]byte(")
	v, ok2 := strings.CutSuffix(v, ")")
	if !ok || !ok2 {
		t.Errorf("not one []byte value: %q", rest)
		return ""
	}
	s, err := strconv.Unquote(v)
	if err != nil {
		t.Errorf("bad quoting in %q: %v", rest, err)
	}
	return s
}

// warmRequest is parsed into a RequestHead before the input, so that the
// reuse of its Header and value store is exercised too.
const warmRequest = "POST /warm HTTP/1.1\r\nHost: warm\r\nA: 1\r\nB: 2\r\nA: 3\r\nContent-Length: 7\r\nConnection: close, x-warm\r\nExpect: 100-continue\r\nX_U: 1\r\n\r\n"

func checkRequest(t *testing.T, data []byte) {
	t.Helper()
	n := HeadEnd(data)
	if n <= 0 {
		return
	}
	if n > len(data) || string(data[n-4:n]) != "\r\n\r\n" {
		t.Fatalf("HeadEnd = %d for %q", n, data)
	}
	head := data[:n]
	var errs [2]error
	for i, drop := range []bool{false, true} {
		var fresh RequestHead
		fresh.DropUnderscores = drop
		errs[i] = ParseRequestHead(head, &fresh)
		if err := errs[i]; err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest && e.Status != http.StatusHTTPVersionNotSupported {
				t.Fatalf("ParseRequestHead(%q) = %#v, want an *Error with status 400 or 505", head, err)
			}
			continue
		}
		reused := RequestHead{DropUnderscores: drop}
		if err := ParseRequestHead([]byte(warmRequest), &reused); err != nil {
			t.Fatal(err)
		}
		if err := ParseRequestHead(head, &reused); err != nil {
			t.Fatalf("fresh RequestHead accepts %q, a reused one: %v", head, err)
		}
		if diff := cmp.Diff(&fresh, &reused, cmpopts.IgnoreUnexported(RequestHead{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("reused RequestHead differs from a fresh one (-fresh +reused):\n%s", diff)
		}
		compareRequest(t, data, n, &fresh)
	}
	if (errs[0] == nil) != (errs[1] == nil) {
		t.Fatalf("DropUnderscores changes acceptance of %q: %v, %v", head, errs[0], errs[1])
	}
}

// compareRequest compares r, which ParseRequestHead read from data[:n],
// with what http.ReadRequest reads from data.
func compareRequest(t *testing.T, data []byte, n int, r *RequestHead) {
	t.Helper()
	head := data[:n]
	br := bufio.NewReader(bytes.NewReader(data))
	req, err := http.ReadRequest(br)
	substituted := false
	if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
		// net/http refuses the target as a URL. What a target may be is
		// the caller's to judge (package front parses it); ParseRequestHead
		// only keeps out white space, controls and '#'. Check the rest
		// with an origin-form target in its place.
		alt := append([]byte(r.Method+" /"), data[len(r.Method)+1+len(r.Target):]...)
		n += len(alt) - len(data)
		data = alt
		br = bufio.NewReader(bytes.NewReader(data))
		req, err = http.ReadRequest(br)
		substituted = true
	}
	if err != nil {
		t.Fatalf("ParseRequestHead accepts what http.ReadRequest refuses (%v):\n%q", err, head)
	}
	type view struct {
		Method, Target, Host    string
		Minor                   int
		Header                  http.Header
		ContentLength           int64
		Chunked, Close, Upgrade bool
		Dropped                 int
	}
	got := view{r.Method, r.Target, r.Host, r.Minor, r.Header.Clone(), r.ContentLength, r.Chunked, r.Close, r.Upgrade, r.Dropped}
	// net/http keeps Transfer-Encoding out of the map (in TransferEncoding).
	delete(got.Header, "Transfer-Encoding")

	want := view{Method: req.Method, Target: req.RequestURI, Host: req.Host, Minor: req.ProtoMinor, Header: req.Header.Clone(), Close: req.Close}
	if req.ProtoMajor != 1 {
		t.Fatalf("net/http reads HTTP/%d.%d, ParseRequestHead HTTP/1.%d: %q", req.ProtoMajor, req.ProtoMinor, r.Minor, head)
	}
	if substituted {
		want.Target = r.Target
	}
	if !substituted && !strings.HasPrefix(r.Target, "/") {
		// Absolute or authority form: net/http takes the host from the
		// target, ParseRequestHead leaves that to its caller.
		want.Host = r.Host
	}
	delete(want.Header, "Host")
	// net/http adds Cache-Control for "Pragma: no-cache" (HTTP/1.0
	// compatibility); the parser passes the head as sent.
	if _, ok := r.Header["Cache-Control"]; !ok {
		if p := req.Header["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
			delete(want.Header, "Cache-Control")
		}
	}
	for k, vs := range want.Header {
		if r.DropUnderscores && strings.IndexByte(k, '_') >= 0 {
			want.Dropped += len(vs)
			delete(want.Header, k)
		}
	}
	want.Upgrade = hasTokenASCII(req.Header["Connection"], "upgrade")
	switch {
	case len(req.TransferEncoding) == 0:
		want.ContentLength = req.ContentLength
		if want.ContentLength == 0 && r.ContentLength == -1 {
			want.ContentLength = -1 // net/http's 0 for "none declared"
		}
	case len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked" && req.ContentLength == -1:
		want.ContentLength, want.Chunked = -1, true
	default:
		t.Fatalf("net/http reads Transfer-Encoding %q, ContentLength %d", req.TransferEncoding, req.ContentLength)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("ParseRequestHead differs from http.ReadRequest (-net/http +ours) on\n%q:\n%s", head, diff)
	}
	if r.Chunked {
		return
	}
	end := n + int(max(r.ContentLength, 0))
	end = min(end, len(data))
	body, _ := io.ReadAll(req.Body)
	rest, _ := io.ReadAll(br)
	if !bytes.Equal(body, data[n:end]) || !bytes.Equal(rest, data[end:]) {
		t.Fatalf("framing differs on %q: net/http reads body %q then %q, ours body %q then %q",
			data, body, rest, data[n:end], data[end:])
	}
}

// hasTokenASCII is httpguts.HeaderValuesContainsToken: a comma-separated
// token, compared ASCII case-insensitively.
func hasTokenASCII(vals []string, token string) bool {
	for _, v := range vals {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.Trim(tok, " \t")
			if len(tok) != len(token) {
				continue
			}
			eq := true
			for i := 0; i < len(tok); i++ {
				if lowerASCII(tok[i]) != lowerASCII(token[i]) {
					eq = false
					break
				}
			}
			if eq {
				return true
			}
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

const warmResponse = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nA: 3\r\nConnection: close\r\nContent-Length: 9\r\n\r\n"

func checkResponse(t *testing.T, data []byte) {
	t.Helper()
	var h ResponseHead
	n := h.ParsePlainResponse(data)
	if n < 0 || n > len(data) {
		t.Fatalf("ParsePlainResponse(%q) = %d", data, n)
	}
	if n == 0 {
		return
	}
	if n != HeadEnd(data) {
		t.Fatalf("ParsePlainResponse = %d, HeadEnd = %d on %q", n, HeadEnd(data), data)
	}
	if m := new(ResponseHead).ParsePlainResponse(data[:n-1]); m != 0 {
		t.Fatalf("a head cut short parsed as %d bytes: %q", m, data[:n-1])
	}
	reused := &ResponseHead{}
	if reused.ParsePlainResponse([]byte(warmResponse)) == 0 {
		t.Fatal("warm-up response not plain")
	}
	if m := reused.ParsePlainResponse(data); m != n {
		t.Fatalf("a reused ResponseHead parses %d bytes, a fresh one %d: %q", m, n, data)
	}
	if diff := cmp.Diff(&h, reused, cmpopts.IgnoreUnexported(ResponseHead{}), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("reused ResponseHead differs from a fresh one (-fresh +reused):\n%s", diff)
	}
	if BodyForbidden(http.MethodGet, h.StatusCode) {
		t.Fatalf("plain response with status %d, which has no body", h.StatusCode)
	}

	br := bufio.NewReader(bytes.NewReader(data))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("ParsePlainResponse accepts what http.ReadResponse refuses (%v):\n%q", err, data[:n])
	}
	type view struct {
		Status        string
		StatusCode    int
		Proto         string
		Header        http.Header
		ContentLength int64
		Close         bool
	}
	got := view{h.Status, h.StatusCode, "HTTP/1.1", h.Header.Clone(), h.ContentLength, h.Close}
	want := view{resp.Status, resp.StatusCode, resp.Proto, resp.Header.Clone(), resp.ContentLength, resp.Close}
	if _, ok := h.Header["Cache-Control"]; !ok {
		if p := resp.Header["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
			delete(want.Header, "Cache-Control") // added by net/http
		}
	}
	if len(resp.TransferEncoding) > 0 {
		t.Fatalf("net/http reads Transfer-Encoding %q on a plain response %q", resp.TransferEncoding, data[:n])
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("ParsePlainResponse differs from http.ReadResponse (-net/http +ours) on\n%q:\n%s", data[:n], diff)
	}
	end := min(n+int(min(h.ContentLength, int64(len(data)))), len(data))
	body, _ := io.ReadAll(resp.Body)
	rest, _ := io.ReadAll(br)
	if !bytes.Equal(body, data[n:end]) || !bytes.Equal(rest, data[end:]) {
		t.Fatalf("framing differs on %q: net/http reads body %q then %q, ours body %q then %q",
			data, body, rest, data[n:end], data[end:])
	}
}
