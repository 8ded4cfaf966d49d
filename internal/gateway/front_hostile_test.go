package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// routedDirect is directWith the front's options and the app's routes
// (nil: "/") chosen.
func routedDirect(t *testing.T, addr string, routes []string, opts front.Options) *direct {
	t.Helper()
	return directWith(t, addr, opts, func(a *config.App) {
		if routes != nil {
			a.Routes = config.PlainRoutes(routes...)
		}
	})
}

// headOfSize is a GET head of exactly n bytes.
func headOfSize(t *testing.T, path string, n int) string {
	start := "GET " + path + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: "
	end := "\r\n\r\n"
	pad := n - len(start) - len(end)
	if pad < 1 {
		t.Fatalf("head of %d bytes too small", n)
	}
	return start + strings.Repeat("p", pad) + end
}

// limits.request_head below the 8 KiB read buffer is enforced: a head
// that fits the buffer is measured too, on the plain listener and on the
// HTTPS one.
func TestHeadLimitBelowBuffer(t *testing.T) {
	t.Parallel()
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		d := routedDirect(t, echoApp(t), nil, withOpts(w, front.Options{HeadLimit: 2 << 10}))
		resp, body := rawExchangeOver(t, w, d.addr, headOfSize(t, "/echo", 6000))
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("6000-byte head with request_head 2KiB: status %d, want 431; body %.80q", resp.StatusCode, body)
		}
	})
}

// A head that outgrows the buffer is measured whole, not only while its
// end has not arrived: one that ends in the read that crosses the limit
// is refused too, whatever the reads' sizes (TLS records or TCP
// segments).
func TestHeadLimitOvershoot(t *testing.T) {
	t.Parallel()
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		d := routedDirect(t, echoApp(t), nil, withOpts(w, front.Options{HeadLimit: 16 << 10}))
		resp, body := rawExchangeOver(t, w, d.addr, headOfSize(t, "/echo", 22<<10))
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("22 KiB head with request_head 16KiB: status %d, want 431; body %.80q", resp.StatusCode, body)
		}
	})
}

// readBigHead scans each new read from 3 bytes before its start, so that
// a CRLF CRLF across reads is found; but when those 3 bytes start with
// the LF of a CRLF, HeadEnd sees an LF at index 0 and calls it bare: a
// valid head larger than 8 KiB is refused 400 depending on where a line
// ends.
func TestBigHeadFalseBareLF(t *testing.T) {
	t.Parallel()
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		d := routedDirect(t, echoApp(t), nil, withOpts(w, front.Options{}))
		start := "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-A: "
		// The CRLF ending X-A is at bytes 8188-8189: big[8189] == '\n'.
		first := start + strings.Repeat("a", 8188-len(start)) + "\r\n"
		if len(first) != 8190 {
			t.Fatal(len(first))
		}
		raw := first + "X-B: " + strings.Repeat("b", 2000) + "\r\n\r\n"
		resp, body := rawExchangeOver(t, w, d.addr, raw)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("valid 10 KiB head: status %d, want 200; body %.200q", resp.StatusCode, body)
		}
	})
}

// A request that asks for an upgrade the app does not take (it answers
// anything but 101, or there is no route) leaves the connection to the
// front, which checks the next request on it as any other: one it
// refuses (bare LF line ends, an obs-folded line) never reaches the app.
func TestUpgradeNotTakenNextRequestChecked(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		routes []string
		first  string
	}{
		{"app answers 200 to websocket", nil, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
		{"no route for websocket", []string{"/api/"}, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
		{"chunked POST with an Upgrade field", nil, "POST /up HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	}
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				app := newRecApp(t, nil)
				d := routedDirect(t, app.addr, c.routes, w.frontOptions())
				// A second request the front refuses: bare LF line ends,
				// an obs-folded line.
				second := "GET /api/smuggled HTTP/1.1\nHost: x\nX-Fold: a\n b\n\n"
				v := sendH1(w, d.addr, c.first+second)
				if v.err != nil {
					t.Fatal(v.err)
				}
				reqs := app.settle(d)
				var got []string
				for _, q := range reqs {
					got = append(got, q.Method+" "+q.URI)
				}
				var statuses []int
				for _, a := range v.answers {
					statuses = append(statuses, a.status)
				}
				for _, g := range got {
					if g == "GET /api/smuggled" {
						t.Errorf("the app received a request the front never checked; app got %q, client statuses %v", got, statuses)
					}
				}
				if len(statuses) != 2 || statuses[1] != http.StatusBadRequest {
					t.Errorf("client statuses %v; want the first request's answer, then 400 for the malformed second", statuses)
				}
			})
		}
	})
}

// A request whose body the gateway does not read (no route: an error
// page) must not keep its connection, and its max_connections slot, for
// as long as the client stays silent after the answer: body_timeout
// bounds the wait for the rest of the body, and the connection then
// ends.
func TestUnreadBodyReleasesSlot(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, head string }{
		{"chunked", "POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"},
		{"expect 100-continue", "POST /nope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := routedDirect(t, echoApp(t), []string{"/api/"}, front.Options{
				MaxConnections: 1, BodyTimeout: 200 * time.Millisecond, HeadTimeout: time.Second, KeepaliveTimeout: time.Second})
			first := dialRaw(t, d.addr)
			first.send(c.head)
			resp, _, err := first.resp(3 * time.Second)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != 404 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// The client now stays silent. body_timeout (200 ms) and every
			// other limit are long past after 3 s.
			first.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err = first.br.ReadByte(); isTimeout(err) {
				t.Errorf("connection still open 3 s after its answer, with body_timeout 200ms")
			}
			// And with max_connections 1, the next client is served. The
			// bound is generous: a slot held for good fails it all the same.
			next := dialRaw(t, d.addr)
			next.send("GET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if _, _, err := next.resp(10 * time.Second); err != nil {
				t.Errorf("second client not served while the first stays silent: %v", err)
			}
		})
	}
}

// A head that outgrew the read buffer and then stalls past head_timeout
// is answered 408 client_timeout and logged, as a shorter one is.
func TestBigHeadTimeoutUnanswered(t *testing.T) {
	t.Parallel()
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		for _, size := range []int{4000, 9000} {
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				// head_timeout runs from the connection's start, the TLS
				// handshake's too: two seconds, so that the handshake and
				// the partial head get in on a busy machine (at 300 ms,
				// and once at 1 s over TLS, the timeout passed before the
				// head was there, and a connection with nothing to answer
				// is closed).
				d := routedDirect(t, echoApp(t), nil, withOpts(w, front.Options{HeadTimeout: 2 * time.Second}))
				c := dialRawOver(t, w, d.addr)
				c.send("GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", size))
				resp, _, err := c.resp(5 * time.Second)
				if err != nil {
					t.Errorf("partial head of %d bytes, stalled past head_timeout: no answer (%v), want 408", size, err)
				} else if resp.StatusCode != http.StatusRequestTimeout {
					t.Errorf("status %d, want 408", resp.StatusCode)
				}
				if _, ok := d.find(func(telemetry.AccessEntry) bool { return true }); !ok {
					t.Errorf("no access entry for the timed-out head")
				}
			})
		}
	})
}

// withOpts is opts on a front that w reaches: with w's TLS, or h2c on.
func withOpts(w wire, opts front.Options) front.Options {
	wo := w.frontOptions()
	opts.TLS, opts.H2C = wo.TLS, wo.H2C
	return opts
}

// rawExchangeOver is rawExchange over w.
func rawExchangeOver(t *testing.T, w wire, addr, raw string) (*http.Response, string) {
	t.Helper()
	c := dialRawOver(t, w, addr)
	c.send(raw)
	resp, body, err := c.final(5 * time.Second) // past any 100 Continue
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	c.close()
	return resp, body
}
