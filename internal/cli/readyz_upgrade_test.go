package cli_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An upgrade hands the node to the successor, which serves: the node
// stays in rotation throughout. The old process answers one more request
// on each of its idle keep-alive connections (with Connection: close),
// and a load balancer's health check that keeps its connection (Envoy's
// does) sends its next /readyz there: it must pass, or the balancer
// takes the node out for the upgrade it was meant not to notice.
func TestReadyzPassesOnTheOldProcessAfterAnUpgrade(t *testing.T) {
	f := newUpgradeFixture(t, nil, "1s", "health_prefix: /.gatehouse")
	type check struct {
		name, addr, path string
		conn             net.Conn
		br               *bufio.Reader
	}
	checks := []*check{
		{name: "public listener", addr: f.listen, path: "/.gatehouse/readyz"},
		{name: "admin listener", addr: f.admin, path: "/readyz"},
	}
	get := func(c *check) (int, string, error) {
		c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c.conn, "GET "+c.path+" HTTP/1.1\r\nHost: "+c.addr+"\r\n\r\n"); err != nil {
			return 0, "", err
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), nil
	}
	for _, c := range checks {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c.conn, c.br = conn, bufio.NewReader(conn)
		if code, body, err := get(c); err != nil || code != 200 {
			t.Fatalf("%s: /readyz before the upgrade: %d %q %v", c.name, code, body, err)
		}
	}
	if r := waitOp(t, f.upgrade(t), 60*time.Second, "the upgrade"); r.code != 0 {
		t.Fatalf("upgrade exited %d:\n%s", r.code, r.out)
	}
	// The old process is into its shutdown (it answers idle connections
	// for 2 s more).
	time.Sleep(300 * time.Millisecond)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			code, body, err := get(c)
			if err != nil {
				// Closed rather than answered: the client reconnects, to
				// the successor.
				t.Logf("the old process closed the kept-alive connection: %v", err)
				return
			}
			if code != 200 {
				t.Errorf("/readyz on a kept-alive connection after the upgrade: %d %q, want 200", code, body)
			}
		})
	}
}
