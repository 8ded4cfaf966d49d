package front

import (
	"net/http"
	"testing"
	"time"
)

// An interim answer (the front's 100 Continue, an app's 103) goes out
// at once, and its write buffer goes back with it: a request whose body
// is then read, or whose app is then waited for, holds no write buffer
// until its final answer's head (see answerBuf).
func TestAnInterimAnswerLeavesNoWriterHeld(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, req, interim string
	}{
		{"100 Continue", "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", "HTTP/1.1 100 Continue"},
		{"103 Early Hints", "POST /h HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "HTTP/1.1 103 Early Hints"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			held := make(chan bool, 1)
			st := newXStub(func(x *Exchange, h *handed) {
				if x.Req.URL.Path == "/h" {
					x.W.WriteInterim(http.StatusEarlyHints, http.Header{"Link": {"</s.css>; rel=preload"}})
				}
				readAll(x, h)
				// On the connection's goroutine: what it holds as the
				// app would now be asked.
				held <- x.side.(*conn).bw.held()
				limAnswer(x.W, http.StatusOK, "got "+h.Body)
			})
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(tc.req)
			if head := lc.mustRawHead(5 * time.Second); statusLine(head) != tc.interim {
				t.Fatalf("first on the wire: %q, want %s", head, tc.interim)
			}
			lc.send("hello")
			if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != http.StatusOK || body != "got hello" {
				t.Fatalf("answer: %d %q", resp.StatusCode, body)
			}
			if <-held {
				t.Error("after its interim answer, the request holds a write buffer while its body is read and its app asked")
			}
		})
	}
}
