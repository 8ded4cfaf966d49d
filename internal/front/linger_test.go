package front

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A client still sending an upload when its early answer comes (the
// body unread: a refusal, or an app that answered first) keeps sending
// for longer than net/http's 500 ms linger, with pauses: the connection
// reads and drops it all, and the client then reads its answer, where a
// close with its bytes unread would have reset the connection and lost
// the answer. Once the client stops sending, the connection closes
// after lingerWait.
func TestEarlyAnswerReachesAClientStillUploading(t *testing.T) {
	t.Parallel()
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		limAnswer(w, http.StatusServiceUnavailable, "no instance")
	}}
	s, addr := parkServe(t, stub, Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for start := time.Now(); time.Since(start) < 3*lingerClosing; {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(chunk); err != nil {
			t.Fatalf("the upload's write after %v: %v; want the connection to read on", time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(100 * time.Millisecond) // a client pacing its upload, not a wait for an event
	}
	stopped := time.Now()
	c.SetReadDeadline(time.Now().Add(lingerWait + 10*time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the early answer was lost: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || string(body) != "no instance" {
		t.Fatalf("answer %d %q (%v); want 503 %q", resp.StatusCode, body, err, "no instance")
	}
	// The connection's own end: the client's read saw the half-close
	// already, with the answer.
	testutil.WaitFor(t, lingerWait+10*time.Second, "the lingering connection to close", func() bool {
		_, n := countConns(s, func(*conn) bool { return true })
		return n == 0
	})
	if d := time.Since(stopped); d < lingerWait/2 {
		t.Errorf("closed %v after the client stopped sending; want it read for lingerWait (%v)", d, lingerWait)
	}
}
