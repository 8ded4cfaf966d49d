package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// limits.response_head below the upstream reader's 4 KiB buffer is
// enforced: a head up to the buffer's size that arrives in one read is
// measured too, whatever its framing.
func TestResponseHeadLimitBelowBuffer(t *testing.T) {
	big := strings.Repeat("a", 3000) // a 3 KiB head against a 1 KiB limit
	framings := []struct{ name, rest string }{
		{"content-length", "Content-Length: 2\r\n\r\nok"},
		{"chunked", "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{"bare LF", "Content-Length: 2\n\nok"}, // no CRLF CRLF to measure the head by
	}
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		for _, framing := range framings {
			t.Run(framing.name, func(t *testing.T) {
				addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
					for {
						if _, err := http.ReadRequest(br); err != nil {
							return
						}
						eol := "\r\n"
						if strings.HasSuffix(framing.rest, "\n\nok") {
							eol = "\n"
						}
						io.WriteString(c, "HTTP/1.1 200 OK"+eol+"X-Big: "+big+eol+framing.rest)
					}
				})
				d := newDirect(t, proto, addr, func(a *config.App) { a.Limits.ResponseHead = 1 << 10 })
				resp, err := protoClient(t, proto).Get(protoURL(proto, d.addr) + "/big")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Gatehouse-Cause") != "bad_response" {
					t.Errorf("%d-byte response head with limits.response_head 1KiB: got %d %q, want 502 bad_response",
						len(big)+40, resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
				}
				d.waitIdle(t)
			})
		}
	})
}

// slowBody yields n bytes in pieces, one every pause.
type slowBody struct {
	n, piece int
	pause    time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.pause)
	k := min(b.piece, b.n, len(p))
	for i := range p[:k] {
		p[i] = 'u'
	}
	b.n -= k
	return k, nil
}

// request_timeout bounds the wait for response headers (README: "no
// response headers by then: 504 upstream_timeout"), not the upload: a
// streamed upload that takes longer than request_timeout, to an app that
// reads it as it comes and answers at once, is answered, not cut with 504
// upstream_timeout.
func TestSlowStreamedUploadIsNotUpstreamTimeout(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		var mu sync.Mutex
		got := -1
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				n, _ := io.Copy(io.Discard, req.Body)
				mu.Lock()
				got = int(n)
				mu.Unlock()
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		d := newDirect(t, proto, addr, func(a *config.App) {
			a.RequestTimeout = config.Duration(400 * time.Millisecond)
			a.RetryBodyLimit = 1 << 10 // stream it
		})
		const size = 12 << 10
		req, _ := http.NewRequest("PUT", protoURL(proto, d.addr)+"/upload", &slowBody{n: size, piece: 1 << 10, pause: 80 * time.Millisecond})
		req.ContentLength = size
		resp, err := protoClient(t, proto).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode != 200 {
			t.Errorf("1 s upload, app answers as soon as it has the body: got %d %q (app read %d of %d bytes), want 200",
				resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), got, size)
		}
		d.waitIdle(t)
	})
}

// A client that half-closes an upgraded connection (CloseWrite; over TLS,
// close_notify) still gets what the app sends afterwards: the half-close
// is passed on to the app, not taken for the end of the whole tunnel.
func TestUpgradeHalfClosePropagated(t *testing.T) {
	eachWire(t, h1Wires, func(t *testing.T, w wire) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			b, _ := io.ReadAll(br) // until the client's half-close
			io.WriteString(c, "got "+string(b))
		})
		d := directWith(t, addr, w.frontOptions(), nil)
		conn, err := dialH1(w, d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		io.WriteString(conn, "ping")
		if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != "got ping" {
			t.Errorf("after the client's half-close it got %q, want the app's %q", rest, "got ping")
		}
		conn.Close()
		d.waitIdle(t)
	})
}

// A client that leaves while the app stalls in the middle of a body with a
// Content-Length lets go of the member and the app's connection at once,
// not when the app writes again: over HTTP/1.1 it closes its connection,
// over HTTP/2 it resets the stream. So for a short body, which the
// gateway reads whole before it writes any, as for a long one it streams.
func TestClientGoneDuringStalledLengthBodyReleases(t *testing.T) {
	for _, length := range []int{3000, 100000} {
		t.Run(strconv.Itoa(length), func(t *testing.T) { clientGoneDuringStalledBody(t, length) })
	}
}

func clientGoneDuringStalledBody(t *testing.T, length int) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		appConn := make(chan net.Conn, 1)
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			appConn <- c
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(length)+"\r\n\r\n"+strings.Repeat("x", 10))
			io.Copy(io.Discard, br) // stall until the gateway closes (or the test ends)
		})
		d := newDirect(t, proto, addr, nil)
		t.Cleanup(func() { // first: let the stuck gateway go before it is shut down
			select {
			case c := <-appConn:
				c.Close()
			default:
			}
		})
		// The gateway may keep a Content-Length answer's first bytes until
		// more come: the client sees nothing, or 10 bytes, and gives up.
		if proto == "h1" {
			conn, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
			io.WriteString(conn, "GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err == nil {
				io.ReadFull(resp.Body, make([]byte, 10))
			}
			conn.Close()
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			req, _ := http.NewRequestWithContext(ctx, "GET", protoURL(proto, d.addr)+"/stall", nil)
			resp, err := protoClient(t, proto).Do(req)
			if err == nil {
				io.ReadFull(resp.Body, make([]byte, 11)) // until the context ends
				resp.Body.Close()
			}
			cancel()
		}
		d.waitIdle(t)
	})
}

// A body read from the socket leaves a read deadline (request_timeout
// after the read) armed on the app's connection when it goes back to the
// pool. Once it has passed, the peek before reuse must still see the
// bytes the app sent unasked after the response, and not read them as
// the next request's answer: another user's.
func TestExpiredBodyDeadlineDefeatsReusePeek(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		var n sync.Mutex
		count := 0
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				n.Lock()
				count++
				first := count == 1
				n.Unlock()
				if !first {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
					continue
				}
				// The body in a second segment, so that the gateway reads it
				// from the socket; then, a moment later, bytes nobody asked for.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
				time.Sleep(30 * time.Millisecond)
				io.WriteString(c, "ok")
				time.Sleep(100 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
			}
		})
		d := newDirect(t, proto, addr, func(a *config.App) {
			a.RequestTimeout = config.Duration(300 * time.Millisecond)
			a.UpstreamIdleTimeout = config.Duration(4 * time.Second)
		})
		c := protoClient(t, proto)
		for i, want := range []string{"ok", "good"} {
			if i == 1 {
				time.Sleep(700 * time.Millisecond) // idle, past the armed deadline
			}
			resp, err := c.Get(protoURL(proto, d.addr) + "/" + fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != want {
				t.Errorf("request %d got %q, want %q: bytes sent after another response were served", i, b, want)
			}
		}
		d.waitIdle(t)
	})
}

// A client that closes an upgraded connection outright, to an app that
// neither reads nor writes for now (a push channel with nothing to push):
// the tunnel ends and the member is let go, however long the app stays
// silent.
func TestUpgradeClientCloseToSilentAppReleases(t *testing.T) {
	eachWire(t, h1Wires, func(t *testing.T, w wire) {
		stop := make(chan struct{})
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			<-stop // silent until the test ends
		})
		d := directWith(t, addr, w.frontOptions(), nil)
		t.Cleanup(func() { close(stop) })
		conn, err := dialH1(w, d.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		conn.Close()
		d.waitIdle(t)
	})
}
