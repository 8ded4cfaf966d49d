package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// An answer of unknown length whose client left before it was read ahead
// (its watch had fired already) is a broken answer, and the app's
// connection, interrupted, is closed: neither taken for a clean end nor
// left open.
func TestAheadAnswerOfClientGoneClosesAppConnection(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{})
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
		io.Copy(io.Discard, br) // until the gateway closes its end
		close(closed)
	})
	p := pool.New("web", 10)
	m := pool.NewMember("web-1", addr)
	p.Add(m)
	m.SetState(pool.Ready)
	t.Cleanup(func() { p.Remove(m) })
	if p.Pick(nil) != m {
		t.Fatal("no member")
	}
	u := upstream.NewPool(addr, time.Minute)
	t.Cleanup(u.Close)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	st := getState()
	defer putState(st)
	try := &st.try
	try.Timeout, try.Deadline = 5*time.Second, time.Now().Add(5*time.Second)
	resp, pc, err := u.RoundTrip(ctx, req, try)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = newResponseBody(ctx, resp, pc, m, st)
	b := resp.Body.(*responseBody)
	cancel() // the client leaves: the body's watch fires, before the answer is read ahead

	ab := newAheadBody(ctx, b, 64<<10, nil, nil)
	got, err := io.ReadAll(ab)
	ab.Close()
	if err == nil {
		t.Errorf("read %q and a clean end from an app interrupted in the middle of its answer", got)
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Errorf("the app's connection stays open after its answer was abandoned")
	}
	if m.Inflight() != 0 {
		t.Errorf("member in flight %d, want 0", m.Inflight())
	}
}
