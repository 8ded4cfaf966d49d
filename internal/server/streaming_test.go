package server_test

import (
	"bufio"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// A server-sent event stream arrives through the gateway event by event,
// not buffered until the end, over HTTP/1.1 and over HTTP/2. Not
// parallel with other tests: it times the events' arrival.
func TestSSEArrivesEventByEvent(t *testing.T) {
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			var roots *x509.CertPool
			g := serving(t, 1, func(cfg *config.Config, _ *config.App) {
				if proto == "h2" {
					roots = harness.TLS(t, cfg)
				}
			})

			c, base := client(t, 10*time.Second), g.URL
			if proto == "h2" {
				c, base = harness.H2Client(roots, 10*time.Second), g.SecureURL
				defer c.CloseIdleConnections()
			}
			resp, err := c.Get(base + "/sse?n=5&every=300ms")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			headersAt := time.Now()
			if resp.ProtoMajor != 2 && proto == "h2" {
				t.Fatalf("answered over %s", resp.Proto)
			}
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("GET /sse = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var events []string
			var at []time.Time
			r := bufio.NewReader(resp.Body)
			for {
				line, err := r.ReadString('\n')
				if data, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
					events = append(events, data)
					at = append(at, time.Now())
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("reading the stream after %d events: %v", len(events), err)
				}
			}
			want := []string{"event 1", "event 2", "event 3", "event 4", "event 5"}
			if diff := cmp.Diff(want, events); diff != "" {
				t.Fatalf("events (-want +got):\n%s", diff)
			}
			// The whole stream takes 1.2s; a buffering gateway would deliver the
			// first event with the last.
			if first := at[0].Sub(headersAt); first > 250*time.Millisecond {
				t.Errorf("first event arrived %v after the headers; want within 250ms", first)
			}
			for i := 1; i < len(at); i++ {
				if gap := at[i].Sub(at[i-1]); gap < 150*time.Millisecond || gap > 800*time.Millisecond {
					t.Errorf("event %d arrived %v after event %d; want about 300ms", i+1, gap, i)
				}
			}
			if span := at[4].Sub(at[0]); span < 900*time.Millisecond {
				t.Errorf("events 1..5 arrived within %v; want them spread over ~1.2s", span)
			}
		})
	}
}

// A WebSocket-style upgrade passes through: 101, then bytes both ways on
// the same connection.
func TestUpgradePassesThrough(t *testing.T) {
	t.Parallel()
	g := serving(t, 1, nil)

	addr := strings.TrimPrefix(g.URL, "http://")
	conn := dial(t, addr)
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", addr)
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading the upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		t.Fatalf("upgrade = %d Upgrade %q cause %q: %s", resp.StatusCode, resp.Header.Get("Upgrade"), resp.Header.Get("Gatehouse-Cause"), body)
	}
	if resp.Header.Get("X-Instance") != "web-1" {
		t.Errorf("101 did not come from the app: X-Instance %q", resp.Header.Get("X-Instance"))
	}
	for _, msg := range []string{"ping", "a longer second message", strings.Repeat("x", 64<<10)} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("echo of %d bytes: %v", len(msg), err)
		}
		if string(got) != msg {
			t.Fatalf("echo = %.40q..., want %.40q...", got, msg)
		}
	}
	conn.Close()

	// The closed upgrade must not leak into later requests' records (the
	// gateway pools per-request state): fifty requests after its entry
	// reuse that state, whenever the tunnel's last read ends.
	testutil.WaitFor(t, 5*time.Second, "the upgrade's access entry", func() bool {
		for _, e := range g.Access() {
			if e.Path == "/ws" {
				return true
			}
		}
		return false
	})
	c := client(t, 5*time.Second)
	for i := 0; i < 50; i++ {
		if code, body, _ := get(t, c, g.URL+"/"); code != 200 {
			t.Fatalf("GET / after the upgrade = %d %q", code, body)
		}
	}
	for _, e := range g.Access() {
		if e.Path == "/ws" && e.Status != http.StatusSwitchingProtocols {
			t.Errorf("BUG (gateway): access entry of the upgrade has status %d, want 101: the tunnel's entry must say the app switched protocols", e.Status)
		}
		if e.Path == "/" && (e.Cause != "" || e.Status != 200) {
			t.Errorf("BUG (gateway): plain GET / after the upgrade logged status %d cause %q: the upgrade's body Read set truncated on a reqState already back in the pool", e.Status, e.Cause)
		}
	}
}
