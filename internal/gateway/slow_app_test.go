package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pool"
)

// An app slower than the first quarter second, over every protocol: its
// answer is waited for with a look at its socket (no read buffer held),
// then read whole, and its connection serves the next request; an app
// that resets the connection then gets the request 502 upstream_reset.
func TestAnAppSlowerThanTheFirstSlice(t *testing.T) {
	t.Parallel()
	for _, proto := range frontProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			var conns atomic.Int32
			app := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				conns.Add(1)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					time.Sleep(400 * time.Millisecond)
					if req.URL.Path == "/reset" {
						c.(*net.TCPConn).SetLinger(0)
						return // (closed by rawBackend: a reset)
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
				}
			})
			p := pool.New("web", 100)
			addReady(t, p, "web-1", app, 0) // an external upstream: no exit to wait for
			gw, _ := cutOffGateway(t, p, 20*time.Second)
			addr := serve(t, proto, gw)
			c := protoClient(t, proto)
			get := func(path string) (int, string, string) {
				resp, err := c.Get(protoURL(proto, addr) + path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), string(body)
			}
			for _, path := range []string{"/one", "/two"} {
				if status, _, body := get(path); status != 200 || body != "late" {
					t.Errorf("GET %s: %d %q; want 200 late", path, status, body)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("the app was dialed %d times for two slow answers; want once (the connection reused)", n)
			}
			if status, cause, body := get("/reset"); status != 502 || cause != "upstream_reset" {
				t.Errorf("GET /reset: %d %q %q; want 502 upstream_reset", status, cause, body)
			}
		})
	}
}
