package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// An answer of unknown length read ahead of the client keeps its
// trailers: the client gets the fields the app sent after the last chunk.
func TestAheadAnswerKeepsTrailers(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
					"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n")
			}
		})
		d := newDirect(t, proto, addr, nil)
		c := protoClient(t, proto)
		for i := range 3 {
			req, _ := http.NewRequest("GET", protoURL(proto, d.addr)+"/t", nil)
			req.Header.Set("TE", "trailers")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "hello world" || resp.Trailer.Get("X-Sum") != "42" {
				t.Errorf("request %d: %q, %v, trailer %v; want \"hello world\" with X-Sum: 42", i, b, err, resp.Trailer)
			}
		}
		d.waitIdle(t)
	})
}

// A client that leaves while the app is silent in the middle of an answer
// of unknown length lets the app go at once.
func TestAheadAnswerClientGoneReleases(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		appConn := make(chan net.Conn, 1)
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			appConn <- c
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
			io.Copy(io.Discard, br)
		})
		d := newDirect(t, proto, addr, nil)
		t.Cleanup(func() {
			select {
			case c := <-appConn:
				c.Close()
			default:
			}
		})
		c := protoClient(t, proto)
		c.Timeout = 300 * time.Millisecond
		if resp, err := c.Get(protoURL(proto, d.addr) + "/silent"); err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		c.CloseIdleConnections()
		d.waitIdle(t)
	})
}
