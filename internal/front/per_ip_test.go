package front

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// dialAs opens a connection to addr from the loopback address from.
func dialAs(t *testing.T, addr, from string) *limClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 3 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &limClient{t: t, c: c, br: bufio.NewReader(c)}
}

// TestConnectionsPerIPBounded: one client address holds at most
// MaxConnectionsPerIP connections: past it, its own connection idle
// longest makes room, or, with all of them at work, the new one is
// closed at once; another address is served all the while, and an
// exempt peer (a trusted proxy) is not bounded.
func TestConnectionsPerIPBounded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	st := slowStub(release)
	exempt := netip.MustParseAddr("127.0.0.3")
	s, addr := parkServe(t, st, Options{MaxConnectionsPerIP: 2, KeepaliveTimeout: time.Minute,
		Exempt: func(ip netip.Addr) bool { return ip == exempt }})
	defer close(release)

	// Two connections of 127.0.0.1 at work.
	for range 2 {
		lc := dialAs(t, addr, "127.0.0.1")
		lc.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	awaitServed(t, st, 2)
	third := dialAs(t, addr, "127.0.0.1")
	third.send("GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
	if extra, ok := third.closed(3 * time.Second); !ok || len(extra) > 0 {
		t.Errorf("a third connection of one address, its two at work: closed %v, got %q; want it closed unanswered", ok, extra)
	}
	for _, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.3"} {
		lc := dialAs(t, addr, from)
		lc.send("GET /other HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != http.StatusOK || body != "GET /other" {
			t.Errorf("a connection from %s got %d %q; want it served", from, resp.StatusCode, body)
		}
	}

	// Two kept-alive connections of 127.0.0.4, idle: a third takes the
	// slot of the one idle longest.
	var idle []*limClient
	for i := range 2 {
		lc := dialAs(t, addr, "127.0.0.4")
		lc.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
		lc.mustResponse(5 * time.Second)
		idle = append(idle, lc)
		awaitIdleFrom(t, s, "127.0.0.4", i+1)
	}
	lc := dialAs(t, addr, "127.0.0.4")
	lc.send("GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != http.StatusOK || body != "GET /b" {
		t.Errorf("a third connection of an address whose two idle: %d %q; want it served", resp.StatusCode, body)
	}
	if _, ok := idle[0].closed(2 * time.Second); !ok {
		t.Error("the address's connection idle longest is still open")
	}
}

// awaitIdleFrom waits until n connections of the client address ip wait
// for their next request.
func awaitIdleFrom(t *testing.T, s *Server, ip string, n int) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "idle connections of "+ip, func() bool {
		idle, _ := countConns(s, func(fc *conn) bool { return fc.idleAt.Load() != 0 && hostOf(fc.c.RemoteAddr().String()) == ip })
		return idle >= n
	})
}
