package gateway_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A response followed by bytes nobody asked for must not leave those
// bytes to be read as the answer to the next request on the connection.
func TestUnsolicitedBytesNotReusedAsNextResponse(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		var n atomic.Int32
		addr := rawApp(t, func(c net.Conn, req *http.Request, body []byte) {
			if n.Add(1) == 1 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+
					"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
			} else {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
			}
		})
		d := newDirect(t, proto, addr, nil)
		c := protoClient(t, proto)
		for i, want := range []string{"ok", "good"} {
			if _, b := fetchGet(t, c, protoURL(proto, d.addr)+"/"+fmt.Sprint(i)); b != want {
				t.Errorf("request %d got %q, want %q: a response meant for no one was served", i, b, want)
			}
		}
		d.waitIdle(t)
	})
}

// A WebSocket upgrade reaches the app with Connection: Upgrade, as real
// servers (gorilla, Node's http) require, and the 101 passes through. An
// upgrade is HTTP/1.1's.
func TestUpgradeKeepsConnectionHeader(t *testing.T) {
	t.Parallel()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "not a websocket handshake: Connection "+r.Header.Get("Connection"), http.StatusBadRequest)
			return
		}
		if c, brw := acceptWebsocket(w); c != nil {
			defer c.Close()
			io.Copy(c, brw)
		}
	}))
	t.Cleanup(app.Close)
	d := newDirect(t, "h1", strings.TrimPrefix(app.URL, "http://"), nil)
	c := dialPlain(t, d.addr)
	c.send("GET /ws HTTP/1.1\r\nHost: x\r\n" + wsUpgrade)
	resp, body, err := c.resp(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %d %q, want 101", resp.StatusCode, body)
	}
	c.send("ping")
	got := make([]byte, 4)
	if _, err := io.ReadFull(c.br, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	c.close()
	d.waitIdle(t)
}

// An app that answers 101 to a request that asked for no upgrade gets a
// bad_response, and the member and connection are let go.
func TestUnaskedSwitchingProtocolsReleasesMember(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		addr := rawFirst(t, func(c net.Conn, br *bufio.Reader) {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n")
			io.Copy(io.Discard, c)
		})
		d := newDirect(t, proto, addr, nil)
		resp, err := protoClient(t, proto).Get(protoURL(proto, d.addr) + "/plain")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Gatehouse-Cause") != "bad_response" {
			t.Errorf("got %d %q, want 502 bad_response", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
		}
		d.waitIdle(t)
	})
}

// A client that stops sending its (streamed) request body is the client's
// failure, not the app's: no upstream_reset blamed on the instance, and no
// made-up 200 either. Over HTTP/1.1 the client half-closes its connection
// mid-body; over HTTP/2 it resets the stream mid-body.
func TestClientBodyCutShortIsNotUpstreamReset(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}))
		t.Cleanup(app.Close)
		d := newDirect(t, proto, strings.TrimPrefix(app.URL, "http://"), func(a *config.App) { a.RetryBodyLimit = 1 << 10 })
		part := strings.Repeat("a", 4000)
		var status int
		var cause string
		if proto == "h1" {
			c := dialPlain(t, d.addr)
			c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + part)
			c.tcp().CloseWrite()
			if resp, _, err := c.resp(5 * time.Second); resp != nil {
				status, cause = resp.StatusCode, resp.Header.Get("Gatehouse-Cause")
			} else {
				t.Logf("no answer: %v", err)
			}
		} else {
			// The body fails after part: the client resets the stream.
			body := &cutBody{part: part}
			req, _ := http.NewRequest("POST", protoURL(proto, d.addr)+"/upload", body)
			req.ContentLength = 100000
			if resp, err := protoClient(t, proto).Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status, cause = resp.StatusCode, resp.Header.Get("Gatehouse-Cause")
			}
		}
		if cause == "upstream_reset" || cause == "stale_connection" || status == 200 {
			t.Errorf("client cut its body short; it was answered %d %q", status, cause)
		}
		e := d.entry(t, "/upload")
		if e.Cause != "client_closed" {
			t.Errorf("access entry: cause %q status %d (%s), want client_closed", e.Cause, e.Status, e.Detail)
		}
		d.waitIdle(t)
	})
}

// cutBody is a request body that yields part and then fails, as a client
// that gives up on its upload.
type cutBody struct {
	part string
	done bool
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.done || len(b.part) == 0 {
		return 0, errors.New("the client gave up on its upload")
	}
	n := copy(p, b.part)
	b.part = b.part[n:]
	if len(b.part) == 0 {
		b.done = true
	}
	return n, nil
}

// A malformed chunked request body is the client's failure: answered 400
// bad_request and logged so, never with a 200 the app did not send, nor
// blamed on the instance (or on a client that left), whether the body was
// small enough to be kept for replay or streamed past the limit. Chunked
// framing is HTTP/1.1's.
func TestMalformedChunkedBody(t *testing.T) {
	t.Parallel()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(201)
	}))
	t.Cleanup(app.Close)
	d := newDirect(t, "h1", strings.TrimPrefix(app.URL, "http://"), func(a *config.App) { a.RetryBodyLimit = 1 << 10 })
	for _, size := range []int{10, 4000} {
		path := fmt.Sprintf("/chunked-%d", size)
		c := dialPlain(t, d.addr)
		c.send(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\nhello\r\n0\r\n\r\n", path, size, strings.Repeat("a", size)))
		resp, _, err := c.resp(5 * time.Second)
		if err != nil || resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Gatehouse-Cause") != "bad_request" {
			t.Errorf("%d-byte chunk then a malformed one: answered %v %v, want 400 bad_request", size, resp, err)
		}
		if e := d.entry(t, path); e.Cause != "bad_request" || e.Status != http.StatusBadRequest {
			t.Errorf("%d-byte chunk then a malformed one: access entry cause %q status %d, want bad_request 400", size, e.Cause, e.Status)
		}
	}
	d.waitIdle(t)
}

// POST, PUT and PATCH without a body still say Content-Length: 0, as
// http.Transport does; some servers answer 411 otherwise.
func TestEmptyPostSendsContentLength(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		var got []string
		var mu sync.Mutex
		addr := rawApp(t, func(c net.Conn, req *http.Request, body []byte) {
			mu.Lock()
			got = append(got, req.Method+" "+strings.Join(req.Header["Content-Length"], ","))
			mu.Unlock()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		})
		d := newDirect(t, proto, addr, nil)
		c := protoClient(t, proto)
		for _, m := range []string{"POST", "PUT", "PATCH"} {
			req, _ := http.NewRequest(m, protoURL(proto, d.addr)+"/e", http.NoBody)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 3 {
			t.Errorf("app saw %q; want the three requests", got)
		}
		for _, g := range got {
			if !strings.HasSuffix(g, " 0") {
				t.Errorf("app saw %q; want Content-Length: 0", g)
			}
		}
		d.waitIdle(t)
	})
}

// An app that refuses a large upload (413, 401) without reading it, and
// closes, has answered: the client gets that answer, not a 502.
func TestEarlyResponseToLargeUploadKept(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		addr := rawFirst(t, func(c net.Conn, br *bufio.Reader) {
			io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large")
			c.(*net.TCPConn).CloseWrite()
			// Closed with the upload unread, the socket resets; the reset
			// comes after the answer, which the gateway can still read.
		})
		d := newDirect(t, proto, addr, func(a *config.App) { a.RetryBodyLimit = 64 << 20 })
		c := protoClient(t, proto)
		c.Timeout = time.Minute
		// Larger than the sockets between the gateway and the app hold,
		// so that the gateway is still sending when the reset comes. A
		// quarter as much under the race detector, which makes every
		// byte's path through the gateway some 17 times slower.
		size := 32 << 20
		if raceEnabled {
			size = 8 << 20
		}
		req, _ := http.NewRequest("POST", protoURL(proto, d.addr)+"/upload", strings.NewReader(strings.Repeat("x", size)))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, b := fetch(t, c, req)
		if resp.StatusCode != 413 {
			t.Errorf("got %d %q %q, want the app's 413", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), b)
		}
		d.waitIdle(t)
	})
}
