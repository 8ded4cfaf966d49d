package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// limBodyApp records, per path, the length of every request body it read
// to its end, and of every one that broke, and answers "got N".
type limBodyApp struct {
	addr string

	mu     sync.Mutex
	whole  map[string][]int
	broken map[string][]int
}

func newLimBodyApp(t *testing.T) *limBodyApp {
	a := &limBodyApp{whole: map[string][]int{}, broken: map[string][]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		a.mu.Lock()
		if err != nil {
			a.broken[r.URL.Path] = append(a.broken[r.URL.Path], len(b))
		} else {
			a.whole[r.URL.Path] = append(a.whole[r.URL.Path], len(b))
		}
		a.mu.Unlock()
		fmt.Fprintf(w, "got %d", len(b))
	}))
	t.Cleanup(srv.Close)
	a.addr = strings.TrimPrefix(srv.URL, "http://")
	return a
}

func (a *limBodyApp) got(path string) (whole, broken []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.whole[path]...), append([]int(nil), a.broken[path]...)
}

func limChunked(n int) string {
	return strconv.FormatInt(int64(n), 16) + "\r\n" + strings.Repeat("x", n) + "\r\n0\r\n\r\n"
}

// An app's request_body: a body declared larger is refused before the app
// sees anything; a chunked one is cut at the limit, and the client gets
// 413 either way; a body within the limit reaches the app.
func TestLimitAppRequestBody(t *testing.T) {
	const limit = 1 << 10
	forEachEngine(t, func(t *testing.T, engine string) {
		for _, mode := range []struct {
			name  string
			retry config.Size // retry_body_limit: below the body, it streams
		}{{"buffered", 0}, {"streamed", 256}} {
			t.Run(mode.name, func(t *testing.T) {
				app := newLimBodyApp(t)
				d := newDirect(t, engine, app.addr, func(a *config.App) {
					a.Limits.RequestBody = limit
					if mode.retry > 0 {
						a.RetryBodyLimit = mode.retry
					}
				})
				tooLarge := []struct{ path, raw string }{
					{"/cl-big", "POST /cl-big HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("x", 2000)},
					{"/chunked-big", "POST /chunked-big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + limChunked(2000)},
				}
				for _, tt := range tooLarge {
					resp, body := rawExchange(t, d.addr, tt.raw)
					if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Gatehouse-Cause") != "request_too_large" {
						t.Errorf("%s: got %d (Gatehouse-Cause %q, body %.80q), want 413 request_too_large", tt.path, resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), body)
					}
					if e := d.entry(t, tt.path); e.Status != http.StatusRequestEntityTooLarge || e.Cause != "request_too_large" {
						t.Errorf("%s: access log says %d %q (%s), want 413 request_too_large", tt.path, e.Status, e.Cause, e.Detail)
					}
				}
				ok := []struct {
					path string
					raw  string
					n    int
				}{
					{"/cl-small", "POST /cl-small HTTP/1.1\r\nHost: a\r\nContent-Length: 500\r\n\r\n" + strings.Repeat("x", 500), 500},
					{"/cl-limit", "POST /cl-limit HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024), 1024},
					{"/chunked-small", "POST /chunked-small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + limChunked(500), 500},
				}
				for _, tt := range ok {
					resp, body := rawExchange(t, d.addr, tt.raw)
					if want := fmt.Sprintf("got %d", tt.n); resp.StatusCode != 200 || body != want {
						t.Errorf("%s: got %d %q, want 200 %q", tt.path, resp.StatusCode, body, want)
					}
				}
				d.waitIdle(t)
				if whole, broken := app.got("/cl-big"); len(whole)+len(broken) > 0 {
					t.Errorf("the app received a body declared larger than request_body: whole %v, broken %v", whole, broken)
				}
				whole, broken := app.got("/chunked-big")
				if len(whole) > 0 {
					t.Errorf("the app received a whole chunked body larger than request_body: %v", whole)
				}
				if mode.name == "buffered" && len(broken) > 0 {
					t.Errorf("the app received part of a chunked body larger than request_body and retry_body_limit: %v", broken)
				}
			})
		}
	})
}

// An app's body_timeout replaces the global one: a body that stalls is
// answered 408 client_timeout within it, and the app's connection and
// member are let go.
func TestLimitAppBodyTimeout(t *testing.T) {
	const bt = 300 * time.Millisecond
	forEachEngine(t, func(t *testing.T, engine string) {
		for _, mode := range []struct {
			name  string
			retry config.Size
		}{{"buffered", 0}, {"streamed", 1 << 10}} {
			t.Run(mode.name, func(t *testing.T) {
				appDone := make(chan error, 4)
				addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
					// (The head may still sit in the gateway's write buffer
					// when it gives up: then the close ends ReadRequest.)
					req, err := http.ReadRequest(br)
					if err == nil {
						_, err = io.Copy(io.Discard, req.Body)
					}
					appDone <- err // the gateway's connection ended (or the body did)
					if err == nil {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					}
				})
				d := newDirect(t, engine, addr, func(a *config.App) {
					a.Limits.BodyTimeout = config.Duration(bt)
					if mode.retry > 0 {
						a.RetryBodyLimit = mode.retry
					}
				})
				if got := config.DefaultLimits().BodyTimeout.D(); got < 30*time.Second {
					t.Fatalf("the global body_timeout default is %v; this test needs it long", got)
				}
				conn, err := net.Dial("tcp", d.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				start := time.Now()
				io.WriteString(conn, "POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n0123456789")
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("no answer to a stalled body after %v: %v (app body_timeout %v)", took, err, bt)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Gatehouse-Cause") != "client_timeout" {
					t.Errorf("got %d (Gatehouse-Cause %q), want 408 client_timeout", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
				}
				if took > 3*time.Second {
					t.Errorf("answered after %v; the app's body_timeout is %v", took, bt)
				}
				if e := d.entry(t, "/slow"); e.Status != http.StatusRequestTimeout || e.Cause != "client_timeout" {
					t.Errorf("access log says %d %q (%s), want 408 client_timeout", e.Status, e.Cause, e.Detail)
				}
				d.waitIdle(t)
				if mode.name == "streamed" {
					select {
					case err := <-appDone:
						if err == nil {
							t.Error("the app received a whole body the client never sent")
						}
					case <-time.After(3 * time.Second):
						t.Error("the app's connection is still open 3s after the client was answered")
					}
				}
			})
		}
	})
}

// An app's response_head: a longer response head is refused with 502
// bad_response, one within it passes.
func TestLimitAppResponseHead(t *testing.T) {
	const limit = 2 << 10
	forEachEngine(t, func(t *testing.T, engine string) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				n, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/h"))
				// One write: the whole head arrives in one read.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("b", n)+"\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		d := newDirect(t, engine, addr, func(a *config.App) { a.Limits.ResponseHead = limit })
		for _, n := range []int{1 << 10, 4 << 10, 3 << 10, 16 << 10} {
			path := fmt.Sprintf("/h%d", n)
			t.Run(fmt.Sprintf("%d-byte header", n), func(t *testing.T) {
				resp, body := rawExchange(t, d.addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
				if n < limit {
					if resp.StatusCode != 200 || body != "ok" || len(resp.Header.Get("X-Big")) != n {
						t.Errorf("a %d-byte header (limit %d): got %d %q, X-Big of %d bytes", n, limit, resp.StatusCode, body, len(resp.Header.Get("X-Big")))
					}
					return
				}
				if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Gatehouse-Cause") != "bad_response" {
					t.Errorf("a %d-byte header (limit %d): got %d (Gatehouse-Cause %q), want 502 bad_response", n, limit, resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
				}
				e := d.entry(t, path)
				if e.Status != http.StatusBadGateway || e.Cause != "bad_response" || !strings.Contains(e.Detail, "limits.response_head") {
					t.Errorf("access log says %d %q %q, want 502 bad_response naming limits.response_head", e.Status, e.Cause, e.Detail)
				}
			})
		}
		d.waitIdle(t)
	})
}
