package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
)

// reviewDirect is newDirect with the front's options and routes chosen.
func reviewDirect(t *testing.T, addr string, routes []string, opts front.Options) *direct {
	t.Helper()
	return directWith(t, addr, opts, func(a *config.App) {
		if routes != nil {
			a.Routes = routes
		}
	})
}

// headOfSize is a GET head of exactly n bytes.
func headOfSize(t *testing.T, path string, n int) string {
	start := "GET " + path + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: "
	end := "\r\n\r\n"
	pad := n - len(start) - len(end)
	if pad < 1 {
		t.Fatalf("head of %d bytes too small", n)
	}
	return start + strings.Repeat("p", pad) + end
}

// limits.request_head below the 8 KiB read buffer is not enforced: a head
// that fits the buffer is never measured.
func TestHeadLimitBelowBuffer(t *testing.T) {
	d := reviewDirect(t, echoApp(t), nil, front.Options{HeadLimit: 2 << 10})
	resp, body := rawExchange(t, d.addr, headOfSize(t, "/echo", 6000))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("6000-byte head with request_head 2KiB: status %d, want 431; body %.80q", resp.StatusCode, body)
	}
}

// A head that outgrows the buffer is measured only while its end has not
// arrived: one that ends in the read that crosses the limit is taken,
// up to limit + 8 KiB.
func TestHeadLimitOvershoot(t *testing.T) {
	d := reviewDirect(t, echoApp(t), nil, front.Options{HeadLimit: 16 << 10})
	resp, body := rawExchange(t, d.addr, headOfSize(t, "/echo", 22<<10))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("22 KiB head with request_head 16KiB: status %d, want 431; body %.80q", resp.StatusCode, body)
	}
}

// readBigHead scans each new read from 3 bytes before its start, so that
// a CRLF CRLF across reads is found; but when those 3 bytes start with
// the LF of a CRLF, HeadEnd sees an LF at index 0 and calls it bare: a
// valid head larger than 8 KiB is refused 400 depending on where a line
// ends.
func TestBigHeadFalseBareLF(t *testing.T) {
	d := reviewDirect(t, echoApp(t), nil, front.Options{})
	start := "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-A: "
	// The CRLF ending X-A is at bytes 8188-8189: big[8189] == '\n'.
	first := start + strings.Repeat("a", 8188-len(start)) + "\r\n"
	if len(first) != 8190 {
		t.Fatal(len(first))
	}
	raw := first + "X-B: " + strings.Repeat("b", 2000) + "\r\n\r\n"
	resp, body := rawExchange(t, d.addr, raw)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("valid 10 KiB head: status %d, want 200; body %.200q", resp.StatusCode, body)
	}
}

// A request that asks for an upgrade the app does not take (it answers
// anything but 101, or there is no route) leaves the connection to the
// front, which checks the next request on it as any other: one it
// refuses (bare LF line ends, an obs-folded line) never reaches the app.
func TestUpgradeNotTakenNextRequestChecked(t *testing.T) {
	cases := []struct {
		name   string
		routes []string
		first  string
	}{
		{"app answers 200 to websocket", nil, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
		{"no route for websocket", []string{"/api/"}, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
		{"chunked POST with an Upgrade field", nil, "POST /up HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := newRecApp(t, nil)
			d := reviewDirect(t, app.addr, c.routes, front.Options{})
			// A second request the front refuses (bare LF line ends, an
			// obs-folded line): net/http serves it.
			second := "GET /api/smuggled HTTP/1.1\nHost: x\nX-Fold: a\n b\n\n"
			v := sendRaw(d.addr, c.first+second)
			reqs := app.settle(d)
			var got []string
			for _, q := range reqs {
				got = append(got, q.Method+" "+q.URI)
			}
			var statuses []int
			for _, a := range v.answers {
				statuses = append(statuses, a.status)
			}
			for _, g := range got {
				if g == "GET /api/smuggled" {
					t.Errorf("the app received a request the front never checked; app got %q, client statuses %v", got, statuses)
				}
			}
			if len(statuses) != 2 || statuses[1] != http.StatusBadRequest {
				t.Errorf("client statuses %v; want the first request's answer, then 400 for the malformed second", statuses)
			}
		})
	}
}

// A request handed to net/http whose body the handler does not read
// (no route, an error page) leaves net/http reading up to 256 KiB of that
// body after the response, in finishRequest's body Close, with no read
// deadline at all: body_timeout does not apply, and the connection and
// its max_connections slot are held for as long as the client likes.
func TestHandoffUnreadBodyHoldsSlotForever(t *testing.T) {
	for _, c := range []struct{ name, head string }{
		{"chunked", "POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"},
		{"expect 100-continue", "POST /nope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := reviewDirect(t, echoApp(t), []string{"/api/"}, front.Options{
				MaxConnections: 1, BodyTimeout: 200 * time.Millisecond, HeadTimeout: time.Second, KeepaliveTimeout: time.Second})
			conn, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, c.head)
			conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 404 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// The client now stays silent. body_timeout (200 ms) and every
			// other limit are long past after 3 s.
			conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err = br.ReadByte()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("connection still open 3 s after its answer, with body_timeout 200ms")
			}
			// And with max_connections 1, nobody else is served meanwhile.
			c2, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			c2.SetDeadline(time.Now().Add(time.Second))
			io.WriteString(c2, "GET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if _, err := http.ReadResponse(bufio.NewReader(c2), nil); err != nil {
				t.Errorf("second client not served while the first stays silent: %v", err)
			}
		})
	}
}

// A head that outgrew the read buffer and then stalls past head_timeout
// is closed without the 408 client_timeout answer and without an access
// log entry: refuseRead looks for the partial head in br and fc.big, but
// readBigHead keeps it in a local slice (fc.big is set only once the head
// is complete) and br was drained into it.
func TestBigHeadTimeoutUnanswered(t *testing.T) {
	for _, size := range []int{4000, 9000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			d := reviewDirect(t, echoApp(t), nil, front.Options{HeadTimeout: 300 * time.Millisecond})
			conn, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			partial := "GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", size)
			io.WriteString(conn, partial)
			conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Errorf("partial head of %d bytes, stalled past head_timeout: no answer (%v), want 408", size, err)
			} else if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d, want 408", resp.StatusCode)
			}
			d.mu.Lock()
			n := len(d.entries)
			d.mu.Unlock()
			if n == 0 {
				t.Errorf("no access entry for the timed-out head")
			}
		})
	}
}

var _ sync.Mutex
