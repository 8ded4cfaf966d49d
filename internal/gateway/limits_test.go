package gateway_test

import (
	"bufio"
	"errors"
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
	"github.com/gatehouse/gatehouse/internal/testutil"
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

// An app's request_body: a body declared larger is refused before the app
// sees anything; one of undeclared length (chunked over HTTP/1.1, DATA
// without content-length over HTTP/2) is cut at the limit, and the
// client gets 413 either way; a body within the limit reaches the app.
func TestLimitAppRequestBody(t *testing.T) {
	t.Parallel()
	const limit = 1 << 10
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		for _, mode := range []struct {
			name  string
			retry config.Size // retry_body_limit: below the body, it streams
		}{{"buffered", 0}, {"streamed", 256}} {
			t.Run(mode.name, func(t *testing.T) {
				t.Parallel()
				app := newLimBodyApp(t)
				d := newDirect(t, proto, app.addr, func(a *config.App) {
					a.Limits.RequestBody = limit
					if mode.retry > 0 {
						// Streamed: neither kept for a retry nor read
						// whole before the app is asked.
						a.RetryBodyLimit = mode.retry
						a.Limits.RequestBuffer = 0
					}
				})
				c := protoClient(t, proto)
				post := func(path string, n int, declared bool) (*http.Response, string) {
					t.Helper()
					req, _ := http.NewRequest("POST", protoURL(proto, d.addr)+path, io.MultiReader(strings.NewReader(strings.Repeat("x", n))))
					req.ContentLength = -1
					if declared {
						req.ContentLength = int64(n)
					}
					resp, err := c.Do(req)
					if err != nil {
						t.Fatalf("%s: %v", path, err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					return resp, string(b)
				}
				for _, tt := range []struct {
					path     string
					declared bool
				}{{"/cl-big", true}, {"/chunked-big", false}} {
					resp, body := post(tt.path, 2000, tt.declared)
					if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Gatehouse-Cause") != "request_too_large" {
						t.Errorf("%s: got %d (Gatehouse-Cause %q, body %.80q), want 413 request_too_large", tt.path, resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), body)
					}
					if e := d.entry(t, tt.path); e.Status != http.StatusRequestEntityTooLarge || e.Cause != "request_too_large" {
						t.Errorf("%s: access log says %d %q (%s), want 413 request_too_large", tt.path, e.Status, e.Cause, e.Detail)
					}
				}
				for _, tt := range []struct {
					path     string
					n        int
					declared bool
				}{{"/cl-small", 500, true}, {"/cl-limit", 1024, true}, {"/chunked-small", 500, false}} {
					resp, body := post(tt.path, tt.n, tt.declared)
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
					t.Errorf("the app received a whole body of undeclared length larger than request_body: %v", whole)
				}
				if mode.name == "buffered" && len(broken) > 0 {
					t.Errorf("the app received part of a body of undeclared length larger than request_body and retry_body_limit: %v", broken)
				}
			})
		}
	})
}

// An app's body_timeout replaces the global one: a body that stalls is
// answered 408 client_timeout within it, and the app's connection and
// member are let go.
func TestLimitAppBodyTimeout(t *testing.T) {
	t.Parallel()
	const bt = 300 * time.Millisecond
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		for _, mode := range []struct {
			name  string
			retry config.Size
		}{{"buffered", 0}, {"streamed", 1 << 10}} {
			t.Run(mode.name, func(t *testing.T) {
				t.Parallel()
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
				d := newDirect(t, proto, addr, func(a *config.App) {
					a.Limits.BodyTimeout = config.Duration(bt)
					if mode.retry > 0 {
						// Streamed: neither kept for a retry nor read
						// whole before the app is asked.
						a.RetryBodyLimit = mode.retry
						a.Limits.RequestBuffer = 0
					}
				})
				if got := config.DefaultLimits().BodyTimeout.D(); got < 30*time.Second {
					t.Fatalf("the global body_timeout default is %v; this test needs it long", got)
				}
				var status int
				var cause string
				var took time.Duration
				if proto == "h1" {
					conn, err := net.Dial("tcp", d.addr)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					start := time.Now()
					io.WriteString(conn, "POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n0123456789")
					conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
					took = time.Since(start)
					if err != nil {
						t.Fatalf("no answer to a stalled body after %v: %v (app body_timeout %v)", took, err, bt)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status, cause = resp.StatusCode, resp.Header.Get("Gatehouse-Cause")
				} else {
					var err error
					status, cause, took, err = stallH2Upload(t, proto, d.addr, "/slow", 100000, nil, "0123456789")
					if err != nil {
						t.Fatalf("no answer to a stalled body after %v: %v (app body_timeout %v)", took, err, bt)
					}
				}
				if status != http.StatusRequestTimeout || cause != "client_timeout" {
					t.Errorf("got %d (Gatehouse-Cause %q), want 408 client_timeout", status, cause)
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

// stallH2Upload POSTs path over proto (h2 or h2c) to the front at addr,
// declaring length declared (-1: none) and the fields header, with a
// body that sends first and then nothing more until the test ends. It
// returns the answer's status and Gatehouse-Cause, and how long the
// answer took.
func stallH2Upload(t *testing.T, proto, addr, path string, declared int64, header http.Header, first string) (status int, cause string, took time.Duration, err error) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("the test is over")) })
	go pw.Write([]byte(first)) // returns when the client has sent it, or at the test's end
	req, _ := http.NewRequest("POST", protoURL(proto, addr)+path, pr)
	req.ContentLength = declared
	for k, vs := range header {
		req.Header[k] = vs
	}
	c := protoClient(t, proto)
	c.Timeout = 10 * time.Second
	start := time.Now()
	resp, err := c.Do(req)
	took = time.Since(start)
	if err != nil {
		return 0, "", took, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), took, nil
}

// An app's response_head: a longer response head is refused with 502
// bad_response, one within it passes.
func TestLimitAppResponseHead(t *testing.T) {
	t.Parallel()
	const limit = 2 << 10
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
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
		d := newDirect(t, proto, addr, func(a *config.App) { a.Limits.ResponseHead = limit })
		c := protoClient(t, proto)
		for _, n := range []int{1 << 10, 4 << 10, 3 << 10, 16 << 10} {
			path := fmt.Sprintf("/h%d", n)
			t.Run(fmt.Sprintf("%d-byte header", n), func(t *testing.T) {
				resp, err := c.Get(protoURL(proto, d.addr) + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if n < limit {
					if resp.StatusCode != 200 || string(b) != "ok" || len(resp.Header.Get("X-Big")) != n {
						t.Errorf("a %d-byte header (limit %d): got %d %q, X-Big of %d bytes", n, limit, resp.StatusCode, b, len(resp.Header.Get("X-Big")))
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

// An app's body_timeout shorter than the front's cuts a stalled upload at
// the app's value, whatever its framing: 408 within it.
func TestAppBodyTimeout(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	cases := []struct {
		name       string
		head, part string      // over HTTP/1.1
		declared   int64       // over HTTP/2: the content-length (-1: none)
		header     http.Header // over HTTP/2
	}{
		{"chunked", "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\nabc\r\n", -1, nil},
		{"content-length", "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "abc", 10, nil},
		{"expect", "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n", "abc", 10, http.Header{"Expect": {"100-continue"}}},
	}
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				opts := protoOptions(t, proto)
				opts.BodyTimeout = 20 * time.Second
				s := serveCounted(t, app, opts, func(a *config.App) {
					a.Limits.BodyTimeout = config.Duration(300 * time.Millisecond)
				})
				var status int
				var took time.Duration
				if proto == "h1" {
					c := dialRaw(t, s.addr)
					start := time.Now()
					c.send(tc.head)
					testutil.WaitFor(t, 5*time.Second, "the request at the gateway", func() bool { return s.h.active.Load() == 1 })
					c.send(tc.part)
					resp, _, err := c.final(5 * time.Second)
					took = time.Since(start)
					if err != nil {
						t.Fatalf("no answer within 5 s to a stalled upload with the app's body_timeout 300ms: %v", err)
					}
					status = resp.StatusCode
				} else {
					var err error
					status, _, took, err = stallH2Upload(t, proto, s.addr, "/up", tc.declared, tc.header, "abc")
					if err != nil {
						t.Fatalf("no answer to a stalled upload with the app's body_timeout 300ms: %v", err)
					}
				}
				if status != http.StatusRequestTimeout || took > 2*time.Second {
					t.Errorf("got %d after %v; want 408 after ~300ms", status, took)
				}
			})
		}
	})
}

// TestH2WholeBodyWithoutEndStream: an HTTP/2 upload whose declared
// content-length arrived whole but whose stream the client never ends
// (no END_STREAM) is a stalled upload like any other: 408 within the
// app's body_timeout, and the app is never asked. The body is small
// enough to be read whole before an instance is asked (request_buffer),
// so the wait for the stream's end must not move to the app's side: a
// client holding back END_STREAM must not hold an instance for a second
// body_timeout, nor have its unfinished request served.
func TestH2WholeBodyWithoutEndStream(t *testing.T) {
	t.Parallel()
	const bodyTimeout = time.Second
	for _, proto := range []string{"h2", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			app := newNetApp(t, nil)
			d := newDirect(t, proto, app.addr, func(a *config.App) {
				a.Limits.BodyTimeout = config.Duration(bodyTimeout)
			})
			h, err := dialH2(t, d.addr, proto == "h2")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.start(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := h.headers(1, false, h.req("POST", "/up", "content-length", "3")...); err != nil {
				t.Fatal(err)
			}
			// The whole declared body, and no END_STREAM, ever.
			if err := h.data(1, false, []byte("abc")); err != nil {
				t.Fatal(err)
			}
			v, ok := h.await(5*time.Second, func(v *h2View) bool { return v.Closed || v.Streams[1] != nil && v.Streams[1].Status != 0 })
			took := time.Since(start)
			if !ok || v.Streams[1] == nil {
				t.Fatalf("no answer to an upload held back before its end: %v", v.String())
			}
			// One body_timeout, not two (the app's side waiting it out
			// anew): the margin between them is wide for a busy machine.
			if st := v.Streams[1].Status; st != http.StatusRequestTimeout || took > bodyTimeout*17/10 {
				t.Errorf("got %d after %v; want 408 after ~%v (the app's body_timeout)", st, took.Round(time.Millisecond), bodyTimeout)
			}
			if n, c := app.count(), app.conns.Load(); n != 0 || c != 0 {
				t.Errorf("the app saw %d request(s) on %d connection(s) of an upload that never ended; want none", n, c)
			}
		})
	}
}
