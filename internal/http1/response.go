package http1

import (
	"net/http"
	"strings"
)

// ResponseHead is a plain response head parsed by ParsePlainResponse. Its
// Header map and value store are reused from one parse to the next.
type ResponseHead struct {
	Status        string // "200 OK"
	StatusCode    int
	ContentLength int64
	// Close: the app asked to close after this response.
	Close  bool
	Header http.Header

	vals []string
}

// ParsePlainResponse parses the response head at the start of buf when it
// is plain: HTTP/1.1, a final status other than 204 and 304, framed by one
// Content-Length, well-formed field lines, all of it in buf. It returns
// the head's length, or 0 when the answer is anything else, which the
// caller then reads with http.ReadResponse, the reference for every other
// framing. The answer to a HEAD request is never plain (it has no body
// whatever its Content-Length says).
func (r *ResponseHead) ParsePlainResponse(buf []byte) int {
	n := HeadEnd(buf)
	if n <= 0 || !r.ParsePlainHead(buf[:n]) {
		return 0
	}
	return n
}

// ParsePlainHead is ParsePlainResponse for a caller that already found the
// head's end: head is the whole head, ending in CRLF CRLF (HeadEnd > 0).
// It reports whether the head is plain.
func (r *ResponseHead) ParsePlainHead(head []byte) bool {
	n := len(head)
	s := headString(head[:n-2])
	status, rest, _ := strings.Cut(s, "\r\n")
	code, ok := plainStatus(status)
	if !ok {
		return false
	}
	h := r.Header
	if h == nil {
		h = http.Header{}
		r.Header = h
	}
	clear(h)
	vals := r.vals[:0]
	length, hasLength, closing := int64(0), false, false
	fields := NewFieldLines(rest)
	for {
		k, v, ok, bad := fields.Next()
		if bad {
			r.vals = vals
			return false
		}
		if !ok {
			break
		}
		switch k {
		case "Content-Length":
			n, ok := ParseLength(v)
			if hasLength || !ok {
				r.vals = vals
				return false
			}
			length, hasLength = n, true
		case "Transfer-Encoding", "Trailer":
			r.vals = vals
			return false
		case "Connection":
			closing = closing || HasToken(v, "close")
		}
		vals = AddField(h, vals, k, v)
	}
	r.vals = vals
	if !hasLength {
		return false // chunked or read until close
	}
	if closing {
		delete(h, "Connection") // as net/http does once it has read it
	}
	r.Status, r.StatusCode, r.ContentLength, r.Close = status[len("HTTP/1.1 "):], code, length, closing
	return true
}

// plainStatus reads "HTTP/1.1 NNN reason" for a final status other than
// 204 and 304 (which have no body whatever their header says).
func plainStatus(line string) (int, bool) {
	if len(line) < 12 || line[:9] != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return 0, false
	}
	code := 0
	for _, c := range []byte(line[9:12]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return 0, false
	}
	return code, true
}

// BodyForbidden reports whether a response with status code to a request
// with method has no body whatever its fields say (RFC 9110 §6.4.1): the
// answer to HEAD, 1xx, 204 and 304.
func BodyForbidden(method string, code int) bool {
	return method == http.MethodHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
}
