package http1

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// The rules of a head's lines, shared by the request parser and the
// response reader. Each is at least as strict as net/http, so that a head
// either means the same here as to net/http, or is refused.

// HeadEnd finds the end of a head: the length up to and including the
// first CRLF CRLF; 0 when it has not arrived yet; -1 when a line ends in a
// bare LF.
func HeadEnd(b []byte) int { return HeadEndFrom(b, 0) }

// HeadEndFrom is HeadEnd for a head whose bytes before from were already
// looked at (and held no end and no bare LF): it scans from there, looking
// back as far as a line end needs.
func HeadEndFrom(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
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

// FieldLines walks the header lines of a head (without its final empty
// line).
type FieldLines struct{ rest string }

// NewFieldLines walks s, the lines after the start line.
func NewFieldLines(s string) FieldLines { return FieldLines{s} }

// Next returns the next field, its name canonical; ok is false at the end
// of the head, and bad is true for a line net/http rejects (an obs-folded
// line among them, which starts with a space).
func (f *FieldLines) Next() (k, v string, ok, bad bool) {
	var line string
	line, f.rest, _ = strings.Cut(f.rest, "\r\n")
	if line == "" {
		return "", "", false, false
	}
	k, v, found := strings.Cut(line, ":")
	v = TrimOWS(v)
	if !found || !ValidToken(k) || !ValidValue(v) {
		return "", "", false, true
	}
	return CanonicalKey(k), v, true, false
}

// AddField adds a field to h. A first value's slice is cut from vals, the
// parser's reused store, which AddField returns.
func AddField(h http.Header, vals []string, k, v string) []string {
	if vs, ok := h[k]; ok {
		h[k] = append(vs, v)
		return vals
	}
	vals = append(vals, v)
	n := len(vals)
	h[k] = vals[n-1 : n : n]
	return vals
}

// TrimOWS trims the optional white space around a header value: spaces
// and tabs only. textproto.TrimString would also take a bare CR, which
// net/http rejects: a value must mean the same here as there.
func TrimOWS(v string) string {
	// A loop, not strings.Trim: a cutset builds a set on every call, and
	// every header field's value goes through here.
	i, j := 0, len(v)
	for i < j && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	for j > i && (v[j-1] == ' ' || v[j-1] == '\t') {
		j--
	}
	return v[i:j]
}

// ParseLength parses a Content-Length value: digits only, as RFC 9110
// says, and no more than fit an int64.
func ParseLength(v string) (int64, bool) {
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

// CanonicalKey is textproto.CanonicalMIMEHeaderKey without its allocation
// for the keys clients send already in canonical form.
func CanonicalKey(k string) string {
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

// ValidToken reports whether s is an RFC 9110 token: a method or a field
// name.
func ValidToken(s string) bool {
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

// ValidValue reports whether s may be a field value: no control characters
// other than tab (obs-text is allowed, as net/http allows it).
func ValidValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// ValidHost accepts the characters of a host, an IP literal and a port.
func ValidHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(tokenChars[c] || c == ':' || c == '[' || c == ']') || c == '|' || c == '`' || c == '^' || c == '#' {
			return false
		}
	}
	return true
}

// HasToken reports whether the comma-separated list v holds token.
func HasToken(v, token string) bool {
	for tok := range strings.SplitSeq(v, ",") {
		if EqualFold(textproto.TrimString(tok), token) {
			return true
		}
	}
	return false
}

// WriteField writes one header line, its value kept on one line.
func WriteField(bw io.StringWriter, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(Clean(v))
	bw.WriteString("\r\n")
}

// AppendField appends one header line to dst, its value kept on one line,
// as WriteField writes it.
func AppendField(dst []byte, k, v string) []byte {
	dst = append(dst, k...)
	dst = append(dst, ": "...)
	dst = append(dst, Clean(v)...)
	return append(dst, "\r\n"...)
}

// Clean keeps a header value on one line. Values parsed here cannot hold
// CR or LF; this guards values set in code.
func Clean(v string) string {
	// Two byte scans: ContainsAny's set search costs more on every
	// header value written.
	if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
		return lineBreaks.Replace(v)
	}
	return v
}

var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

// EqualFold is strings.EqualFold for ASCII letters only, as HTTP and
// net/http compare tokens: "chunked" must not match a Kelvin sign for its
// k, or a head would mean one thing here and another to net/http.
func EqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lower(t[i]) {
			return false
		}
	}
	return true
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}
