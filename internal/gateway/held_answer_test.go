package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An answer of known length, short enough to be held whole, that the app
// cuts short (fewer bytes than its Content-Length, then a close) reaches
// the client as an answer that broke: over HTTP/1.1 a connection closed
// before the declared length, over HTTP/2 a reset stream, never a clean
// end of stream after fewer bytes. The access log says
// response_truncated.
func TestHeldAnswerCutShortReachesClientBroken(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"+strings.Repeat("x", 1000))
		})
		d := newDirect(t, proto, addr, nil)
		if proto == "h1" {
			resp, err := protoClient(t, proto).Get(d.url + "/short")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				t.Errorf("the client read a complete answer; it was cut short")
			}
		} else {
			h, err := dialH2(t, d.addr, proto == "h2")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.start(); err != nil {
				t.Fatal(err)
			}
			if err := h.get(1, "/short"); err != nil {
				t.Fatal(err)
			}
			v, ok := h.await(h2Patience, settled(1))
			if st := v.Streams[1]; !ok || st == nil || !st.Reset {
				t.Errorf("stream of an answer cut short: %v; want it reset, not ended", v.String())
			}
		}
		if e := d.entry(t, "/short"); e.Cause != "response_truncated" {
			t.Errorf("access entry cause %q, want response_truncated", e.Cause)
		}
		d.waitIdle(t)
	})
}

// A client that leaves while the app stalls in the middle of a short body
// (one the gateway reads whole before writing it) lets go of the member
// and the app's connection at once, as it does for a longer one.
func TestClientGoneDuringStalledShortAnswerReleases(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		appConn := make(chan net.Conn, 1)
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			appConn <- c
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"+strings.Repeat("x", 10))
			io.Copy(io.Discard, br) // stall until the gateway closes (or the test ends)
		})
		d := newDirect(t, proto, addr, nil)
		t.Cleanup(func() {
			select {
			case c := <-appConn:
				c.Close()
			default:
			}
		})
		if proto == "h1" {
			conn, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
			io.WriteString(conn, "GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
			http.ReadResponse(bufio.NewReader(conn), nil)
			conn.Close()
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			req, _ := http.NewRequestWithContext(ctx, "GET", protoURL(proto, d.addr)+"/stall", nil)
			if resp, err := protoClient(t, proto).Do(req); err == nil {
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			cancel()
		}
		d.waitIdle(t)
	})
}
