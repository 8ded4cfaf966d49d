package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Clients that read their answers slowly, or never, or send their bodies
// slowly, hold gatehouse's memory or a temporary file, never the app's
// worker: with max_inflight 1, a well-behaved client is served at once
// while they hang on. Each hangs on far longer than the good client's
// patience, and all of them longer than hold_timeout.
func TestSlowClientsDoNotHoldTheApp(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts gatehouse with the fault app")
	}
	for _, tc := range []struct {
		name   string
		proto  string
		limits func(*config.AppLimits)
		hold   func(t *testing.T, g *harness.Gatehouse)
	}{
		{"HTTP/2 streams whose window is never opened, 5 KB answers", "h2", nil, func(t *testing.T, g *harness.Gatehouse) {
			h2NeverReads(t, g, 8, "/bytes?n=5000")
		}},
		{"h2c streams whose window is never opened, 5 KB answers", "h2c", nil, func(t *testing.T, g *harness.Gatehouse) {
			h2NeverReads(t, g, 8, "/bytes?n=5000")
		}},
		{"HTTP/2, chunked answers", "h2", nil, func(t *testing.T, g *harness.Gatehouse) {
			h2NeverReads(t, g, 8, "/bytes?n=20000&chunked=1")
		}},
		{"HTTP/2, answers in a temporary file", "h2", func(l *config.AppLimits) { l.ResponseBuffer = 1 << 20 }, func(t *testing.T, g *harness.Gatehouse) {
			// 8 × 300 KB is more than connection_buffer (1 MiB): most go
			// to disk.
			h2NeverReads(t, g, 8, "/bytes?n=300000")
		}},
		{"HTTP/1.1 clients that never read a 12 MB answer", "http/1.1", func(l *config.AppLimits) { l.ResponseBuffer = 16 << 20 }, func(t *testing.T, g *harness.Gatehouse) {
			for range 2 {
				h1NeverReads(t, g, "/bytes?n=12000000")
			}
		}},
		{"HTTP/1.1 upload of 2 MB that stalls half way", "http/1.1", nil, func(t *testing.T, g *harness.Gatehouse) {
			h1SlowUpload(t, g, 2_000_000)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startFaultOver(t, tc.proto, 1, func(a *config.App) {
				a.MaxInflight = 1
				a.HoldTimeout = config.Duration(3 * time.Second)
				if tc.limits != nil {
					tc.limits(&a.Limits)
				}
			})
			tc.hold(t, g)
			c := newClient(t, g, 20*time.Second)
			for i := range 3 {
				start := time.Now()
				r := c.get("/")
				if r.status != http.StatusOK || time.Since(start) > 2*time.Second {
					t.Fatalf("good client's request %d: %v after %v; want 200 at once while the slow clients hang on", i, r, time.Since(start).Round(time.Millisecond))
				}
			}
		})
	}
}

// h2NeverReads opens an HTTP/2 connection whose receive window is 0 and
// sends n GETs of path on it, and waits for their heads: gatehouse has
// each answer and cannot send a byte of its body. The connection stays
// open until the test ends.
func h2NeverReads(t *testing.T, g *harness.Gatehouse, n int, path string) {
	t.Helper()
	// Over TLS when the gatehouse has an HTTPS listener, else h2c.
	u, _ := url.Parse(g.SecureURL)
	scheme := "https"
	var c net.Conn
	var err error
	if g.H2Roots != nil {
		c, err = tls.Dial("tcp", u.Host, &tls.Config{RootCAs: g.H2Roots, NextProtos: []string{"h2"}})
	} else {
		u, _ = url.Parse(g.URL)
		scheme = "http"
		c, err = net.Dial("tcp", u.Host)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := range n {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", scheme}, {":authority", u.Host}, {":path", path}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Read until every stream has its head (a HEADERS frame); acknowledge
	// SETTINGS, open no window.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	heads := 0
	for heads < n {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d heads of %d: %v", heads, n, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			heads++
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v after %d heads", f.ErrCode, heads)
		}
	}
	c.SetReadDeadline(time.Time{})
}

// h1NeverReads asks for path on a connection with a small receive buffer
// that is never read, and waits until the answer has begun to come.
func h1NeverReads(t *testing.T, g *harness.Gatehouse, path string) {
	t.Helper()
	u, _ := url.Parse(g.URL)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, u.Host)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReaderSize(c, 16).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("status line %q, %v", line, err)
	}
}

// h1SlowUpload sends the head and half of a size-byte body, then stops.
func h1SlowUpload(t *testing.T, g *harness.Gatehouse, size int) {
	t.Helper()
	u, _ := url.Parse(g.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", u.Host, size)
	if _, err := io.CopyN(c, strings.NewReader(strings.Repeat("u", size)), int64(size/2)); err != nil {
		t.Fatal(err)
	}
}

// With memory and disk for held bodies spent, a body streams after what
// was held, whole: the budgets bound what gatehouse keeps, never what
// the app gets.
func TestBodiesStreamPastTheBuffersBudgets(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts gatehouse with the fault app")
	}
	cfg, _ := harness.FaultApp(t, 1)
	cfg.Limits.BufferMemory = 0
	cfg.Limits.BufferDisk = 64 << 10
	g := harness.Start(t, cfg)
	waitReady(t, g, 1)
	c := newClient(t, g, 20*time.Second)
	for _, tc := range []struct {
		name string
		q    req
	}{
		{"declared length", req{method: "POST", path: "/echo", body: strings.Repeat("b", 300<<10)}},
		{"chunked", req{method: "POST", path: "/echo", bodyReader: strings.NewReader(strings.Repeat("c", 300<<10))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.q.body
			if want == "" {
				want = strings.Repeat("c", 300<<10)
			}
			r := c.do(tc.q)
			if r.status != http.StatusOK || r.body != want {
				t.Errorf("POST of %d bytes: %d with %d bytes back; want 200 and the body echoed", len(want), r.status, len(r.body))
			}
		})
	}
}
