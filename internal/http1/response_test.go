package http1

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readResponse must read every answer as http.ReadResponse does: the same
// status, headers, length, close flag and body, and the same bytes left
// for the next response on the connection.
func TestReadResponseMatchesNetHTTP(t *testing.T) {
	const next = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
	tests := []struct {
		name, method, raw string
		parsed            bool // read by the parser rather than http.ReadResponse
	}{
		{"plain", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", true},
		{"no reason", "GET", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", true},
		{"close", "GET", "HTTP/1.1 503 Service Unavailable\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nno", true},
		{"repeated and lowercase headers", "POST", "HTTP/1.1 201 Created\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nx-y:  spaced  \r\nContent-Length: 1\r\n\r\nx", true},
		{"empty value", "GET", "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 1\r\n\r\nx", true},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false},
		{"204 with length", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false},
		{"chunked with length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false},
		{"trailer", "GET", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Sum: 1\r\n\r\n", false},
		{"same length twice", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", false},
		{"http/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"bare LF", "GET", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false},
		{"interim", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type read struct {
				Status     string
				Code       int
				Header     http.Header
				Length     int64
				Close      bool
				Body, Rest string
				Err        bool
			}
			do := func(parse bool) (read, bool) {
				br := bufio.NewReaderSize(strings.NewReader(tt.raw+next), 4096)
				br.Peek(1) // as awaitFirstByte leaves it
				req := &http.Request{Method: tt.method}
				var resp *http.Response
				var err error
				var parsed bool
				if parse {
					resp, parsed, err = readResponse(br, req, &ResponseHead{})
				} else {
					resp, err = http.ReadResponse(br, req)
				}
				if err != nil {
					return read{Err: true}, false
				}
				b, _ := io.ReadAll(resp.Body)
				rest, _ := io.ReadAll(br)
				return read{resp.Status, resp.StatusCode, resp.Header.Clone(), resp.ContentLength, resp.Close, string(b), string(rest), false},
					parsed
			}
			want, _ := do(false)
			got, parsed := do(true)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("readResponse differs from http.ReadResponse (-want +got):\n%s", diff)
			}
			if parsed != tt.parsed {
				t.Errorf("parsed by readResponse itself: %v, want %v", parsed, tt.parsed)
			}
		})
	}
}

// A head not yet all buffered is not plain: the caller leaves it to
// http.ReadResponse, which waits for the rest.
func TestParsePlainResponsePartialHead(t *testing.T) {
	var h ResponseHead
	if n := h.ParsePlainResponse([]byte("HTTP/1.1 200 OK\r\nContent-")); n != 0 {
		t.Errorf("a partial head parsed as %d bytes", n)
	}
}

// readResponse reads as package upstream does: a plain answer with
// ParsePlainResponse, anything else with http.ReadResponse; parsed says
// which.
func readResponse(br *bufio.Reader, req *http.Request, h *ResponseHead) (*http.Response, bool, error) {
	if req.Method != http.MethodHead {
		buf, _ := br.Peek(br.Buffered())
		if n := h.ParsePlainResponse(buf); n > 0 {
			br.Discard(n)
			resp := &http.Response{Status: h.Status, StatusCode: h.StatusCode, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: h.Header, ContentLength: h.ContentLength, Close: h.Close, Request: req, Body: http.NoBody}
			if h.ContentLength > 0 {
				resp.Body = io.NopCloser(io.LimitReader(br, h.ContentLength))
			}
			return resp, true, nil
		}
	}
	resp, err := http.ReadResponse(br, req)
	return resp, false, err
}

func BenchmarkParsePlainResponse(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\nDate: Sat, 21 Nov 2026 11:07:29 GMT\r\n\r\n")
	var h ResponseHead
	b.ReportAllocs()
	for b.Loop() {
		if h.ParsePlainResponse(raw) == 0 {
			b.Fatal("not parsed")
		}
	}
}
