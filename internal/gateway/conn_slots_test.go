package gateway_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
)

// sampleApp answers by path: /upgrade switches to a line echo, /sse
// streams two events 2 s apart and /chunks two lines, /hints sends 103
// then 200, /big 64 MiB, /echoid answers with the request's X-Request-Id,
// /slow after 600 ms; anything else reads the body and answers its size.
func sampleApp(t *testing.T) string {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upgrade":
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					return
				}
				brw.WriteString("echo " + line)
				if brw.Flush() != nil {
					return
				}
			}
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(2 * time.Second):
			}
			io.WriteString(w, "data: 2\n\n")
		case "/chunks":
			io.WriteString(w, "first\n")
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(2 * time.Second):
			}
			io.WriteString(w, "second\n")
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
		case "/big":
			buf := make([]byte, 64<<10)
			for range 1024 { // 64 MiB
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		case "/echoid":
			w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
			io.WriteString(w, "ok")
		case "/slow":
			io.Copy(io.Discard, r.Body)
			time.Sleep(600 * time.Millisecond)
			io.WriteString(w, "slow")
		default:
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			fmt.Fprintf(w, "%s %s body=%d", r.Method, r.URL.Path, len(b))
		}
	}))
	t.Cleanup(app.Close)
	return strings.TrimPrefix(app.URL, "http://")
}

// countingHandler is the gateway with a panic on /panic and a count of
// the requests it serves at once.
type countingHandler struct {
	gw              *gateway.Gateway
	active, maxSeen atomic.Int32
}

func (h *countingHandler) enter() func() {
	n := h.active.Add(1)
	for {
		m := h.maxSeen.Load()
		if n <= m || h.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { h.active.Add(-1) }
}

func (h *countingHandler) Serve(x *front.Exchange) {
	if x.Reject == nil && x.Req.URL.Path == "/upgrade" {
		// Not counted: a tunnel is no request the slot test follows.
		h.gw.Serve(x)
		return
	}
	defer h.enter()()
	if x.Reject == nil && x.Req.URL.Path == "/panic" {
		panic("countingHandler: /panic")
	}
	h.gw.Serve(x)
}

// countedFront is a front serving a countingHandler.
type countedFront struct {
	addr string
	f    *front.Server
	h    *countingHandler
	m    *pool.Member
}

// serveCounted serves a gateway in front of app with the front's opts;
// adjust changes the app's config.
func serveCounted(t *testing.T, app string, opts front.Options, adjust func(*config.App)) *countedFront {
	t.Helper()
	gw, m := oneMember(t, app, adjust, gateway.Options{})
	s := &countedFront{h: &countingHandler{gw: gw}, m: m}
	s.f, s.addr = serveWith(t, s.h, opts)
	return s
}

// rawConn is a client connection that writes HTTP/1.1 bytes itself.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dialRaw opens a plain connection to addr; dialRawOver one over w.
func dialRaw(t *testing.T, addr string) *rawConn { t.Helper(); return dialRawOver(t, wireH1, addr) }

func dialRawOver(t *testing.T, w wire, addr string) *rawConn {
	t.Helper()
	c, err := dialH1(w, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(s string) {
	c.c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c.c, s)
}

// resp reads one response (interim ones included) within d.
func (c *rawConn) resp(d time.Duration) (*http.Response, string, error) {
	c.c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode < 200 || resp.StatusCode == 101 {
		return resp, "", nil
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func (c *rawConn) final(d time.Duration) (*http.Response, string, error) {
	for {
		resp, body, err := c.resp(d)
		if err != nil || resp.StatusCode >= 200 {
			return resp, body, err
		}
	}
}

func (c *rawConn) close() { c.c.Close() }

// tcp is the TCP connection under c (under its TLS, if any).
func (c *rawConn) tcp() *net.TCPConn {
	if tc, ok := c.c.(*tls.Conn); ok {
		return tc.NetConn().(*net.TCPConn)
	}
	return c.c.(*net.TCPConn)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// With max_connections 1, every odd way an HTTP/1.1 connection can go
// leaves the slot free for the next one, and no two connections are ever
// served at once.
func TestSlotsOddClients(t *testing.T) {
	app := sampleApp(t)
	odd := []struct {
		name string
		run  func(t *testing.T, addr string)
	}{
		{"vanish mid-head", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /x HTTP/1.1\r\nHo")
			time.Sleep(50 * time.Millisecond)
			c.close()
		}},
		{"vanish mid-head after a kept-alive request", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
			c.final(3 * time.Second)
			c.send("GET /x HTTP/1.1\r\nHo")
			time.Sleep(50 * time.Millisecond)
			c.close()
		}},
		{"silent then gone", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			time.Sleep(50 * time.Millisecond)
			c.close()
		}},
		{"bare LF", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /x HTTP/1.1\nHost: a\n\n")
			c.final(3 * time.Second)
			c.close()
		}},
		{"head too large", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 12<<10) + "\r\n\r\n")
			c.final(3 * time.Second)
			c.close()
		}},
		{"h2 preface", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
			c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
			io.Copy(io.Discard, c.c)
			c.close()
		}},
		{"chunked, vanish mid-body", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
			time.Sleep(100 * time.Millisecond)
			c.close()
		}},
		{"chunked, complete", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
			c.final(3 * time.Second)
			c.close()
		}},
		{"expect, vanish", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
			c.resp(2 * time.Second)
			c.close()
		}},
		{"http/1.0", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /a HTTP/1.0\r\nHost: a\r\n\r\n")
			c.final(3 * time.Second)
		}},
		{"content-length body, vanish mid-body", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
			time.Sleep(100 * time.Millisecond)
			c.close()
		}},
		{"upgrade conversation", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			resp, _, err := c.resp(3 * time.Second)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			c.send("hi\n")
			c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if l, err := c.br.ReadString('\n'); l != "echo hi\n" {
				t.Fatalf("echo %q %v", l, err)
			}
			c.close()
		}},
		{"upgrade, half-close", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			c.resp(3 * time.Second)
			c.c.(*net.TCPConn).CloseWrite()
			c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.Copy(io.Discard, c.c)
		}},
		{"upgrade, vanish at once", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			c.close()
		}},
		{"panic, own loop", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
			c.final(3 * time.Second)
		}},
		{"panic, chunked", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("POST /panic HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
			c.final(3 * time.Second)
		}},
		{"pipelined plain then chunked", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
			c.final(3 * time.Second)
			c.final(3 * time.Second)
			c.close()
		}},
		{"gone while the app works", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
			time.Sleep(100 * time.Millisecond)
			c.close()
		}},
		{"gone during a stream", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /sse HTTP/1.1\r\nHost: a\r\n\r\n")
			c.resp(3 * time.Second)
			c.close()
		}},
		{"request, then close without reading", func(t *testing.T, addr string) {
			c := dialRaw(t, addr)
			c.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
			c.close()
		}},
	}
	s := serveCounted(t, app, front.Options{MaxConnections: 1, HeadLimit: 8 << 10, HeadTimeout: 5 * time.Second}, nil)
	for _, o := range odd {
		o.run(t, s.addr)
		probe := dialRaw(t, s.addr)
		probe.send("GET /probe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		resp, body, err := probe.final(6 * time.Second)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("after %q the next connection got no answer (%v %q %v): its slot was not given back", o.name, resp, body, err)
		}
		probe.close()
	}
	// No slot was given back twice: a request held on one connection
	// keeps a second from being served.
	hold := dialRaw(t, s.addr)
	hold.send("GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	other := dialRaw(t, s.addr)
	other.send("GET /other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	start := time.Now()
	if resp, _, err := other.final(6 * time.Second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second connection: %v %v", resp, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("a second connection was answered in %v while the first held the only slot", took)
	}
	if m := s.h.maxSeen.Load(); m > 1 {
		t.Errorf("%d requests were served at once with max_connections 1", m)
	}
	hold.close()
}

// A request answered while its body was unread does not leave the next
// request on the connection to start in the middle of that body, however
// the body arrives.
func TestPipelinedAfterUnreadBody(t *testing.T) {
	app := sampleApp(t)
	evil := "GET /evil HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name   string
		pieces []string
	}{
		{"all at once", []string{"POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(evil)) + "\r\n\r\n" + evil + "GET /app/next HTTP/1.1\r\nHost: a\r\n\r\n"}},
		{"body late", []string{"POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(evil)) + "\r\n\r\n", evil[:5], evil[5:] + "GET /app/next HTTP/1.1\r\nHost: a\r\n\r\n"}},
		{"CRLF then body", []string{"POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(evil)+2) + "\r\n\r\n", "\r\n" + evil, "GET /app/next HTTP/1.1\r\nHost: a\r\n\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serveCounted(t, app, front.Options{}, func(a *config.App) { a.Routes = []string{"/app/"} })
			c := dialRaw(t, s.addr)
			for i, p := range tc.pieces {
				c.send(p)
				if i == 0 {
					resp, _, err := c.final(3 * time.Second)
					if err != nil || resp.StatusCode != 404 {
						t.Fatalf("first: %v %v", resp, err)
					}
				} else {
					time.Sleep(100 * time.Millisecond)
				}
			}
			resp, body, err := c.final(3 * time.Second)
			if err != nil {
				if isTimeout(err) || err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
					return // closed: acceptable
				}
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || body != "GET /app/next body=0" {
				t.Errorf("the request after an unread body got %d %q", resp.StatusCode, body)
			}
		})
	}
}

// A client that asks for a large answer and never reads it does not hold
// its connection slot for ever: send_timeout bounds the write, on the
// plain listener and through TLS.
func TestNonReadingClientHoldsSlot(t *testing.T) {
	app := sampleApp(t)
	eachWire(t, h1Wires, func(t *testing.T, w wire) {
		s := serveCounted(t, app, withOpts(w, front.Options{MaxConnections: 1, SendTimeout: 500 * time.Millisecond}), nil)
		c := dialRawOver(t, w, s.addr)
		c.tcp().SetReadBuffer(4 << 10)
		c.send("GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		time.Sleep(500 * time.Millisecond)
		other := dialRawOver(t, w, s.addr)
		other.send("GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if _, _, err := other.final(4 * time.Second); err != nil {
			t.Errorf("a client that stopped reading its answer has held the only slot for 4 s (no write timeout): %v", err)
		}
		c.close()
	})
}
