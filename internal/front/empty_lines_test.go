package front

import (
	"log"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Empty lines before a request line are ignored (RFC 9112 §2.2), as many
// as come, as nginx and HAProxy ignore them; a lone CR, or a bare LF,
// is no empty line, and the request is refused.
func TestEmptyLinesBeforeARequestLine(t *testing.T) {
	t.Parallel()
	get := "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct {
		name   string
		pieces []string // sent apart, each once the last has been read
		status int
	}{
		{"one", []string{"\r\n" + get}, 200},
		{"ten at once", []string{strings.Repeat("\r\n", 10) + get}, 200},
		{"ten apart", append(strings.SplitAfter(strings.Repeat("\r\n", 10), "\n")[:10], get), 200},
		{"split across the CR and LF", []string{"\r", "\n", get}, 200},
		{"a lone CR", []string{"\r" + get}, 400},
		{"a bare LF", []string{"\n" + get}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := limServe(t, echoStub{}, Options{})
			lc := limDial(t, addr)
			for _, p := range tc.pieces {
				lc.send(p)
				if !testutil.AwaitPeerRead(lc.c, 0, 5*time.Second) {
					t.Fatalf("the server did not read %q", p)
				}
			}
			resp, body, err := lc.response(5 * time.Second)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != tc.status || tc.status == 200 && body != "GET /a" {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tc.status)
			}
		})
	}
}

// Empty lines after a request's body (RFC 9112 §2.2) leave the
// connection idle: Shutdown ends it at once, as any idle one, rather
// than after its keep-alive.
func TestEmptyLinesAfterABodyLeaveTheConnectionIdle(t *testing.T) {
	t.Parallel()
	var el testutil.LockedBuffer
	s, addr := parkServe(t, echoStub{}, Options{KeepaliveTimeout: 30 * time.Second, ErrorLog: log.New(&el, "", 0)})
	lc := limDial(t, addr)
	lc.send("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\n")
	if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != http.StatusOK || body != "POST /a" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	awaitIdle(t, s, 1)
	start := time.Now()
	if err := <-beginShutdownOf(s, 3*time.Second); err != nil {
		t.Errorf("Shutdown after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if _, ok := lc.closed(time.Second); !ok {
		t.Errorf("the connection is still open after Shutdown")
	}
	if l := el.String(); l != "" {
		t.Errorf("logged: %s", l)
	}
}
