package front

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/http1"
)

// chunkedPost is a chunked POST of path whose body (framing included) is
// body.
func chunkedPost(path, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
}

// echoBody reads the whole body and answers with the method, target and
// body.
func echoBody(x *Exchange, h *handed) {
	readAll(x, h)
	if h.bodyErr != nil {
		limAnswer(x.W, http.StatusBadRequest, "unreadable")
		return
	}
	limAnswer(x.W, http.StatusOK, h.Method+" "+h.RequestURI+" "+h.Body)
}

// A chunked body is read whole by the handler, through its chunk
// extensions and trailer section, and what the client sent after it (in
// the same write) is the next request, served next on the same
// connection.
func TestChunkedBodyReadWhole(t *testing.T) {
	t.Parallel()
	const next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name string
		send string // in one write
		want []handed
	}{
		{"one chunk", chunkedPost("/c", "5\r\nhello\r\n0\r\n\r\n"),
			[]handed{{Method: "POST", RequestURI: "/c", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: "hello"}}},
		{"many chunks", chunkedPost("/c", chunkedBody("hello, chunked world", 3)),
			[]handed{{Method: "POST", RequestURI: "/c", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: "hello, chunked world"}}},
		{"upper-case hex and a large chunk", chunkedPost("/c", "1F4\r\n"+strings.Repeat("z", 500)+"\r\n0\r\n\r\n"),
			[]handed{{Method: "POST", RequestURI: "/c", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: strings.Repeat("z", 500)}}},
		{"extensions and a trailer section", chunkedPost("/c", "5;a=b\r\nhello\r\n6 ; c=\"d\"\r\n world\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n"),
			[]handed{{Method: "POST", RequestURI: "/c", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: "hello world"}}},
		{"pipelined request after the body", chunkedPost("/c", "5\r\nhello\r\n0\r\n\r\n") + next,
			[]handed{
				{Method: "POST", RequestURI: "/c", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: "hello"},
				{Method: "GET", RequestURI: "/next", Host: "a", Proto: "HTTP/1.1"},
			}},
		{"pipelined after a trailer section", chunkedPost("/c", "2\r\nhi\r\n0\r\nX-T: v\r\n\r\n") + next,
			[]handed{
				{Method: "POST", RequestURI: "/c", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: "hi"},
				{Method: "GET", RequestURI: "/next", Host: "a", Proto: "HTTP/1.1"},
			}},
		{"two chunked requests pipelined", chunkedPost("/one", "3\r\none\r\n0\r\n\r\n") + chunkedPost("/two", "3\r\ntwo\r\n0\r\n\r\n"),
			[]handed{
				{Method: "POST", RequestURI: "/one", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: "one"},
				{Method: "POST", RequestURI: "/two", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: "two"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(echoBody)
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(tc.send)
			for _, want := range tc.want {
				resp, body := lc.mustResponse(5 * time.Second)
				if wantBody := want.Method + " " + want.RequestURI + " " + want.Body; resp.StatusCode != 200 || body != wantBody || resp.Close {
					t.Errorf("answer %d %q close=%v, want 200 %q, kept alive", resp.StatusCode, body, resp.Close, wantBody)
				}
				if got := st.nextIs(t, want); got.bodyErr != nil {
					t.Errorf("reading the body: %v", got.bodyErr)
				}
			}
			// The connection is kept, and its next request is served.
			lc.send("GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != "GET /after " {
				t.Errorf("the next request on the connection got %d %q", resp.StatusCode, body)
			}
			st.nextIs(t, handed{Method: "GET", RequestURI: "/after", Host: "a", Proto: "HTTP/1.1"})
		})
	}
}

// A malformed chunked body fails the handler's read with an *http1.Error
// (the gateway answers it 400); the connection closes after the answer,
// and what followed the body is never taken for a request. A handler
// that answers without reading the body: the front's drain finds the
// framing bad, and closes the connection after the answer all the same.
func TestChunkedBodyMalformed(t *testing.T) {
	t.Parallel()
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name, body string
		read       string // what the handler read before the failure
	}{
		{"chunk size not hex", "zz\r\nhello\r\n0\r\n\r\n", ""},
		{"chunk size with a sign", "+5\r\nhello\r\n0\r\n\r\n", ""},
		{"chunk size of 17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", ""},
		{"data not followed by CRLF", "5\r\nhelloXX\r\n0\r\n\r\n", "hello"},
		{"bare LF after the size", "5\nhello\r\n0\r\n\r\n", ""},
		{"white space inside the size", "5 5\r\nhello\r\n0\r\n\r\n", ""},
		{"obs-folded trailer line", "5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n", "hello"},
	} {
		for _, read := range []bool{true, false} {
			name := tc.name + "/read by the handler"
			if !read {
				name = tc.name + "/left to the drain"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				st := newXStub(func(x *Exchange, h *handed) {
					if !read {
						limAnswer(x.W, http.StatusOK, "unread")
						return
					}
					echoBody(x, h)
				})
				lc := limDial(t, limServe(t, st, Options{}))
				lc.send(chunkedPost("/m", tc.body) + smuggled)
				resp, body := lc.mustResponse(5 * time.Second)
				want := handed{Method: "POST", RequestURI: "/m", Host: "a", Proto: "HTTP/1.1", ContentLength: -1}
				if read {
					if resp.StatusCode != http.StatusBadRequest || body != "unreadable" {
						t.Errorf("answer %d %q, want the handler's 400", resp.StatusCode, body)
					}
					if !resp.Close {
						t.Error("the answer to a request whose body was malformed does not say Connection: close")
					}
					want.Body = tc.read
				} else if resp.StatusCode != http.StatusOK || body != "unread" {
					t.Errorf("answer %d %q, want the handler's 200", resp.StatusCode, body)
				}
				got := st.nextIs(t, want)
				var he *http1.Error
				if read && !errors.As(got.bodyErr, &he) {
					t.Errorf("the handler's read failed with %v (%T), want an *http1.Error", got.bodyErr, got.bodyErr)
				}
				if extra, ok := lc.closed(5 * time.Second); !ok || len(extra) > 0 {
					t.Errorf("after the answer: closed %v, %q read; want the connection closed", ok, extra)
				}
				st.noMore(t)
			})
		}
	}
}

// A chunked body that stops coming fails the handler's read with
// os.ErrDeadlineExceeded body_timeout after the last bytes, wherever in
// the framing it stalls; the connection closes after the answer.
func TestChunkedBodyStalls(t *testing.T) {
	t.Parallel()
	const bt = 300 * time.Millisecond
	for _, tc := range []struct {
		name, body string
		read       string
	}{
		{"in a chunk's data", "5\r\nhel", "hel"},
		{"before a chunk-size line", "5\r\nhello\r\n", "hello"},
		{"inside a chunk-size line", "5\r\nhello\r\n1", "hello"},
		{"before the CRLF after the data", "5\r\nhello", "hello"},
		{"in the trailer section", "5\r\nhello\r\n0\r\nX-T: v\r\n", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			took := make(chan time.Duration, 1)
			st := newXStub(func(x *Exchange, h *handed) {
				start := time.Now()
				readAll(x, h)
				took <- time.Since(start)
				limAnswer(x.W, http.StatusRequestTimeout, "slow")
			})
			lc := limDial(t, limServe(t, st, Options{BodyTimeout: bt}))
			lc.send(chunkedPost("/s", tc.body))
			got := st.nextIs(t, handed{Method: "POST", RequestURI: "/s", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: tc.read})
			if !errors.Is(got.bodyErr, os.ErrDeadlineExceeded) {
				t.Errorf("the handler's read failed with %v, want os.ErrDeadlineExceeded", got.bodyErr)
			}
			if d := <-took; d < bt*8/10 || d > bt+3*time.Second {
				t.Errorf("the read failed after %v; body_timeout is %v", d, bt)
			}
			resp, _ := lc.mustResponse(5 * time.Second)
			if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
				t.Errorf("answer %d close=%v; want the handler's 408 with Connection: close", resp.StatusCode, resp.Close)
			}
			if _, ok := lc.closed(5 * time.Second); !ok {
				t.Error("the connection stays open after its body timed out")
			}
		})
	}
}

// A handler that answers without reading a chunked body (or all of it):
// the front reads and drops up to 256 KiB of what is left after the
// answer, and serves the next
// request on the connection; past that it closes the connection after
// the answer, and what the client sent after the body is not served.
func TestChunkedBodyUnread(t *testing.T) {
	t.Parallel()
	const next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name string
		size int
		read int // what the handler reads before it answers
		kept bool
	}{
		{"1 KiB", 1 << 10, 0, true},
		{"exactly 256 KiB", maxDrain, 0, true},
		{"256 KiB and a byte", maxDrain + 1, 0, false},
		{"1 MiB", 1 << 20, 0, false},
		// What is left after the handler's reads counts.
		{"256 KiB left of 300", 300 << 10, 44 << 10, true},
		{"256 KiB and a byte left of 300", 300 << 10, 44<<10 - 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(func(x *Exchange, h *handed) {
				if x.Req.URL.Path == "/u" {
					if _, err := io.ReadFull(x.Req.Body, make([]byte, tc.read)); err != nil {
						h.bodyErr = err
					}
					limAnswer(x.W, http.StatusOK, "unread") // the rest of the body not read
					return
				}
				readAll(x, h)
				limAnswer(x.W, http.StatusOK, "served")
			})
			lc := limDial(t, limServe(t, st, Options{}))
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				lc.send(chunkedPost("/u", chunkedBody(strings.Repeat("u", tc.size), 16<<10)) + next)
			}()
			defer func() { <-sent }()
			resp, body := lc.mustResponse(5 * time.Second)
			if resp.StatusCode != 200 || body != "unread" {
				t.Fatalf("answer %d %q, want 200 %q", resp.StatusCode, body, "unread")
			}
			if got := st.nextIs(t, handed{Method: "POST", RequestURI: "/u", Host: "a", Proto: "HTTP/1.1", ContentLength: -1}); got.bodyErr != nil {
				t.Errorf("the handler's read of %d bytes: %v", tc.read, got.bodyErr)
			}
			if tc.kept {
				if resp.Close {
					t.Error("the answer says Connection: close, though the body is short enough to drain")
				}
				resp, body := lc.mustResponse(5 * time.Second)
				if resp.StatusCode != 200 || body != "served" {
					t.Errorf("the request after a %d-byte unread body got %d %q, want it served", tc.size, resp.StatusCode, body)
				}
				st.nextIs(t, handed{Method: "GET", RequestURI: "/next", Host: "a", Proto: "HTTP/1.1"})
				return
			}
			if extra, ok := lc.closed(5 * time.Second); !ok || len(extra) > 0 {
				t.Errorf("after a %d-byte unread body: closed %v, %q read; want the connection closed after the answer", tc.size, ok, extra)
			}
			st.noMore(t)
		})
	}
}
