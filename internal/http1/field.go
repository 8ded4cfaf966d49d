package gateway

import (
	"net/http"
	"net/textproto"
	"strings"
)

// The rules of a head's lines, shared by the front's request parser
// (parse.go) and the reader of the app's answers (response.go). Each is as
// strict as net/http, so that a head either means the same to both
// parsers as to net/http, or is left to net/http.

// headEnd finds the end of a head: the length up to and including the
// first CRLF CRLF; 0 when it has not arrived yet; -1 when a line ends in a
// bare LF.
func headEnd(b []byte) int {
	for i, c := range b {
		if c != '\n' {
			continue
		}
		if i == 0 || b[i-1] != '\r' {
			return -1
		}
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1
		}
	}
	return 0
}

// fieldLines walks the header lines of a head.
type fieldLines struct{ rest string }

// next returns the next field, its name canonical; ok is false at the end
// of the head, and bad is true for a line net/http rejects (an obs-folded
// line among them, which starts with a space).
func (f *fieldLines) next() (k, v string, ok, bad bool) {
	var line string
	line, f.rest, _ = strings.Cut(f.rest, "\r\n")
	if line == "" {
		return "", "", false, false
	}
	k, v, found := strings.Cut(line, ":")
	v = trimOWS(v)
	if !found || !validToken(k) || !validValue(v) {
		return "", "", false, true
	}
	return canonicalKey(k), v, true, false
}

// addField adds a field to h. A first value's slice is cut from vals, the
// parser's reused store, which addField returns.
func addField(h http.Header, vals []string, k, v string) []string {
	if vs, ok := h[k]; ok {
		h[k] = append(vs, v)
		return vals
	}
	vals = append(vals, v)
	n := len(vals)
	h[k] = vals[n-1 : n : n]
	return vals
}

// trimOWS trims the optional white space around a header value: spaces
// and tabs only. textproto.TrimString would also take a bare CR, which
// net/http rejects: a value must mean the same here as there.
func trimOWS(v string) string { return strings.Trim(v, " \t") }

// parseLength parses a Content-Length value: digits only, as RFC 9110
// says, and no more than fit an int64.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey without its allocation
// for the keys clients send already in canonical form.
func canonicalKey(k string) string {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(k)
		}
		upper = c == '-'
	}
	return k
}

// tokenChars are the bytes allowed in a method or header name (RFC 9110
// tchar).
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// validValue: no control characters other than tab (obs-text is allowed,
// as net/http allows it).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token.
func hasToken(v, token string) bool {
	for tok := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(textproto.TrimString(tok), token) {
			return true
		}
	}
	return false
}
