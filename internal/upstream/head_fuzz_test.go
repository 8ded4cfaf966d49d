package upstream

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/http1"
)

// A request's head as appendHead writes it is read back by net/http's
// parser as the request it was: method, target, Host, a header field
// (its value kept on one line), and the body's framing.
func FuzzAppendHeadReadsBackInNetHTTP(f *testing.F) {
	f.Add(uint8(0), "/", "app.example", "X-Test", "value", int64(0), false)
	f.Add(uint8(1), "/upload?x=1", "127.0.0.1:8080", "Cookie", "a=b; c=d", int64(12), false)
	f.Add(uint8(2), "/stream", "h", "X-Split", "one\r\ntwo", int64(-1), true)
	f.Add(uint8(3), "*", "h", "Accept", " padded\t", int64(0), false)
	methods := []string{"GET", "POST", "PUT", "OPTIONS", "PATCH", "DELETE", "HEAD"}
	f.Fuzz(func(t *testing.T, m uint8, target, host, key, value string, length int64, chunked bool) {
		method := methods[int(m)%len(methods)]
		if !plainText(target) || target != "*" && !strings.HasPrefix(target, "/") || !plainText(host) || !http1.ValidToken(key) || skipHeaders[http.CanonicalHeaderKey(key)] ||
			!fieldValue(value) {
			t.Skip()
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			t.Skip() // the front answers such a target 400
		}
		key = http.CanonicalHeaderKey(key)
		req := &http.Request{Method: method, Host: host, URL: &url.URL{Path: "/"}, Header: http.Header{key: {value}}}
		var body string
		switch {
		case chunked:
			req.Body, req.ContentLength = bodyOf("abc"), -1
		case length > 0:
			length %= 1 << 10
			body = strings.Repeat("b", int(length))
			req.Body, req.ContentLength = bodyOf(body), length
		}
		head, hasBody, isChunked := appendHead(nil, req, target)
		if hasBody != (req.Body != nil) || isChunked != chunked {
			t.Fatalf("appendHead says body %v, chunked %v; the request has body %v, chunked %v", hasBody, isChunked, req.Body != nil, chunked)
		}
		wire := string(head)
		if chunked {
			wire += "3\r\nabc\r\n0\r\n\r\n"
		} else {
			wire += body
		}
		got, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire)))
		if err != nil {
			t.Fatalf("net/http cannot read %q: %v", head, err)
		}
		wantValue := strings.Trim(http1.Clean(value), " \t")
		switch {
		case got.Method != method, got.RequestURI != target, got.Host != host:
			t.Errorf("read back %s %s Host %q; wrote %s %s Host %q", got.Method, got.RequestURI, got.Host, method, target, host)
		case key != "Content-Length" && key != "Transfer-Encoding" && got.Header.Get(key) != wantValue:
			t.Errorf("field %s read back as %q; wrote %q", key, got.Header.Get(key), value)
		case chunked && (len(got.TransferEncoding) != 1 || got.TransferEncoding[0] != "chunked"):
			t.Errorf("a chunked body read back framed as %v", got.TransferEncoding)
		case !chunked && got.ContentLength != int64(len(body)) && !(len(body) == 0 && got.ContentLength == 0):
			t.Errorf("a body of %d bytes read back with Content-Length %d", len(body), got.ContentLength)
		}
		want := body
		if chunked {
			want = "abc"
		}
		if b, _ := readAll(got); b != want {
			t.Errorf("body read back %q, want %q", b, want)
		}
	})
}

// plainText: printable ASCII without spaces, as a request target (in
// origin form, or *) or Host the gateway sends has been checked to be.
func plainText(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// fieldValue: no control character but HTAB, as in a field the client
// sent (parsed here) or the gateway set, or a CR or LF, which Clean makes
// a space.
func fieldValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < ' ' && c != '\t' && c != '\r' && c != '\n' || c == 0x7f {
			return false
		}
	}
	return true
}

func bodyOf(s string) *bodyReadCloser { return &bodyReadCloser{Reader: strings.NewReader(s)} }

type bodyReadCloser struct{ *strings.Reader }

func (bodyReadCloser) Close() error { return nil }

func readAll(r *http.Request) (string, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.String(), err
}
