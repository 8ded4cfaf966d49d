package gateway_test

import (
	"bufio"
	"context"
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

// r3App is the app of the third review: /upgrade switches to a line echo,
// /sse streams two events 2 s apart, /hints sends 103 then 200, /slow
// answers after 600 ms, anything else reads the body and answers its size.
func r3App(t *testing.T) string {
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

// r3Handler is the gateway with a panic on /panic and a count of the
// requests it serves at once.
type r3Handler struct {
	gw              *gateway.Gateway
	active, maxSeen atomic.Int32
}

func (h *r3Handler) enter() func() {
	n := h.active.Add(1)
	for {
		m := h.maxSeen.Load()
		if n <= m || h.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { h.active.Add(-1) }
}

func (h *r3Handler) Serve(x *front.Exchange) {
	if x.Reject == nil && x.Req.URL.Path == "/upgrade" {
		// Not counted: a tunnel is no request the slot test follows.
		h.gw.Serve(x)
		return
	}
	defer h.enter()()
	if x.Reject == nil && x.Req.URL.Path == "/panic" {
		panic("review3: boom")
	}
	h.gw.Serve(x)
}

type r3Server struct {
	addr string
	f    *front.Server
	h    *r3Handler
	m    *pool.Member
}

// r3Serve serves a gateway in front of app with the front's opts; adjust
// changes the app's config.
func r3Serve(t *testing.T, app string, opts front.Options, adjust func(*config.App)) *r3Server {
	t.Helper()
	gw, m := oneMember(t, app, adjust, gateway.Options{})
	s := &r3Server{h: &r3Handler{gw: gw}, m: m}
	s.f, s.addr = serveWith(t, s.h, opts)
	return s
}

type r3Client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func r3Dial(t *testing.T, addr string) *r3Client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &r3Client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *r3Client) send(s string) {
	c.c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c.c, s)
}

// resp reads one response (interim ones included) within d.
func (c *r3Client) resp(d time.Duration) (*http.Response, string, error) {
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

func (c *r3Client) final(d time.Duration) (*http.Response, string, error) {
	for {
		resp, body, err := c.resp(d)
		if err != nil || resp.StatusCode >= 200 {
			return resp, body, err
		}
	}
}

func (c *r3Client) close() { c.c.Close() }

func r3Engines(t *testing.T, f func(t *testing.T, fallback bool)) {
	t.Run("h1", func(t *testing.T) { f(t, false) })
}

// With max_connections 1, every odd way a connection can go leaves the
// slot free for the next one, and no two connections are ever served at
// once.
func TestSlotsOddClients(t *testing.T) {
	app := r3App(t)
	odd := []struct {
		name string
		run  func(t *testing.T, addr string)
	}{
		{"vanish mid-head", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /x HTTP/1.1\r\nHo")
			time.Sleep(50 * time.Millisecond)
			c.close()
		}},
		{"vanish mid-head after a kept-alive request", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
			c.final(3 * time.Second)
			c.send("GET /x HTTP/1.1\r\nHo")
			time.Sleep(50 * time.Millisecond)
			c.close()
		}},
		{"silent then gone", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			time.Sleep(50 * time.Millisecond)
			c.close()
		}},
		{"bare LF", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /x HTTP/1.1\nHost: a\n\n")
			c.final(3 * time.Second)
			c.close()
		}},
		{"head too large", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 12<<10) + "\r\n\r\n")
			c.final(3 * time.Second)
			c.close()
		}},
		{"h2 preface", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
			c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
			io.Copy(io.Discard, c.c)
			c.close()
		}},
		{"chunked, vanish mid-body", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
			time.Sleep(100 * time.Millisecond)
			c.close()
		}},
		{"chunked, complete", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
			c.final(3 * time.Second)
			c.close()
		}},
		{"expect, vanish", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
			c.resp(2 * time.Second)
			c.close()
		}},
		{"http/1.0", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /a HTTP/1.0\r\nHost: a\r\n\r\n")
			c.final(3 * time.Second)
		}},
		{"content-length body, vanish mid-body", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
			time.Sleep(100 * time.Millisecond)
			c.close()
		}},
		{"upgrade conversation", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
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
			c := r3Dial(t, addr)
			c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			c.resp(3 * time.Second)
			c.c.(*net.TCPConn).CloseWrite()
			c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.Copy(io.Discard, c.c)
		}},
		{"upgrade, vanish at once", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			c.close()
		}},
		{"panic, own loop", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
			c.final(3 * time.Second)
		}},
		{"panic, chunked", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("POST /panic HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
			c.final(3 * time.Second)
		}},
		{"pipelined plain then chunked", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
			c.final(3 * time.Second)
			c.final(3 * time.Second)
			c.close()
		}},
		{"gone while the app works", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
			time.Sleep(100 * time.Millisecond)
			c.close()
		}},
		{"gone during a stream", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /sse HTTP/1.1\r\nHost: a\r\n\r\n")
			c.resp(3 * time.Second)
			c.close()
		}},
		{"request, then close without reading", func(t *testing.T, addr string) {
			c := r3Dial(t, addr)
			c.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
			c.close()
		}},
	}
	r3Engines(t, func(t *testing.T, fallback bool) {
		s := r3Serve(t, app, front.Options{MaxConnections: 1, HeadLimit: 8 << 10, HeadTimeout: 5 * time.Second}, nil)
		for _, o := range odd {
			o.run(t, s.addr)
			probe := r3Dial(t, s.addr)
			probe.send("GET /probe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			resp, body, err := probe.final(6 * time.Second)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("after %q the next connection got no answer (%v %q %v): its slot was not given back", o.name, resp, body, err)
			}
			probe.close()
		}
		// No slot was given back twice: a request held on one connection
		// keeps a second from being served.
		hold := r3Dial(t, s.addr)
		hold.send("GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		time.Sleep(100 * time.Millisecond)
		other := r3Dial(t, s.addr)
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
	})
}

// A request whose head is arriving when Shutdown begins is in flight: it
// is answered (Connection: close) on both engines, whichever path serves
// it, and Shutdown returns.
func TestShutdownHeadInFlight(t *testing.T) {
	app := r3App(t)
	cases := []struct {
		name, first, rest string
	}{
		{"plain GET", "GET /a HTTP/1.1\r\nHo", "st: a\r\n\r\n"},
		{"chunked POST (handed off)", "POST /a HTTP/1.1\r\nHo", "st: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
		{"HTTP/1.0 (handed off)", "GET /a HTTP/1.0\r\nHo", "st: a\r\n\r\n"},
	}
	r3Engines(t, func(t *testing.T, fallback bool) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := r3Serve(t, app, front.Options{HeadTimeout: 5 * time.Second}, nil)
				c := r3Dial(t, s.addr)
				c.send(tc.first)
				time.Sleep(150 * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				shut := make(chan error, 1)
				go func() { shut <- s.f.Shutdown(ctx) }()
				time.Sleep(150 * time.Millisecond)
				c.send(tc.rest)
				resp, body, err := c.final(4 * time.Second)
				if err != nil {
					t.Errorf("a request whose head was arriving when Shutdown began got no answer: %v", err)
				} else if resp.StatusCode != 200 || !resp.Close {
					t.Errorf("got %d %q close=%v, want 200 with Connection: close", resp.StatusCode, body, resp.Close)
				}
				select {
				case err := <-shut:
					if err != nil {
						t.Errorf("Shutdown: %v", err)
					}
				case <-time.After(6 * time.Second):
					t.Fatal("Shutdown did not return")
				}
			})
		}
	})
}

// Requests in flight when Shutdown begins finish with Connection: close on
// both engines; an idle keep-alive connection is closed; Shutdown returns.
func TestShutdownInFlight(t *testing.T) {
	app := r3App(t)
	r3Engines(t, func(t *testing.T, fallback bool) {
		s := r3Serve(t, app, front.Options{}, nil)
		idle := r3Dial(t, s.addr)
		if !fallback {
			idle.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
			if _, _, err := idle.final(3 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
		plain := r3Dial(t, s.addr)
		plain.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		handed := r3Dial(t, s.addr)
		handed.send("POST /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
		time.Sleep(200 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- s.f.Shutdown(ctx) }()
		for name, c := range map[string]*r3Client{"plain": plain, "handed off": handed} {
			resp, body, err := c.final(4 * time.Second)
			if err != nil || resp.StatusCode != 200 || !resp.Close {
				t.Errorf("%s in flight: %v %q %v; want 200 with Connection: close", name, resp, body, err)
			}
		}
		idle.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := idle.br.ReadByte(); err == nil || isTimeout(err) {
			t.Errorf("the idle connection was not closed by Shutdown: %v", err)
		}
		select {
		case err := <-shut:
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		case <-time.After(6 * time.Second):
			t.Fatal("Shutdown did not return")
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// An upgraded conversation through net/http outlives lingerWait's read
// deadline and any other: messages 300 ms apart for 1.5 s all come back.
func TestUpgradeLongLived(t *testing.T) {
	app := r3App(t)
	r3Engines(t, func(t *testing.T, fallback bool) {
		s := r3Serve(t, app, front.Options{HeadTimeout: 400 * time.Millisecond, KeepaliveTimeout: 400 * time.Millisecond, BodyTimeout: 400 * time.Millisecond}, nil)
		c := r3Dial(t, s.addr)
		c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		resp, _, err := c.resp(3 * time.Second)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		if resp.Close || resp.Header.Get("Connection") == "close" {
			t.Errorf("the 101 says Connection: close: %v", resp.Header)
		}
		for i := range 6 {
			time.Sleep(300 * time.Millisecond)
			msg := fmt.Sprintf("m%d\n", i)
			c.send(msg)
			c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if l, err := c.br.ReadString('\n'); l != "echo "+msg {
				t.Fatalf("after %v the conversation broke: %q %v", time.Duration(i+1)*300*time.Millisecond, l, err)
			}
		}
		c.close()
	})
}

// Streams are flushed as they come on both engines, and when the request
// is handed off by the front (a chunked upload).
func TestStreamsFlush(t *testing.T) {
	app := r3App(t)
	r3Engines(t, func(t *testing.T, fallback bool) {
		s := r3Serve(t, app, front.Options{}, nil)
		for _, req := range []string{
			"GET /sse HTTP/1.1\r\nHost: a\r\n\r\n",
			"GET /chunks HTTP/1.1\r\nHost: a\r\n\r\n",
			"POST /sse HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			"POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		} {
			c := r3Dial(t, s.addr)
			start := time.Now()
			c.send(req)
			c.c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatalf("%q: head not flushed: %v", req, err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Errorf("%q: first piece not flushed within 1.5 s: %v", req, err)
			} else if took := time.Since(start); took > time.Second {
				t.Errorf("%q: first piece after %v", req, took)
			}
			c.close()
		}
	})
}

// A 103 is passed through without Connection: close, and the final answer
// still carries the request id, on both engines.
func TestEarlyHints(t *testing.T) {
	app := r3App(t)
	r3Engines(t, func(t *testing.T, fallback bool) {
		s := r3Serve(t, app, front.Options{}, nil)
		c := r3Dial(t, s.addr)
		c.send("GET /hints HTTP/1.1\r\nHost: a\r\nX-Request-Id: review3-id\r\n\r\n")
		resp, _, err := c.resp(3 * time.Second)
		if err != nil || resp.StatusCode != 103 {
			t.Fatalf("first answer %v %v, want 103", resp, err)
		}
		if resp.Header.Get("Connection") != "" || resp.Header.Get("Link") == "" {
			t.Errorf("103 header %v", resp.Header)
		}
		final, body, err := c.final(3 * time.Second)
		if err != nil || final.StatusCode != 200 || body != "ok" {
			t.Fatalf("final %v %q %v", final, body, err)
		}
		if got := final.Header.Get("X-Request-Id"); got != "review3-id" {
			t.Errorf("final answer after a 103 has X-Request-Id %q, want review3-id (header %v)", got, final.Header)
		}
		if final.Header.Get("Link") != "" {
			t.Errorf("the 103's Link leaked into the final answer: %v", final.Header)
		}
	})
}

// An app's body_timeout shorter than the front's cuts a stalled chunked
// upload at the app's value on both engines.
func TestAppBodyTimeout(t *testing.T) {
	app := r3App(t)
	r3Engines(t, func(t *testing.T, fallback bool) {
		for _, tc := range []struct{ name, head, part string }{
			{"chunked", "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\nabc\r\n"},
			{"content-length", "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "abc"},
			{"expect", "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n", "abc"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := r3Serve(t, app, front.Options{BodyTimeout: 20 * time.Second}, func(a *config.App) {
					a.Limits.BodyTimeout = config.Duration(300 * time.Millisecond)
				})
				c := r3Dial(t, s.addr)
				start := time.Now()
				c.send(tc.head)
				time.Sleep(50 * time.Millisecond)
				c.send(tc.part)
				resp, body, err := c.final(5 * time.Second)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("no answer within 5 s to a stalled upload with the app's body_timeout 300ms: %v", err)
				}
				if resp.StatusCode != http.StatusRequestTimeout || took > 2*time.Second {
					t.Errorf("got %d %q after %v; want 408 after ~300ms", resp.StatusCode, body, took)
				}
			})
		}
	})
}

// A request answered while its body was unread does not leave the next
// request on the connection to start in the middle of that body, however
// the body arrives.
func TestPipelinedAfterUnreadBody(t *testing.T) {
	app := r3App(t)
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
			s := r3Serve(t, app, front.Options{}, func(a *config.App) { a.Routes = []string{"/app/"} })
			c := r3Dial(t, s.addr)
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

// A client that asks for a large answer and never reads it holds its
// connection slot: nothing bounds the write.
func TestNonReadingClientHoldsSlot(t *testing.T) {
	app := r3App(t)
	r3Engines(t, func(t *testing.T, fallback bool) {
		s := r3Serve(t, app, front.Options{MaxConnections: 1, SendTimeout: 500 * time.Millisecond}, nil)
		c := r3Dial(t, s.addr)
		c.c.(*net.TCPConn).SetReadBuffer(4 << 10)
		c.send("GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		time.Sleep(500 * time.Millisecond)
		other := r3Dial(t, s.addr)
		other.send("GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if _, _, err := other.final(4 * time.Second); err != nil {
			t.Errorf("a client that stopped reading its answer has held the only slot for 4 s (no write timeout): %v", err)
		}
		c.close()
	})
}

// The app's own X-Request-Id (the same id echoed) is sent once on both
// engines.
func TestRequestIDOnce(t *testing.T) {
	app := r3App(t)
	r3Engines(t, func(t *testing.T, fallback bool) {
		s := r3Serve(t, app, front.Options{}, nil)
		c := r3Dial(t, s.addr)
		c.send("GET /echoid HTTP/1.1\r\nHost: a\r\nX-Request-Id: rid-1\r\n\r\n")
		resp, _, err := c.final(3 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "rid-1" {
			t.Errorf("X-Request-Id %q, want [rid-1]", got)
		}
	})
}

// Close ends every client connection, an upgraded one too.
func TestCloseEndsUpgraded(t *testing.T) {
	app := r3App(t)
	r3Engines(t, func(t *testing.T, fallback bool) {
		s := r3Serve(t, app, front.Options{}, nil)
		c := r3Dial(t, s.addr)
		c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if resp, _, err := c.resp(3 * time.Second); err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		closed := make(chan struct{})
		go func() { s.f.Close(); close(closed) }()
		c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := c.br.ReadByte()
		if isTimeout(err) {
			t.Errorf("an upgraded connection stays open 3 s after Close")
		}
		<-closed
		c.close()
	})
}
