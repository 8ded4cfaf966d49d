package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The answer's last write waits for what comes next, on both sides of the
// gateway (peek.SendWait): the front's for the client's next request, the
// upstream client's for the app's answer. End to end, with a slow app: a
// request pipelined while the one before it is served must be answered,
// correctly and in order, and a long keep-alive sequence must not slow
// down or lose a request.

// slowApp is a recording app that answers "got METHOD URI"; a request
// for /slow is answered only once the test releases it, after it told
// the test it came.
func slowApp(t *testing.T) (app *recApp, started <-chan string, release chan<- struct{}) {
	st, rel := make(chan string), make(chan struct{})
	app = newRecApp(t, func(c net.Conn, r appReq) {
		if strings.HasPrefix(r.URI, "/slow") {
			st <- r.URI
			<-rel
		}
		answerGot(c, r)
	})
	return app, st, rel
}

// The sendWait tests speak HTTP/1.1 on a plain socket, the only kind
// whose answers' last writes wait (primeSendWait); a TLS connection is
// served by the same loop without the wait.

// TestSendWaitPipelinedWhileServedEndToEnd: the client sends a request
// for a slow answer and, while the app works on it, the next request in
// a write of its own. Both are answered, in order, on the connection kept
// alive, round after round.
func TestSendWaitPipelinedWhileServedEndToEnd(t *testing.T) {
	t.Parallel()
	app, started, release := slowApp(t)
	d := directWith(t, app.addr, protoOptions(t, "h1"), nil)
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	var wantApp []string
	for i := range 10 {
		slow, next := "/slow?"+strconv.Itoa(i), "/next?"+strconv.Itoa(i)
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET "+slow+" HTTP/1.1\r\nHost: x\r\n\r\n")
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the slow request did not reach the app", i)
		}
		io.WriteString(conn, "GET "+next+" HTTP/1.1\r\nHost: x\r\n\r\n")
		// The second request reaches the gateway's socket before the
		// first is answered: the case the front's wait may miss.
		time.Sleep(10 * time.Millisecond)
		release <- struct{}{}

		wantApp = append(wantApp, "GET "+slow, "GET "+next)
		for _, uri := range []string{slow, next} {
			start := time.Now()
			conn.SetReadDeadline(start.Add(5 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d: no answer to %s: %v", i, uri, err)
			}
			body, err := io.ReadAll(resp.Body)
			if want := "got GET " + uri; err != nil || resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("round %d: got %d %q %v, want 200 %q", i, resp.StatusCode, body, err, want)
			}
			if resp.Close {
				t.Fatalf("round %d: the answer to %s closes the connection", i, uri)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("round %d: the answer to %s took %v", i, uri, took)
			}
		}
	}
	if diff := cmp.Diff(wantApp, app.lines(d)); diff != "" {
		t.Errorf("requests the app received (-want +got):\n%s", diff)
	}
	d.waitIdle(t)
}

// TestSendWaitKeepAliveSequenceEndToEnd: many requests one after the
// other, each sent when the answer before it was read, on one client
// connection, over reused app connections: every answer is the request's
// own, the connection stays open, and the whole sequence takes far less
// than a wait that missed its wake-up at every request would cost.
func TestSendWaitKeepAliveSequenceEndToEnd(t *testing.T) {
	t.Parallel()
	app := newRecApp(t, nil)
	d := directWith(t, app.addr, protoOptions(t, "h1"), nil)
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	const n = 200
	start := time.Now()
	var want []string
	for i := range n {
		uri := "/seq?" + strconv.Itoa(i)
		req := "GET " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n"
		if i%3 == 1 {
			body := strings.Repeat("b", i)
			req = "POST " + uri + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		}
		method, _, _ := strings.Cut(req, " ")
		want = append(want, method+" "+uri)
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, req)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if w := "got " + method + " " + uri; err != nil || resp.StatusCode != 200 || string(body) != w {
			t.Fatalf("request %d: got %d %q %v, want 200 %q", i, resp.StatusCode, body, err, w)
		}
		if resp.Close {
			t.Fatalf("request %d: the front closes a kept-alive connection", i)
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("%d sequential requests took %v", n, took)
	}
	if diff := cmp.Diff(want, app.lines(d)); diff != "" {
		t.Errorf("requests the app received (-want +got):\n%s", diff)
	}
	// Still open and usable after the sequence.
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.Peek(1); err == nil || !isTimeout(err) {
		t.Errorf("the kept-alive connection after the sequence: %v, want it open and quiet", err)
	}
	d.waitIdle(t)
}

// lines is what the app received once the gateway settled, one "METHOD
// URI" per request.
func (a *recApp) lines(d *direct) []string {
	got := a.settle(d)
	out := make([]string, len(got))
	for i, q := range got {
		out[i] = q.Method + " " + q.URI
	}
	return out
}
