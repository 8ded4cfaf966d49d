package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A header value ending in a bare CR ("X-A: b\r\r\n") is rejected by
// http.ReadResponse (502 bad_response); readResponse, which reads an answer
// only when its head is all buffered at the first byte, must reject it too,
// or the same bytes from the app would get 200 in one write and 502 in two.
func TestResponseBareCRReadAlikeHoweverItArrives(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		const head = "HTTP/1.1 200 OK\r\nX-A: b\r\r\nContent-Length: 2\r\n\r\n"
		var n atomic.Int32
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				if n.Add(1) == 1 {
					io.WriteString(c, head+"ok")
				} else {
					io.WriteString(c, head[:20])
					// Time between the two writes: the gateway reads
					// the head in two parts.
					time.Sleep(50 * time.Millisecond)
					io.WriteString(c, head[20:]+"ok")
				}
			}
		})
		d := newDirect(t, proto, addr, nil)
		c := protoClient(t, proto)
		var got []int
		for range 2 {
			resp, err := c.Get(protoURL(proto, d.addr) + "/x")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got = append(got, resp.StatusCode)
		}
		if got[0] != got[1] {
			t.Errorf("the same answer, sent in one write then in two: statuses %v", got)
		}
		d.waitIdle(t)
	})
}

// A request header value with a bare CR before or after it, a
// Content-Length among them, is refused 400, as net/http's server
// refuses it: never framed by a reading that a proxy in front of
// gatehouse may not share. An HTTP/1.1 head's matter.
func TestRequestBareCRRejected(t *testing.T) {
	t.Parallel()
	d := newDirect(t, "h1", echoApp(t), nil)
	for _, raw := range []string{
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\r\n\r\nabc",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length:\r3\r\n\r\nabc",
		"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n",
	} {
		resp, body := rawExchange(t, d.addr, raw)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: %d %.40q, want 400 as net/http", raw, resp.StatusCode, body)
		}
	}
}

// http.ReadResponse accepts a header name with a space before the colon
// (golang/go#34540). net/http's server drops such a name when it writes
// the response, and so must the gateway: else an HTTP/1.1 client gets
// "Content-Length : 7" next to the real "Content-Length: 2", two lengths
// for any lenient parser downstream; an HTTP/2 client gets a field name
// no HTTP/1.1 hop after it could write.
func TestInvalidResponseHeaderNameDropped(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length : 7\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		d := newDirect(t, proto, addr, nil)
		if proto == "h1" {
			conn, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			b, _ := io.ReadAll(conn)
			if strings.Contains(string(b), "Content-Length :") {
				t.Errorf("client got an invalid header line: %q", b)
			}
		} else {
			resp, err := protoClient(t, proto).Get(protoURL(proto, d.addr) + "/x")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for k := range resp.Header {
				if strings.ContainsAny(k, " \t") {
					t.Errorf("client got an invalid field name %q: %q", k, resp.Header[k])
				}
			}
			if resp.StatusCode != 200 || string(b) != "ok" || resp.ContentLength != 2 {
				t.Errorf("got %d %q (length %d), want 200 ok of length 2", resp.StatusCode, b, resp.ContentLength)
			}
		}
		d.waitIdle(t)
	})
}
