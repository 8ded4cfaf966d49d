package front

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
)

// Expect: 100-continue is answered "HTTP/1.1 100 Continue" when the
// handler first reads the body, not before: a handler that sends an
// interim answer first (103) has it on the wire before the 100. The
// client sends its body only then; the answer and the next request on
// the connection follow as usual, with no second 100.
func TestExpectContinueOnFirstRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		head   string
		body   string // sent once the 100 came
		want   handed
		expect string
	}{
		{"content-length", "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", "hello",
			handed{Method: "POST", RequestURI: "/e", Host: "a", Proto: "HTTP/1.1", ContentLength: 5, Body: "hello"}, ""},
		{"any case", "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n", "hello",
			handed{Method: "POST", RequestURI: "/e", Host: "a", Proto: "HTTP/1.1", ContentLength: 5, Body: "hello"}, ""},
		{"chunked", "POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n",
			handed{Method: "POST", RequestURI: "/e", Host: "a", Proto: "HTTP/1.1", ContentLength: -1, Body: "hello"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(func(x *Exchange, h *handed) {
				if x.Req.URL.Path == "/e" {
					x.W.WriteInterim(http.StatusEarlyHints, http.Header{"Link": {"</s.css>; rel=preload"}})
					// Two reads: the 100 goes out at the first only.
					var b [1]byte
					n, _ := x.Req.Body.Read(b[:])
					readAll(x, h)
					h.Body = string(b[:n]) + h.Body
				}
				limAnswer(x.W, http.StatusOK, "got "+h.Body)
			})
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(tc.head)
			if head := lc.mustRawHead(5 * time.Second); statusLine(head) != "HTTP/1.1 103 Early Hints" {
				t.Fatalf("first on the wire: %q, want the handler's 103 (a 100 must wait for the handler's read)", head)
			}
			if head := lc.mustRawHead(5 * time.Second); head != "HTTP/1.1 100 Continue\r\n\r\n" {
				t.Fatalf("after the 103: %q, want HTTP/1.1 100 Continue", head)
			}
			lc.send(tc.body)
			head := lc.mustRawHead(5 * time.Second)
			if statusLine(head) != "HTTP/1.1 200 OK" || headFields(head)["connection"] != nil {
				t.Errorf("the answer after the body: %q, want 200, kept alive", head)
			}
			if got, err := lc.readN(len("got hello"), 5*time.Second); got != "got hello" {
				t.Errorf("answer body %q (%v), want %q", got, err, "got hello")
			}
			if got := st.nextIs(t, tc.want); got.bodyErr != nil {
				t.Errorf("reading the body: %v", got.bodyErr)
			}
			lc.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
			if head := lc.mustRawHead(5 * time.Second); statusLine(head) != "HTTP/1.1 200 OK" {
				t.Errorf("the next request on the connection was answered %q, want 200 and no second 100", head)
			}
			st.nextIs(t, handed{Method: "GET", RequestURI: "/next", Host: "a", Proto: "HTTP/1.1"})
		})
	}
}

// A handler that answers a request with Expect: 100-continue without
// reading its body: no 100 is ever sent, the answer says Connection:
// close, and the connection closes after it (the client, told nothing,
// may send its body or not; what comes next cannot be read as a request).
func TestExpectContinueAnsweredUnread(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		head   string
		status int
		want   handed
	}{
		{"content-length 200", "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", http.StatusOK,
			handed{Method: "POST", RequestURI: "/e", Host: "a", Proto: "HTTP/1.1", ContentLength: 5}},
		{"content-length 413", "PUT /e HTTP/1.1\r\nHost: a\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n", http.StatusRequestEntityTooLarge,
			handed{Method: "PUT", RequestURI: "/e", Host: "a", Proto: "HTTP/1.1", ContentLength: 50000000}},
		{"chunked 417", "POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", http.StatusExpectationFailed,
			handed{Method: "POST", RequestURI: "/e", Host: "a", Proto: "HTTP/1.1", ContentLength: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(func(x *Exchange, h *handed) { limAnswer(x.W, tc.status, "unread") })
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(tc.head)
			head := lc.mustRawHead(5 * time.Second)
			if want := fmt.Sprintf("HTTP/1.1 %d %s", tc.status, http.StatusText(tc.status)); statusLine(head) != want {
				t.Errorf("first on the wire: %q, want %q (no 100 for a body never read)", head, want)
			}
			if c := headFields(head)["connection"]; len(c) != 1 || c[0] != "close" {
				t.Errorf("the answer's Connection: %q, want close", c)
			}
			if got, _ := lc.readN(len("unread"), 5*time.Second); got != "unread" {
				t.Errorf("answer body %q", got)
			}
			st.nextIs(t, tc.want)
			if extra, ok := lc.closed(5 * time.Second); !ok || len(extra) > 0 {
				t.Errorf("after the answer: closed %v, %q read; want the connection closed, with no 100", ok, extra)
			}
		})
	}
}

// An expectation other than 100-continue is refused 400 (Exchange.Reject,
// bad_request; the refused request's method is told for the log) and the
// connection closed; HTTP/1.0 has no Expect, and
// its requests are served whatever the field says, with no 100.
func TestExpectOther(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		send string
		want handed
	}{
		{"unknown expectation", "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: something-else\r\n\r\nhello",
			handed{Method: "POST", Reject: string(cause.BadRequest)}},
		{"100-continue and more", "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue, foo\r\n\r\nhello",
			handed{Method: "POST", Reject: string(cause.BadRequest)}},
		{"another expectation in a field before 100-continue's", "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: foo\r\nExpect: 100-continue\r\n\r\nhello",
			handed{Method: "POST", Reject: string(cause.BadRequest)}},
		{"unknown expectation without a body", "GET /e HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n",
			handed{Method: "GET", Reject: string(cause.BadRequest)}},
		{"HTTP/1.0 100-continue", "POST /e HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
			handed{Method: "POST", RequestURI: "/e", Host: "a", Proto: "HTTP/1.0", ContentLength: 5, Body: "hello"}},
		{"HTTP/1.0 unknown expectation", "POST /e HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\nExpect: something-else\r\n\r\nhello",
			handed{Method: "POST", RequestURI: "/e", Host: "a", Proto: "HTTP/1.0", ContentLength: 5, Body: "hello"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(echoBody)
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(tc.send)
			head := lc.mustRawHead(5 * time.Second)
			wantStatus := "HTTP/1.1 200 OK"
			if tc.want.Reject != "" {
				wantStatus = "HTTP/1.1 400 Bad Request"
			}
			if statusLine(head) != wantStatus {
				t.Errorf("first on the wire: %q, want %q", head, wantStatus)
			}
			if c := headFields(head)["connection"]; len(c) != 1 || c[0] != "close" {
				t.Errorf("the answer's Connection: %q, want close", c)
			}
			got := st.nextIs(t, tc.want)
			if got.bodyErr != nil {
				t.Errorf("reading the body: %v", got.bodyErr)
			}
			if _, ok := lc.closed(5 * time.Second); !ok {
				t.Error("the connection stays open after its answer")
			}
			st.noMore(t)
		})
	}
}

// A request with Expect: 100-continue and no body gets no 100: there is
// nothing to continue with. The connection is kept.
func TestExpectContinueWithoutBody(t *testing.T) {
	t.Parallel()
	st := newXStub(echoBody)
	lc := limDial(t, limServe(t, st, Options{}))
	lc.send("GET /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n")
	head := lc.mustRawHead(5 * time.Second)
	if statusLine(head) != "HTTP/1.1 200 OK" || headFields(head)["connection"] != nil {
		t.Errorf("first on the wire: %q, want the final 200, kept alive", head)
	}
	st.nextIs(t, handed{Method: "GET", RequestURI: "/e", Host: "a", Proto: "HTTP/1.1"})
}
