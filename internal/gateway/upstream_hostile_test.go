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
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// limits.response_head below the upstream reader's 4 KiB buffer is
// enforced: a head up to the buffer's size that arrives in one read is
// measured too, whatever its framing.
func TestResponseHeadLimitBelowBuffer(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("a", 3000) // a 3 KiB head against a 1 KiB limit
	framings := []struct{ name, rest string }{
		{"content-length", "Content-Length: 2\r\n\r\nok"},
		{"chunked", "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{"bare LF", "Content-Length: 2\n\nok"}, // no CRLF CRLF to measure the head by
	}
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		for _, framing := range framings {
			t.Run(framing.name, func(t *testing.T) {
				addr := rawApp(t, func(c net.Conn, req *http.Request, body []byte) {
					eol := "\r\n"
					if strings.HasSuffix(framing.rest, "\n\nok") {
						eol = "\n"
					}
					io.WriteString(c, "HTTP/1.1 200 OK"+eol+"X-Big: "+big+eol+framing.rest)
				})
				d := newDirect(t, proto, addr, func(a *config.App) { a.Limits.ResponseHead = 1 << 10 })
				if resp, _ := fetchGet(t, protoClient(t, proto), protoURL(proto, d.addr)+"/big"); resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Gatehouse-Cause") != "bad_response" {
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
		addr := rawApp(t, func(c net.Conn, req *http.Request, body []byte) {
			mu.Lock()
			got = len(body)
			mu.Unlock()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
		d := newDirect(t, proto, addr, func(a *config.App) {
			a.RequestTimeout = config.Duration(400 * time.Millisecond)
			a.RetryBodyLimit = 1 << 10 // stream it
		})
		const size = 12 << 10
		req, _ := http.NewRequest("PUT", protoURL(proto, d.addr)+"/upload", &slowBody{n: size, piece: 1 << 10, pause: 80 * time.Millisecond})
		req.ContentLength = size
		resp, _ := fetch(t, protoClient(t, proto), req)
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
	t.Parallel()
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		addr := rawFirst(t, func(c net.Conn, br *bufio.Reader) {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			b, _ := io.ReadAll(br) // until the client's half-close
			io.WriteString(c, "got "+string(b))
		})
		d := directWith(t, addr, w.frontOptions(), nil)
		c := dialRawOver(t, w, d.addr)
		c.c.SetDeadline(time.Now().Add(5 * time.Second))
		c.send("GET /ws HTTP/1.1\r\nHost: x\r\n" + wsUpgrade)
		c.upgraded()
		c.send("ping")
		if err := c.c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		rest, _ := io.ReadAll(c.br)
		if string(rest) != "got ping" {
			t.Errorf("after the client's half-close it got %q, want the app's %q", rest, "got ping")
		}
		c.close()
		d.waitIdle(t)
	})
}

// A client that leaves while the app stalls in the middle of a body with a
// Content-Length lets go of the member and the app's connection at once,
// not when the app writes again: over HTTP/1.1 it closes its connection,
// over HTTP/2 it resets the stream. So for a short body, which the
// gateway reads whole before it writes any, as for a long one it streams.
func TestClientGoneDuringStalledLengthBodyReleases(t *testing.T) {
	t.Parallel()
	for _, length := range []int{3000, 100000} {
		t.Run(strconv.Itoa(length), func(t *testing.T) { t.Parallel(); clientGoneDuringStalledBody(t, length) })
	}
}

func clientGoneDuringStalledBody(t *testing.T, length int) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		appConn := make(chan net.Conn, 1)
		addr := rawFirst(t, func(c net.Conn, br *bufio.Reader) {
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
			c := dialRaw(t, d.addr)
			c.c.SetDeadline(time.Now().Add(300 * time.Millisecond))
			c.send("GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, err := http.ReadResponse(c.br, nil); err == nil {
				io.ReadFull(resp.Body, make([]byte, 10))
			}
			c.close()
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
		// firstDone hands the app the gateway once the first answer was
		// read (nil: the test ended first).
		firstDone := make(chan *direct, 1)
		addr := rawApp(t, func(c net.Conn, req *http.Request, body []byte) {
			n.Lock()
			count++
			first := count == 1
			n.Unlock()
			if !first {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
				return
			}
			// The body in a second segment, once the gateway has read the
			// head, so that it reads the body from the socket; then, once
			// the gateway has let the connection go, bytes nobody asked
			// for.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
			testutil.AwaitPeerRead(c, 0, 3*time.Second)
			io.WriteString(c, "ok")
			if d := <-firstDone; d != nil {
				testutil.Eventually(3*time.Second, func() bool { return d.m.Inflight() == 0 })
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
		})
		d := newDirect(t, proto, addr, func(a *config.App) {
			a.RequestTimeout = config.Duration(300 * time.Millisecond)
			a.UpstreamIdleTimeout = config.Duration(4 * time.Second)
		})
		t.Cleanup(func() { close(firstDone) })
		c := protoClient(t, proto)
		for i, want := range []string{"ok", "good"} {
			if i == 1 {
				firstDone <- d
				// Time must pass: the connection idles past the deadline
				// its body read armed.
				time.Sleep(700 * time.Millisecond)
			}
			if _, b := fetchGet(t, c, protoURL(proto, d.addr)+"/"+fmt.Sprint(i)); b != want {
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
	t.Parallel()
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		stop := make(chan struct{})
		addr := rawFirst(t, func(c net.Conn, br *bufio.Reader) {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			<-stop // silent until the test ends
		})
		d := directWith(t, addr, w.frontOptions(), nil)
		t.Cleanup(func() { close(stop) })
		c := dialRawOver(t, w, d.addr)
		c.c.SetDeadline(time.Now().Add(5 * time.Second))
		c.send("GET /ws HTTP/1.1\r\nHost: x\r\n" + wsUpgrade)
		c.upgraded()
		c.close()
		d.waitIdle(t)
	})
}
