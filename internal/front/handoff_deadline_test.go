package front

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A request handed to net/http on a kept-alive connection that sat idle
// past SendTimeout gets its answer: the write deadline of the last answer
// is cleared at the hand-off, so an answer with no body write (a 204, an
// empty 201, a 101 written through the hijacked connection) is not
// flushed under it and lost.
func TestHandOffClearsStaleWriteDeadline(t *testing.T) {
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		limAnswer(w, http.StatusOK, "ok")
	}}
	addr := limServe(t, stub, Options{SendTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	time.Sleep(600 * time.Millisecond) // idle, well within KeepaliveTimeout
	io.WriteString(c, "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the handed-off request's 204 never arrived: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("status %d, want 204", resp.StatusCode)
	}
}
