package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// tunnelIdle is the limits.tunnel_idle_timeout of TestTunnelIdleTimeout.
const tunnelIdle = time.Second

// setTunnelIdleTimeout sets limits.tunnel_idle_timeout in a config built
// in code, at the top level and for app.
// A config built in code does not go through Load's inheritance of
// limits: the app keeps NewApp's defaults unless it is set here too.
func setTunnelIdleTimeout(cfg *config.Config, app *config.App, d time.Duration) {
	cfg.Limits.TunnelIdleTimeout = config.Duration(d)
	app.Limits.TunnelIdleTimeout = config.Duration(d)
}

// TestTunnelIdleTimeoutDefault: limits.tunnel_idle_timeout is 60s unless
// set.
func TestTunnelIdleTimeoutDefault(t *testing.T) {
	t.Parallel()
	if d := config.DefaultLimits().TunnelIdleTimeout.D(); d != 60*time.Second {
		t.Errorf("default limits.tunnel_idle_timeout %v, want 60s", d)
	}
}

// TestTunnelIdleTimeout: an upgraded connection (a WebSocket) that is
// silent in both directions for limits.tunnel_idle_timeout is closed, and
// gives back what it held, its max_inflight slot above all. Without the
// limit one silent WebSocket behind max_inflight 1 makes every other
// request of the app wait out hold_timeout and get 503 for as long as the
// client keeps it open.
//
// The tunnel first carries a message every 250ms for longer than the
// limit (and must stay open: the timeout is for silence, not a bound on
// the tunnel's life), then goes silent: it must be closed, from
// gatehouse's side, about tunnel_idle_timeout later; then a plain request
// must be served.
func TestTunnelIdleTimeout(t *testing.T) {
	t.Parallel()
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		cfg, app := harness.FaultApp(t, 1)
		app.MaxInflight = 1
		app.HoldTimeout = config.Duration(300 * time.Millisecond)
		setTunnelIdleTimeout(cfg, app, tunnelIdle)
		var roots *x509.CertPool
		if w.tls {
			roots = harness.TLS(t, cfg)
		}
		g := harness.Start(t, cfg)
		waitReady(t, g, 1)

		c, err := dialGatehouse(g, w, roots)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		head, err := readHeadOf(c, time.Now().Add(5*time.Second))
		if err != nil || !strings.HasPrefix(string(head), "HTTP/1.1 101 ") {
			t.Fatalf("the upgrade got %.300q (%v); want 101 from the app", head, err)
		}

		// Traffic, spaced less than the limit, for longer than it.
		tick := time.NewTicker(tunnelIdle / 4)
		defer tick.Stop()
		// The last byte went through the gateway between sent and last:
		// a stall of this process (the gateway's too) between the echo
		// and the clock's reading must not look like an early close.
		last := time.Now()
		sent := last
		for i := range 6 {
			if i > 0 {
				<-tick.C
			}
			msg := fmt.Sprintf("ping%d", i)
			sent = time.Now()
			if err := echo(c, msg); err != nil {
				t.Fatalf("message %d, %v after the last one (limit %v): %v; a tunnel carrying traffic must stay open",
					i, time.Since(last).Round(time.Millisecond), tunnelIdle, err)
			}
			last = time.Now()
		}

		// Silence: gatehouse must close the tunnel about tunnelIdle after
		// the last byte.
		c.SetReadDeadline(last.Add(tunnelIdle + 3*time.Second))
		n, err := c.Read(make([]byte, 1))
		waited := time.Since(last)
		var ne net.Error
		switch {
		case err == nil:
			t.Errorf("the silent tunnel gave %d bytes; the app only echoes", n)
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("the tunnel, silent both ways, is still open %v after its last byte; want it closed after limits.tunnel_idle_timeout %v",
				waited.Round(time.Millisecond), tunnelIdle)
		case time.Since(sent) < tunnelIdle*9/10:
			t.Errorf("the tunnel closed %v after its last byte was sent (%v); want no sooner than limits.tunnel_idle_timeout %v", time.Since(sent), err, tunnelIdle)
		default:
			t.Logf("the silent tunnel was closed %v after its last byte (%v)", waited.Round(time.Millisecond), err)
		}

		// The slot is given back: the app's next request is served. (The
		// client's end of the tunnel stays open until the test ends.)
		p := g.Srv.Supervisor().App("web").Pool()
		waitUntil(2*time.Second, func() bool { return p.Inflight() == 0 })
		if n := p.Inflight(); n != 0 {
			t.Errorf("after the tunnel's silence the app still has %d request(s) in flight (max_inflight 1)", n)
		}
		cl := newClient(t, g, 10*time.Second)
		if r := cl.get("/"); r.err != nil || r.status != http.StatusOK {
			t.Errorf("%v: want 200 once the silent tunnel is closed", r)
		}
		checkCauses(t, g, cl.all())
	})
}

// dialGatehouse opens an HTTP/1.1 connection to g's plain listener, or
// over w's TLS to its HTTPS one trusting roots.
func dialGatehouse(g *harness.Gatehouse, w wire, roots *x509.CertPool) (net.Conn, error) {
	if !w.tls {
		return net.DialTimeout("tcp", strings.TrimPrefix(g.URL, "http://"), 3*time.Second)
	}
	d := &net.Dialer{Timeout: 3 * time.Second}
	return tls.DialWithDialer(d, "tcp", strings.TrimPrefix(g.SecureURL, "https://"),
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
}

// echo sends msg through the fault app's /ws tunnel and reads it back.
func echo(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != msg {
		return fmt.Errorf("echoed %q, want %q", b, msg)
	}
	return nil
}

// TestTunnelHalfCloseCarriesOn: a client that ends its half of an
// upgraded conversation (a half-close) still gets all the app goes on
// sending, for as long as the app keeps talking; the tunnel ends when
// the app ends its half too.
func TestTunnelHalfCloseCarriesOn(t *testing.T) {
	t.Parallel()
	const chunks, every = 20, 100 * time.Millisecond // 2 s of talk, past halfCloseLinger (1 s)
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		go io.Copy(io.Discard, br) // the client's half, until it ends
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range chunks {
			<-tick.C
			if _, err := c.Write(bytes.Repeat([]byte("x"), 1024)); err != nil {
				return
			}
		}
	})
	d := directWith(t, addr, protoOptions(t, "h1"), nil)
	c := dialUpgraded(t, d.addr)
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	if n != chunks*1024 {
		t.Errorf("the client got %d bytes after its half-close, want all %d the app sent", n, chunks*1024)
	}
}

// TestStopClosesTunnels: stopping gatehouse closes its open tunnels
// (WebSockets) after the requests in flight are done, rather than
// keeping their instances out of reach until stop_timeout, and logs
// them.
func TestStopClosesTunnels(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1)
	app.StopTimeout = config.Duration(5 * time.Second)
	g := harness.Start(t, cfg)
	waitReady(t, g, 1)
	c, err := dialGatehouse(g, wireH1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if head, err := readHeadOf(c, time.Now().Add(5*time.Second)); err != nil || !strings.HasPrefix(string(head), "HTTP/1.1 101 ") {
		t.Fatalf("upgrade: %.300q %v", head, err)
	}
	if err := echo(c, "ping"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	g.Stop(t)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("gatehouse took %v to stop with a tunnel open; want it closed, not waited for up to stop_timeout (5s)", took.Round(time.Millisecond))
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the tunnel is still open after gatehouse stopped: %v", err)
	}
	var logged bool
	for _, e := range g.Access() {
		logged = logged || e.Path == "/ws" && e.Status == http.StatusSwitchingProtocols
	}
	if !logged {
		t.Errorf("no access entry with status 101 for the tunnel: %+v", g.Access())
	}
}

// TestTunnelHalfCloseAfterSilence: a side that ends its half of an
// upgraded conversation after a silence longer than halfCloseLinger (1 s)
// still lets the other side answer it: the linger counts from the
// half-close, not from the last byte before it. Counted from the last
// byte, the linger has run out already when the half-close comes, the
// other side's read is woken and found idle at once, and its answer to
// the end (a request-then-shutdown protocol's reply, the app's last
// words) is lost with the tunnel closed under it.
func TestTunnelHalfCloseAfterSilence(t *testing.T) {
	t.Parallel()
	const silence = 1500 * time.Millisecond // past halfCloseLinger (1 s)
	for _, tc := range []struct {
		name string
		// clientEnds: the client half-closes and the app answers the
		// end; else the app half-closes and the client answers.
		clientEnds bool
	}{
		{name: "client ends, app answers", clientEnds: true},
		{name: "app ends, client answers", clientEnds: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// got is what the app read from the client after the 101.
			got := make(chan string, 1)
			addr := testutil.ServeRaw(t, func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if tc.clientEnds {
					io.Copy(io.Discard, br) // until the client's half-close
					io.WriteString(c, "bye")
					return
				}
				time.Sleep(silence) // the silence is the case's input
				c.(*net.TCPConn).CloseWrite()
				b, _ := io.ReadAll(br)
				got <- string(b)
			})
			d := directWith(t, addr, protoOptions(t, "h1"), nil)
			c := dialUpgraded(t, d.addr)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if tc.clientEnds {
				time.Sleep(silence) // the silence is the case's input
				c.CloseWrite()
				b, err := io.ReadAll(c)
				if string(b) != "bye" {
					t.Errorf("after its half-close the client got %q (%v), want the app's answer %q", b, err, "bye")
				}
				return
			}
			// The app's half-close: the client reads to its end, then
			// answers it.
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("reading to the app's half-close: %v", err)
			}
			io.WriteString(c, "bye")
			c.CloseWrite()
			select {
			case s := <-got:
				if s != "bye" {
					t.Errorf("after its half-close the app got %q, want the client's answer %q", s, "bye")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the app never saw the client's answer end")
			}
		})
	}
}

// dialUpgraded connects to the gateway at addr and upgrades the
// connection to a tunnel (a WebSocket's 101), closed when the test ends.
func dialUpgraded(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	head, err := readHeadOf(c, time.Now().Add(5*time.Second))
	if err != nil || !strings.HasPrefix(string(head), "HTTP/1.1 101 ") {
		t.Fatalf("upgrade: %.300q %v", head, err)
	}
	return c.(*net.TCPConn)
}
