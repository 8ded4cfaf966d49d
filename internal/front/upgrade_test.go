package front

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const wsRequest = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"

// tunnelEnd is how a handler's tunnel went.
type tunnelEnd struct {
	early []byte // the bytes Tunnel handed over with the connection
	err   error  // Tunnel's error
	relay error  // the relay's end: nil once the client closed
}

// switchStub answers /ws with 101 and relays the tunnel as an echo (the
// early bytes first) until the client closes or the connection does;
// anything else is answered 200. ends gets each tunnel's end.
func switchStub(ends chan<- tunnelEnd) *xStub {
	return newXStub(func(x *Exchange, h *handed) {
		if x.Req.URL.Path != "/ws" {
			readAll(x, h)
			limAnswer(x.W, http.StatusOK, "served")
			return
		}
		hdr := x.W.Header()
		hdr.Set("Upgrade", "websocket")
		hdr.Set("Sec-Websocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
		// Framing fields the 101 must not carry, and a Connection field
		// it must not repeat.
		hdr.Set("Content-Length", "0")
		hdr.Set("Transfer-Encoding", "chunked")
		hdr.Set("Connection", "keep-alive")
		x.W.WriteHeader(http.StatusSwitchingProtocols)
		c, early, err := x.Tunnel()
		if err != nil {
			ends <- tunnelEnd{err: err}
			return
		}
		end := tunnelEnd{early: bytes.Clone(early)}
		if _, err := c.Write(early); err != nil {
			end.relay = err
		} else {
			_, end.relay = io.Copy(c, c)
		}
		ends <- end
	})
}

// A handler that answers 101 takes the connection from x.Tunnel, with
// the bytes the client sent right behind its request head (in the same
// write), and speaks the new protocol on it; the 101 on the wire says
// Connection: Upgrade and carries no framing field.
func TestUpgradeTunnel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		pad   int    // bytes of an X-Pad field in the head
		early string // sent with the head
	}{
		{"nothing sent early", 0, ""},
		{"bytes sent with the head", 0, "early frame"},
		{"a whole kilobyte sent with the head", 0, strings.Repeat("k", 1<<10)},
		// A head larger than the read buffer is gathered apart, with
		// what came after it.
		{"a head larger than the read buffer", 12 << 10, "early frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ends := make(chan tunnelEnd, 1)
			st := switchStub(ends)
			lc := limDial(t, limServe(t, st, Options{}))
			req := wsRequest
			if tc.pad > 0 {
				req = strings.TrimSuffix(req, "\r\n") + "X-Pad: " + strings.Repeat("p", tc.pad) + "\r\n\r\n"
			}
			lc.send(req + tc.early)
			head := lc.mustRawHead(5 * time.Second)
			f := headFields(head)
			if statusLine(head) != "HTTP/1.1 101 Switching Protocols" {
				t.Fatalf("answer %q, want 101", head)
			}
			if c := f["connection"]; len(c) != 1 || c[0] != "Upgrade" {
				t.Errorf("the 101's Connection: %q, want [Upgrade]", c)
			}
			if u := f["upgrade"]; len(u) != 1 || u[0] != "websocket" {
				t.Errorf("the 101's Upgrade: %q, want [websocket]", u)
			}
			if f["sec-websocket-accept"] == nil {
				t.Error("the 101 lost the handler's Sec-Websocket-Accept")
			}
			if f["content-length"] != nil || f["transfer-encoding"] != nil {
				t.Errorf("the 101 carries framing: Content-Length %q, Transfer-Encoding %q", f["content-length"], f["transfer-encoding"])
			}
			// The early bytes come back first (the echo), then what the
			// client sends now.
			if tc.early != "" {
				if got, err := lc.readN(len(tc.early), 5*time.Second); got != tc.early {
					t.Errorf("the tunnel echoed %q (%v), want the early bytes %q", got, err, tc.early)
				}
			}
			lc.send("ping")
			if got, err := lc.readN(4, 5*time.Second); got != "ping" {
				t.Errorf("the tunnel echoed %q (%v), want ping", got, err)
			}
			lc.c.(*net.TCPConn).CloseWrite()
			var end tunnelEnd
			select {
			case end = <-ends:
			case <-time.After(10 * time.Second):
				t.Fatal("the tunnel did not end after the client closed its side")
			}
			if end.err != nil || end.relay != nil {
				t.Errorf("Tunnel: %v; relay: %v", end.err, end.relay)
			}
			st.nextIs(t, handed{Method: "GET", RequestURI: "/ws", Host: "a", Proto: "HTTP/1.1", Upgrade: "websocket"})
			// Sent in the request's own write, they were read with its
			// head: Tunnel hands them over.
			if string(end.early) != tc.early {
				t.Errorf("Tunnel handed over %q as early bytes, want %q", end.early, tc.early)
			}
			if _, ok := lc.closed(5 * time.Second); !ok {
				t.Error("the connection stays open after the handler's tunnel ended")
			}
		})
	}
}

// A byte the client sent while the handler watched it (x.Watch, as while
// the request waits for an instance) is not lost to the tunnel: Tunnel
// hands it over as early bytes, and the rest comes on the connection.
func TestUpgradeAfterWatch(t *testing.T) {
	t.Parallel()
	ends := make(chan tunnelEnd, 1)
	watching := make(chan struct{})
	sent := make(chan struct{})
	inner := switchStub(ends)
	st := newXStub(func(x *Exchange, h *handed) {
		x.Watch()
		fc := x.side.(*conn)
		fc.watch.mu.Lock()
		done := fc.watch.done
		fc.watch.mu.Unlock()
		close(watching)
		<-sent
		// The watching read ends with the byte it took.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the watching read took nothing of what the client sent within 5s")
		}
		inner.serve(x, h)
	})
	lc := limDial(t, limServe(t, st, Options{}))
	lc.send(wsRequest)
	select {
	case <-watching:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the handler")
	}
	lc.send("early")
	close(sent)
	if head := lc.mustRawHead(5 * time.Second); statusLine(head) != "HTTP/1.1 101 Switching Protocols" {
		t.Fatalf("answer %q, want 101", head)
	}
	if got, err := lc.readN(5, 5*time.Second); got != "early" {
		t.Errorf("the tunnel echoed %q (%v), want all the bytes sent while the handler watched", got, err)
	}
	lc.c.(*net.TCPConn).CloseWrite()
	select {
	case end := <-ends:
		if end.err != nil || end.relay != nil || string(end.early) != "e" {
			t.Errorf("Tunnel: %v, early bytes %q (want the byte the watcher read, \"e\"); relay: %v", end.err, end.early, end.relay)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel did not end after the client closed its side")
	}
	st.nextIs(t, handed{Method: "GET", RequestURI: "/ws", Host: "a", Proto: "HTTP/1.1", Upgrade: "websocket"})
}

// Tunnel on an exchange whose answer was not a 101 returns ErrNoTunnel,
// and the connection serves on as HTTP/1.1.
func TestUpgradeNoTunnelWithout101(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer func(x *Exchange) // what the handler does before Tunnel
		after  func(x *Exchange) // and after
	}{
		{"after a 200", func(x *Exchange) { limAnswer(x.W, http.StatusOK, "plain") }, func(*Exchange) {}},
		{"before any answer", func(*Exchange) {}, func(x *Exchange) { limAnswer(x.W, http.StatusOK, "plain") }},
		{"after an interim answer", func(x *Exchange) {
			x.W.WriteInterim(http.StatusEarlyHints, http.Header{"Link": {"</a>"}})
		}, func(x *Exchange) { limAnswer(x.W, http.StatusOK, "plain") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := make(chan error, 1)
			st := newXStub(func(x *Exchange, h *handed) {
				if x.Req.URL.Path != "/ws" {
					limAnswer(x.W, http.StatusOK, "served")
					return
				}
				tc.answer(x)
				c, _, err := x.Tunnel()
				if c != nil {
					err = errors.Join(err, errors.New("Tunnel handed over a connection"))
				}
				errs <- err
				tc.after(x)
			})
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(wsRequest)
			resp, body := lc.mustResponse(5 * time.Second)
			if resp.StatusCode != 200 || body != "plain" || resp.Close {
				t.Errorf("answer %d %q close=%v, want the handler's 200, kept alive", resp.StatusCode, body, resp.Close)
			}
			if err := <-errs; err != ErrNoTunnel {
				t.Errorf("Tunnel without a 101: %v, want ErrNoTunnel", err)
			}
			st.nextIs(t, handed{Method: "GET", RequestURI: "/ws", Host: "a", Proto: "HTTP/1.1", Upgrade: "websocket"})
			lc.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != "served" {
				t.Errorf("the next request got %d %q, want it served", resp.StatusCode, body)
			}
		})
	}
}

// Shutdown does not wait for an open tunnel (it has no end Shutdown could
// wait for), and leaves it open; Close closes it.
func TestUpgradeTunnelAndShutdown(t *testing.T) {
	t.Parallel()
	ends := make(chan tunnelEnd, 1)
	s, addr := parkServe(t, switchStub(ends), Options{})
	lc := limDial(t, addr)
	lc.send(wsRequest)
	lc.mustRawHead(5 * time.Second)
	lc.send("one")
	if got, err := lc.readN(3, 5*time.Second); got != "one" {
		t.Fatalf("the tunnel echoed %q (%v)", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an open tunnel: %v after %v", err, time.Since(start))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Shutdown took %v with an open tunnel; want it not to wait", took)
	}
	lc.send("two")
	if got, err := lc.readN(3, 5*time.Second); got != "two" {
		t.Errorf("after Shutdown the tunnel echoed %q (%v); want it still open", got, err)
	}
	s.Close()
	select {
	case end := <-ends:
		if end.err != nil || end.relay == nil {
			t.Errorf("the tunnel ended with Tunnel %v, relay %v; want the relay cut by Close", end.err, end.relay)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel is still open 10s after Close")
	}
	if _, ok := lc.closed(5 * time.Second); !ok {
		t.Error("the client's connection stays open after Close")
	}
}

// x.Upgrade is the Upgrade field of an HTTP/1.1 request with Connection:
// upgrade, and "" for any other.
func TestUpgradeField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, send, want string
	}{
		{"connection upgrade", wsRequest, "websocket"},
		{"among other tokens", "GET /u HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\nUpgrade: websocket\r\n\r\n", "websocket"},
		{"two Upgrade fields", "GET /u HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: a/1\r\nUpgrade: b/2\r\n\r\n", "a/1, b/2"},
		{"Upgrade without Connection: upgrade", "GET /u HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", ""},
		{"Upgrade with another Connection token", "GET /u HTTP/1.1\r\nHost: a\r\nConnection: Upgrade-Insecure\r\nUpgrade: websocket\r\n\r\n", ""},
		{"HTTP/1.0", "GET /u HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", ""},
		{"plain request", "GET /u HTTP/1.1\r\nHost: a\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(nil)
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(tc.send)
			if resp, body := lc.mustResponse(5 * time.Second); resp.StatusCode != 200 || body != "served" {
				t.Errorf("answer %d %q", resp.StatusCode, body)
			}
			if got := st.next(t); got.Upgrade != tc.want {
				t.Errorf("x.Upgrade = %q, want %q", got.Upgrade, tc.want)
			}
		})
	}
}

// Closing tunnels does not wait on a TLS client that stopped reading:
// crypto/tls's close_notify to it would wait 5 s for room, one tunnel
// after another, under the server's lock. The socket goes first.
func TestCloseTunnelsOverTLSWithAClientNotReading(t *testing.T) {
	t.Parallel()
	for _, closeAll := range []bool{false, true} {
		name := "CloseTunnels"
		if closeAll {
			name = "Close"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			full := make(chan struct{})
			ended := make(chan struct{})
			h := newXStub(func(x *Exchange, _ *handed) {
				x.W.Header().Set("Upgrade", "websocket")
				x.W.WriteHeader(http.StatusSwitchingProtocols)
				c, _, err := x.Tunnel()
				if err != nil {
					close(full)
					return
				}
				defer close(ended)
				// Fill the way to the client, which does not read, then
				// wait on it with no write under way.
				chunk := make([]byte, 64<<10)
				for {
					c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
					if _, err := c.Write(chunk); err != nil {
						break
					}
				}
				close(full)
				io.Copy(io.Discard, c)
			})
			opts := Options{}
			var cli *tls.Config
			opts.TLS, cli = testTLS(t, "http/1.1")
			s, addr := parkServe(t, h, opts)
			lc := limDialOver(t, addr, cli)
			lc.send(wsRequest)
			lc.mustRawHead(5 * time.Second)
			select {
			case <-full:
			case <-time.After(20 * time.Second):
				t.Fatal("the tunnel did not fill the way to the client")
			}
			start := time.Now()
			if closeAll {
				s.Close()
			} else {
				s.CloseTunnels()
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("%s took %v with a client not reading", name, took)
			}
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Error("the tunnel's handler still runs 5 s after the close")
			}
		})
	}
}
