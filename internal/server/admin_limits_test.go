package server_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// TestAdminConnectionsBounded: the admin listener holds a client no
// longer than the public one would: a head not finished within
// head_timeout, a connection idle after its answer past
// keepalive_timeout, a body stalled past body_timeout (a sign-in form
// posted by half) are each closed. Without it one unauthenticated client
// holds admin connections for ever.
func TestAdminConnectionsBounded(t *testing.T) {
	const limit = time.Second
	cfg, _ := harness.FaultApp(t, 1)
	cfg.AdminToken = "s3cret-token-for-tests"
	cfg.Limits.HeadTimeout = config.Duration(limit)
	cfg.Limits.BodyTimeout = config.Duration(limit)
	cfg.Limits.KeepaliveTimeout = config.Duration(limit)
	for _, a := range cfg.Apps {
		a.Limits.BodyTimeout = config.Duration(limit)
	}
	g := harness.Start(t, cfg)
	addr := strings.TrimPrefix(g.AdminURL, "http://")

	cases := []struct {
		name string
		// send writes to the connection; it returns when the client
		// starts waiting.
		send func(t *testing.T, c net.Conn, br *bufio.Reader)
	}{
		{"head never finished", func(t *testing.T, c net.Conn, _ *bufio.Reader) {
			io.WriteString(c, "GET /api/status HTTP/1.1\r\nHost: x\r\n")
		}},
		{"idle after a 401", func(t *testing.T, c net.Conn, br *bufio.Reader) {
			io.WriteString(c, "GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (no token)", resp.StatusCode)
			}
		}},
		{"sign-in body stalled", func(t *testing.T, c net.Conn, _ *bufio.Reader) {
			io.WriteString(c, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=abc")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			tc.send(t, c, br)
			start := time.Now()
			c.SetReadDeadline(start.Add(limit + 4*time.Second))
			_, err = io.Copy(io.Discard, br)
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the admin connection is still open %v later; want it closed within about %v", took.Round(time.Millisecond), limit)
			}
			if took < limit*8/10 {
				t.Errorf("closed after %v; want no sooner than about %v", took, limit)
			}
		})
	}
}
