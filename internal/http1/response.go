package gateway

import (
	"bufio"
	"io"
	"net/http"
	"strings"
)

// readResponse reads the app's response head. The common answer (HTTP/1.1,
// framed by one Content-Length, well-formed header lines, all of the head
// already buffered) is parsed into the request's reused response and header
// map; anything else, and every answer to HEAD, is read by
// http.ReadResponse, whose framing rules stay the reference. Nothing is
// consumed before the choice is made.
func readResponse(br *bufio.Reader, req *http.Request, st *reqState) (*http.Response, error) {
	if st != nil && req.Method != http.MethodHead {
		if resp := st.parseResponse(br, req); resp != nil {
			return resp, nil
		}
	}
	return http.ReadResponse(br, req)
}

// parseResponse parses a plain response head from what br holds; nil when
// the answer is not plain.
func (st *reqState) parseResponse(br *bufio.Reader, req *http.Request) *http.Response {
	buf, _ := br.Peek(br.Buffered())
	n := headEnd(buf)
	if n <= 0 {
		return nil
	}
	s := string(buf[:n-2])
	status, rest, _ := strings.Cut(s, "\r\n")
	code, ok := statusLine(status)
	if !ok {
		return nil
	}
	h := st.respHeader
	if h == nil {
		h = http.Header{}
		st.respHeader = h
	}
	clear(h)
	vals := st.respVals[:0]
	length, hasLength, closing := int64(0), false, false
	fields := fieldLines{rest}
	for {
		k, v, ok, bad := fields.next()
		if bad {
			return nil
		}
		if !ok {
			break
		}
		switch k {
		case "Content-Length":
			n, ok := parseLength(v)
			if hasLength || !ok {
				return nil
			}
			length, hasLength = n, true
		case "Transfer-Encoding", "Trailer":
			return nil
		case "Connection":
			closing = closing || hasToken(v, "close")
		}
		vals = addField(h, vals, k, v)
	}
	st.respVals = vals
	if !hasLength {
		return nil // chunked or read until close
	}
	if closing {
		delete(h, "Connection") // as net/http does once it has read it
	}
	br.Discard(n)
	st.resp = http.Response{
		Status: status[len("HTTP/1.1 "):], StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length, Close: closing, Request: req, Body: http.NoBody,
	}
	if length > 0 {
		st.respBody = lengthBody{br: br, n: length}
		st.resp.Body = &st.respBody
	}
	return &st.resp
}

// statusLine reads "HTTP/1.1 NNN reason" for a final status other than
// 204 and 304 (which have no body whatever their header says; net/http
// handles them).
func statusLine(line string) (int, bool) {
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

// lengthBody reads a body of n bytes, returning io.EOF with its last bytes
// so that the connection goes back to the pool as soon as they are read.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	switch {
	case b.n == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
