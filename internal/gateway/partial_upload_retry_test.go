package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A POST whose upload the app began to read on a kept-alive connection,
// then cut off (it crashed, or refused the body by closing), was had by
// the app: its failure is upstream_reset, not a stale_connection the app
// never saw, and it is not sent again. Only a connection the app closed
// while it idled (the first write fails) is stale.
func TestPartlyReadUploadOnReusedConnectionNotResent(t *testing.T) {
	t.Parallel()
	var posts atomic.Int32
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.Method != "POST" {
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			posts.Add(1)
			// Reads some of the upload, then cuts the request off, the
			// rest unread (the socket resets).
			io.CopyN(io.Discard, req.Body, 64<<10)
			c.(*net.TCPConn).SetLinger(0)
			return
		}
	})
	d := newDirect(t, "h1", addr, func(a *config.App) { a.RetryBodyLimit = 32 << 20 })
	c := protoClient(t, "h1")
	c.Timeout = 30 * time.Second
	// The first request leaves a kept-alive connection to the app, which
	// the POST reuses.
	if resp, body := fetchGet(t, c, d.url+"/warm"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("warm-up: %d %q", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", d.url+"/upload", bytes.NewReader(make([]byte, 16<<20)))
	resp, body := fetch(t, c, req)
	e := d.entry(t, "/upload")
	if n := posts.Load(); n != 1 || resp.StatusCode != 502 || e.Cause != "upstream_reset" {
		t.Errorf("the app had the POST %d times; answered %d %q (%q), retried after %v; want it had once, 502 upstream_reset",
			n, resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), body, e.RetriedCauses)
	}
	d.waitIdle(t)
}
