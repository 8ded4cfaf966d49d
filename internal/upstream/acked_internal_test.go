//go:build linux

package upstream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peek"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// What the kernel says was acknowledged before an upload on a reused
// connection counts only where it keeps the count: Linux counts the SYN,
// so a connection's count is at least 1 there, and a 0 is a kernel that
// keeps none (gVisor, WSL 1). Taken for a count, a 0 that stays 0 would
// make every failed upload stale_connection, sent again though the app
// may have read it.
func TestAckedCountOfZeroIsUnknown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc := newConn(nil, c, c)
	if n, ok := pc.peek.Acked(); ok && !countsAcked(n, ok) {
		t.Errorf("a connection's count on this kernel, %d, is taken for none", n)
	}
	for _, tc := range []struct {
		n        uint64
		ok, want bool
	}{{0, true, false}, {0, false, false}, {1, true, true}, {4096, true, true}} {
		if got := countsAcked(tc.n, tc.ok); got != tc.want {
			t.Errorf("countsAcked(%d, %v) = %v, want %v", tc.n, tc.ok, got, tc.want)
		}
	}
}

// An upload that fails part-way on a reused connection was had by the
// app (WroteSome, not to be resent as stale) only when the app's TCP
// acknowledged some of it: bytes that met the connection the app had
// closed while it idled were answered with a reset, and the request is
// stale, resent whatever its method.
func TestUploadOnAReusedConnectionWroteSomeOnlyIfAcknowledged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// closedIdle: the app closes the connection after its first
		// answer, before the upload; else it reads part of the upload
		// and then resets.
		closedIdle bool
		want       bool
	}{
		{"the app closed it while idle", true, false},
		{"the app read part of it, then reset", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := rawApp(t, func(c net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if tc.closedIdle {
					return // closed: the upload meets a closed socket
				}
				req, err = http.ReadRequest(br)
				if err != nil {
					return
				}
				io.CopyN(io.Discard, req.Body, 64<<10)
				c.(*net.TCPConn).SetLinger(0)
			})
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			if code, body, err := do(t, p, "GET", "/warm", nil); err != nil || code != 200 || body != "ok" {
				t.Fatalf("warm-up: %d %q %v", code, body, err)
			}
			// The connection as the pool would reuse it, without the look
			// before reuse, which would find the app's close: an idle
			// close that crosses the request comes after that look.
			pc := p.take()
			if pc == nil {
				t.Fatal("no idle connection after the warm-up")
			}
			if tc.closedIdle {
				testutil.WaitFor(t, 5*time.Second, "the app's close", func() bool { return peek.Pending(pc.raw) == peek.Closed })
			}
			// Far more than the sockets' buffers hold: the sending fails.
			const size = 1 << 30
			req, _ := http.NewRequest("POST", "http://app/upload", io.LimitReader(zeros{}, size))
			req.ContentLength = size
			at := &Attempt{Deadline: time.Now().Add(10 * time.Second), Timeout: 10 * time.Second, HeadLimit: 2048}
			at.Progress.GotConn, at.Progress.Reused = true, true
			pc.begin(at.Timeout)
			_, err := at.exchange(pc, req)
			pc.Close()
			if err == nil {
				t.Fatal("the upload went through")
			}
			if at.Progress.WroteSome != tc.want {
				t.Errorf("WroteSome %v after %v, want %v", at.Progress.WroteSome, err, tc.want)
			}
		})
	}
}
