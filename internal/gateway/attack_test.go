package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// TestAttacks sends hostile bytes to the gateway on a raw connection and
// checks both sides of it: what the client was answered, and exactly what
// the app behind the gateway received. A request smuggling or path
// confusion bug shows on the app's side (a request it should never have
// seen), so the app's log is asserted for every case, the positive ones
// included, so that no case passes because nothing reached the app at all.
//
// Every case gets its own gateway and app. The exchanges of one engine run
// concurrently: a case where the gateway wrongly keeps the connection open
// costs a read deadline, and they are waited out together, not one by one.
func TestAttacks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		runs := make([]*attackRun, len(attackCases))
		for i, c := range attackCases {
			app := newRecApp(t, c.answer)
			d := newDirect(t, engine, app.addr, func(a *config.App) {
				if c.routes != nil {
					a.Routes = c.routes
				}
				if c.adjust != nil {
					c.adjust(a)
				}
			})
			runs[i] = &attackRun{d: d, app: app}
		}
		var wg sync.WaitGroup
		for i, c := range attackCases {
			r := runs[i]
			wg.Go(func() {
				r.client = sendRaw(r.d.addr, c.send)
				r.reqs = r.app.settle(r.d)
			})
		}
		wg.Wait()
		for i, c := range attackCases {
			t.Run(c.name, func(t *testing.T) {
				r := runs[i]
				if r.client.err != nil {
					t.Fatalf("exchange: %v", r.client.err)
				}
				if c.want == nil && c.check == nil {
					t.Fatal("a case must want something")
				}
				want := c.want
				if engine == "net/http" && c.wantFallback != nil {
					want = c.wantFallback
				}
				if want != nil {
					if diff, ok := matchOutcome(r.outcome(), want); !ok {
						t.Errorf("outcome mismatch (-want +got):\n%s\nclient got %.400q\napp got %s", diff, r.client.raw, r.reqsString())
					} else if len(want) > 1 {
						t.Logf("took the outcome %s", r.outcome()) // which of the acceptable ones
					}
				}
				if c.check != nil {
					c.check(t, r)
				}
			})
		}
	})
}

// TestAttacksOnParkedConnections sends each case of the table (those that
// need no app of their own) on a connection that was first served one
// plain request and then left idle long enough to park (the front engine
// gives up the connection's goroutine and buffers): the outcome must be
// the opener's answer followed by exactly the outcome the same bytes get
// on a fresh connection, on both sides of the gateway. The net/http engine
// serves one request per connection: there the opener's answer closes it,
// and nothing of the case may reach the app.
func TestAttacksOnParkedConnections(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		type pair struct{ fresh, parked *attackRun }
		runs := make([]pair, len(attackCases))
		for i, c := range attackCases {
			if c.routes != nil || c.answer != nil {
				continue
			}
			for _, r := range []**attackRun{&runs[i].fresh, &runs[i].parked} {
				app := newRecApp(t, nil)
				*r = &attackRun{d: newDirect(t, engine, app.addr, c.adjust), app: app}
			}
		}
		var wg sync.WaitGroup
		for i, c := range attackCases {
			p := runs[i]
			if p.fresh == nil {
				continue
			}
			wg.Go(func() {
				p.fresh.client = sendRaw(p.fresh.d.addr, c.send)
				p.fresh.reqs = p.fresh.app.settle(p.fresh.d)
			})
			wg.Go(func() {
				p.parked.client = sendRawAfter(p.parked.d.addr, parkOpener, c.send)
				p.parked.reqs = p.parked.app.settle(p.parked.d)
			})
		}
		wg.Wait()
		for i, c := range attackCases {
			p := runs[i]
			if p.fresh == nil {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				if p.fresh.client.err != nil || p.parked.client.err != nil {
					t.Fatalf("exchange: %v / %v", p.fresh.client.err, p.parked.client.err)
				}
				fresh := p.fresh.outcome()
				want := outcome{Statuses: append([]int{200}, fresh.Statuses...), Causes: append([]string{""}, fresh.Causes...),
					Closed: fresh.Closed, App: append([]string{"GET /"}, fresh.App...)}
				if engine == "net/http" {
					// One request per connection: the opener's answer
					// closes it, and nothing of the case may get through.
					want = outcome{Statuses: []int{200}, Causes: []string{""}, Closed: true, App: []string{"GET /"}}
				}
				if diff := cmp.Diff(want, p.parked.outcome(), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("after a parked wait, the outcome differs from a fresh connection's (-want +got):\n%s\nclient got %.400q\napp got %s",
						diff, p.parked.client.raw, p.parked.reqsString())
				}
			})
		}
	})
}

const (
	// anyCause in outcome.Causes accepts whatever Gatehouse-Cause (or none).
	anyCause = "*"
	// anyRequests as outcome.App leaves the app's log to the case's check.
	anyRequests = "*checked by the case*"

	readIdle  = 2 * time.Second // the gateway is silent this long: give up
	readTotal = 5 * time.Second // bound on one exchange however it trickles
)

// outcome is what one exchange came to, on both sides of the gateway.
type outcome struct {
	Statuses []int    // each HTTP/1 answer the client read, in order (1xx included)
	Causes   []string // its Gatehouse-Cause; "" where the app answered
	Closed   bool     // the gateway closed the connection
	App      []string // "METHOD REQUEST-URI" of each request the app received
}

// attackCase is one row of the table. want lists the acceptable outcomes
// (a set: where the target allows 400 or 501, both are listed); check,
// if set, asserts what an outcome cannot say (bodies, headers, the access
// log).
type attackCase struct {
	name   string
	routes []string          // the app's routes; nil: "/"
	adjust func(*config.App) // more config for the app
	answer func(c net.Conn, r appReq)
	send   string
	want   []outcome
	// wantFallback, if set, replaces want on the net/http engine, which
	// serves one request per connection (the front must check each head).
	wantFallback []outcome
	check        func(t *testing.T, r *attackRun)
}

// Outcomes the cases share.

// rejected: gatehouse refused the request itself, closed the connection,
// and the app saw nothing.
func rejected() outcome {
	return outcome{Statuses: []int{400}, Causes: []string{"bad_request"}, Closed: true}
}

// notImplemented: a transfer coding gatehouse does not know. The target
// names no cause for the 501, so any is taken.
func notImplemented() outcome {
	return outcome{Statuses: []int{501}, Causes: []string{anyCause}, Closed: true}
}

// noRoute: the path is outside every route.
func noRoute() outcome {
	return outcome{Statuses: []int{404}, Causes: []string{"no_route"}, Closed: true}
}

// served: each request in app was forwarded and answered 200 by the app,
// and the connection then closed (the last request says Connection: close).
func served(app ...string) outcome {
	o := outcome{Closed: true, App: app}
	for range app {
		o.Statuses = append(o.Statuses, 200)
		o.Causes = append(o.Causes, "")
	}
	return o
}

// badResponse: the app was asked, answered something unusable, and the
// client got gatehouse's 502.
func badResponse(app ...string) outcome {
	return outcome{Statuses: []int{502}, Causes: []string{"bad_response"}, Closed: true, App: app}
}

func with(o outcome, f func(*outcome)) outcome { f(&o); return o }

// smuggled is the request hidden in the attack bytes; the app must never
// receive it.
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

// chunkTrick is a POST whose chunked body uses a malformed chunk size (or
// framing), with a request after it that a lenient reading would serve.
func chunkTrick(name, path, body string) attackCase {
	return attackCase{
		name: "chunk " + name,
		send: "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body + smuggled,
		// The app may have seen the start of the body, cut short: never
		// the request after it.
		want:  []outcome{rejected(), with(rejected(), func(o *outcome) { o.App = []string{"POST " + path} })},
		check: entryIs(path, 400, "bad_request"),
	}
}

// teTrick is a POST with an obfuscated Transfer-Encoding (teLines are the
// header lines, each ending in CRLF) and a chunked body followed by a
// request: whoever reads the body another way sees that request.
func teTrick(name, path, teLines string) attackCase {
	return attackCase{
		name: "TE " + name,
		send: "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + teLines + "\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled,
		want: []outcome{rejected(), notImplemented()},
	}
}

// dotSegment asks for path on a gateway routing only /public/.
func dotSegment(name, p string) attackCase {
	return attackCase{
		name:   "dot segments " + name,
		routes: []string{"/public/"},
		send:   "GET " + p + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:   []outcome{noRoute(), rejected()},
		check:  appStaysUnder("/public/"),
	}
}

// clBody is the body a Content-Length reader forwards whole and a chunked
// reader ends after "0\r\n\r\n", leaving the smuggled request.
const clBody = "0\r\n\r\n" + smuggled

var attackCases = []attackCase{
	// 1. Both framings: whichever one gatehouse picks, a server behind or in
	// front of it may pick the other.
	{
		name: "CL.TE content-length first",
		send: fmt.Sprintf("POST /clte HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(clBody), clBody),
		want: []outcome{rejected()},
	},
	{
		name: "CL.TE transfer-encoding first",
		send: fmt.Sprintf("POST /tecl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n%s", len(clBody), clBody),
		want: []outcome{rejected()},
	},

	// 2. Two lengths: which one frames the body is anyone's guess.
	{
		name: "duplicate content-length differing",
		send: "POST /dupcl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\nhello" + smuggled,
		want: []outcome{rejected()},
	},
	{
		// The same value twice is unambiguous (RFC 9110 8.6): refused, or
		// served once with the right body.
		name:  "duplicate content-length identical",
		send:  "POST /dupcl-same HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		want:  []outcome{rejected(), served("POST /dupcl-same")},
		check: appBodies("hello"),
	},

	// 3. Transfer-Encoding another reader may take for chunked, or not.
	teTrick("xchunked", "/te-xchunked", "Transfer-Encoding: xchunked\r\n"),
	teTrick("chunked, identity", "/te-list", "Transfer-Encoding: chunked, identity\r\n"),
	teTrick("identity", "/te-identity", "Transfer-Encoding: identity\r\n"),
	teTrick("space before colon", "/te-space", "Transfer-Encoding : chunked\r\n"),
	teTrick("two lines", "/te-two", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"),
	teTrick("tab and vertical tab", "/te-vt", "Transfer-Encoding:\tchunked\x0b\r\n"),
	{
		// Coding names are case-insensitive: this one is valid.
		name:  "TE CHUNKED upper case is served",
		send:  "POST /te-upper HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		want:  []outcome{served("POST /te-upper")},
		check: appBodies("hello"),
	},

	// 4. HTTP/1.0 has no chunked coding (RFC 9112 6.1): a 1.0 server reads
	// the body as running to the close.
	{
		name: "TE on HTTP 1.0",
		send: "POST /te10 HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		want: []outcome{rejected()},
	},

	// 5. Chunk sizes a lenient parser reads as something else; the access
	// log must blame the client's bad request, not a client that left.
	chunkTrick("0x prefix", "/c-0x", "0x5\r\n\r\n"),
	chunkTrick("negative", "/c-neg", "-1\r\nhello\r\n0\r\n\r\n"),
	chunkTrick("overflow", "/c-overflow", "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
	chunkTrick("2^64 wraps to 0", "/c-wrap", "10000000000000000\r\n\r\n"),
	chunkTrick("no CRLF after data", "/c-nocrlf", "5\r\nhello0\r\n\r\n"),
	chunkTrick("invalid char in size", "/c-char", "5z\r\nhello\r\n0\r\n\r\n"),
	{
		// "5 " is not RFC 9112 (BWS only before ';'), but net/http's chunked
		// reader trims it, so serving it as 5 is allowed; refusing too. The
		// request says Connection: close, so what follows the body is never
		// a request either way.
		name: "chunk size with trailing space",
		send: "POST /c-space HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5 \r\nhello\r\n0\r\n\r\n" + smuggled,
		want: []outcome{rejected(), served("POST /c-space")},
		check: func(t *testing.T, r *attackRun) {
			appBodies("hello")(t, r)
			if st := r.outcome().Statuses; len(st) > 0 && st[0] == 400 {
				entryIs("/c-space", 400, "bad_request")(t, r)
			}
		},
	},

	// 6. Bare LF line ends: refused, or read as one request; never split
	// into two.
	{
		name: "bare LF head",
		send: "GET /lf HTTP/1.1\nHost: x\nConnection: close\n\n",
		want: []outcome{rejected(), served("GET /lf")},
	},

	// 7. obs-fold (RFC 9112 5.2): a server may unfold it, another may take
	// the continuation for a header of its own.
	{
		name: "obs-fold space",
		send: "GET /fold HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
		want: []outcome{rejected()},
	},
	{
		name: "obs-fold tab",
		send: "GET /fold-tab HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\nConnection: close\r\n\r\n",
		want: []outcome{rejected()},
	},

	// 8. Control characters in a value: a NUL ends a C string, a bare CR
	// ends a line for some readers.
	{
		name: "NUL in header value",
		send: "GET /nul HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n",
		want: []outcome{rejected()},
	},
	{
		name: "SOH in header value",
		send: "GET /soh HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\nConnection: close\r\n\r\n",
		want: []outcome{rejected()},
	},
	{
		name: "bare CR in header value",
		send: "GET /cr HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 5\r\nConnection: close\r\n\r\n",
		want: []outcome{rejected()},
	},

	// 9. absolute-form is valid (RFC 9112 3.2.2) and goes on in
	// origin-form, with the Host the target names.
	{
		name: "absolute-form target",
		send: "GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
		want: []outcome{served("GET /p?q=1")},
		check: func(t *testing.T, r *attackRun) {
			for _, q := range r.reqs {
				if q.Host != "example.com" {
					t.Errorf("app got Host %q, want example.com", q.Host)
				}
			}
		},
	},

	// 10. Host is what routes and what the app trusts: exactly one.
	{
		name: "missing Host on HTTP 1.1",
		send: "GET /nohost HTTP/1.1\r\nConnection: close\r\n\r\n",
		want: []outcome{rejected()},
	},
	{
		name: "duplicate Host",
		send: "GET /twohosts HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
		want: []outcome{rejected()},
	},

	// 11. Pipelining: Connection: close ends the connection there; the
	// request behind it is never served. Without it, all are, in order.
	{
		name: "pipelined after Connection: close",
		send: "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		want: []outcome{served("GET /a")},
	},
	{
		name:         "pipelined three",
		send:         "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:         []outcome{served("GET /1", "GET /2", "GET /3")},
		wantFallback: []outcome{served("GET /1")},
		check:        answerBodies("got GET /1", "got GET /2", "got GET /3"),
	},
	{
		// Keep-alive survives pipelining: nothing closes the connection.
		name:         "pipelined three kept alive",
		send:         "GET /k1 HTTP/1.1\r\nHost: x\r\n\r\nGET /k2 HTTP/1.1\r\nHost: x\r\n\r\nGET /k3 HTTP/1.1\r\nHost: x\r\n\r\n",
		want:         []outcome{with(served("GET /k1", "GET /k2", "GET /k3"), func(o *outcome) { o.Closed = false })},
		wantFallback: []outcome{served("GET /k1")},
		check:        answerBodies("got GET /k1", "got GET /k2", "got GET /k3"),
	},

	// 12. A path that routes under /public/ but that the app resolves
	// outside it (encoded or not).
	dotSegment("%2e%2e", "/public/%2e%2e/admin/secret.txt"),
	dotSegment("plain ..", "/public/../admin/secret.txt"),
	dotSegment("%2E%2E%2F", "/public/%2E%2E%2Fadmin/secret.txt"),
	dotSegment("..%2f", "/public/..%2fadmin/secret.txt"),
	dotSegment(".%2e", "/public/.%2e/admin/secret.txt"),
	{
		name:   "dot segments inside the route are served",
		routes: []string{"/public/"},
		send:   "GET /public/./a/../b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		// The app may get the path as sent or normalised: check says which.
		want: []outcome{served(anyRequests)},
		check: func(t *testing.T, r *attackRun) {
			appStaysUnder("/public/")(t, r)
			if len(r.reqs) != 1 || normalise(r.reqs[0].URI) != "/public/b.txt" {
				t.Errorf("app got %s, want one request for a path that normalises to /public/b.txt", r.reqsString())
			}
		},
	},

	// 13. Many servers (nginx, CGI, WSGI) map X_Real_IP and X-Real-IP to the
	// same variable: a client's underscore name can then pass for the
	// header a proxy sets. Drop such names.
	{
		name: "underscore header names dropped",
		send: "GET /u HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nConnection: close\r\n\r\n",
		want: []outcome{served("GET /u")},
		check: func(t *testing.T, r *attackRun) {
			for _, q := range r.reqs {
				for k := range q.Header {
					if strings.Contains(k, "_") {
						t.Errorf("app got header %q: %q", k, q.Header[k])
					}
				}
			}
		},
	},

	// 14. HTTP/2 prior knowledge: not HTTP/1, not to be forwarded as if it
	// were; gatehouse answers it itself (a GOAWAY) and closes.
	{
		name: "h2 prior-knowledge preface",
		send: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x00", // + empty SETTINGS
		want: []outcome{{Closed: true}},
		check: func(t *testing.T, r *attackRun) {
			if !slices.Contains(h2FrameTypes(r.client.raw), 0x7) {
				t.Errorf("client got %.200q: no HTTP/2 GOAWAY frame", r.client.raw)
			}
			if e, ok := r.d.anyEntry(); !ok || e.Cause != "unsupported_protocol" {
				t.Errorf("access entry %+v (found %v), want cause unsupported_protocol", e, ok)
			}
		},
	},

	// 15. A status below 100 is no HTTP status: 502 at once, not after
	// request_timeout (10 s here, longer than the read deadline).
	{
		name:   "response status below 100",
		adjust: func(a *config.App) { a.RequestTimeout = config.Duration(10 * time.Second) },
		answer: rawAnswer("HTTP/1.1 099 Weird\r\nContent-Length: 0\r\n\r\n"),
		send:   "GET /s099 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:   []outcome{badResponse("GET /s099")},
		check: func(t *testing.T, r *attackRun) {
			if r.client.firstByte > 2*time.Second {
				t.Errorf("answered after %v, want within 2s", r.client.firstByte)
			}
		},
	},

	// 16. 103 Early Hints reach the client, ahead of the final answer.
	{
		name:   "response 103 early hints passed on",
		answer: earlyHints,
		send:   "GET /hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:   []outcome{{Statuses: []int{103, 200}, Causes: []string{"", ""}, Closed: true, App: []string{"GET /hints"}}},
		check: func(t *testing.T, r *attackRun) {
			if a := r.client.answers; len(a) > 0 && a[0].header.Get("Link") != "</a.css>; rel=preload" {
				t.Errorf("103 carries Link %q", a[0].header.Get("Link"))
			}
			answerBodies("", "got GET /hints")(t, r)
		},
	},

	// 17. The JSON error page stays JSON whatever bytes the client put in
	// the request id it echoes.
	{
		name:   "JSON error page with non-UTF-8 request id (no_route)",
		routes: []string{"/public/"},
		send:   "GET /elsewhere HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xff\xfe\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
		want:   []outcome{noRoute(), rejected()},
		check:  errorPagesAreJSON,
	},
	{
		name:   "JSON error page with non-UTF-8 request id (bad_response)",
		answer: rawAnswer("NOT HTTP AT ALL\r\n\r\n"),
		send:   "GET /garbage HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xff\xfe\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
		want:   []outcome{badResponse("GET /garbage"), rejected()},
		check:  errorPagesAreJSON,
	},

	// 18. A response head past limits.response_head (64 KiB by default) is
	// refused, not buffered whole.
	{
		name:   "response head of 1 MiB",
		answer: rawAnswer("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\nContent-Length: 2\r\n\r\nok"),
		send:   "GET /bighead HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:   []outcome{badResponse("GET /bighead")},
	},
}

// Checks the cases share.

// entryIs wants the access entry of path to say status and cause.
func entryIs(path string, status int, cause string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		e := r.d.entry(t, path)
		if e.Status != status || e.Cause != cause {
			t.Errorf("access entry of %s: %d %q (%s), want %d %q", path, e.Status, e.Cause, e.Detail, status, cause)
		}
	}
}

// appBodies wants every request the app got to carry body in full.
func appBodies(body string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		for _, q := range r.reqs {
			if q.Body != body || q.BodyErr != "" {
				t.Errorf("app got %s %s with body %q (error %q), want %q", q.Method, q.URI, q.Body, q.BodyErr, body)
			}
		}
	}
}

// answerBodies wants the client's answers to carry these bodies, in order.
func answerBodies(bodies ...string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		var got []string
		for _, a := range r.client.answers {
			got = append(got, a.body)
		}
		// Where fewer requests were served (the net/http engine serves
		// one per connection), their answers; the outcome pins how many.
		want := bodies
		if len(r.reqs) < len(bodies) && len(got) < len(bodies) {
			want = bodies[:len(got)]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answer bodies (-want +got):\n%s", diff)
		}
	}
}

// appStaysUnder wants every path the app got, percent-decoded and with its
// dot segments removed, to be under prefix.
func appStaysUnder(prefix string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		for _, q := range r.reqs {
			if p := normalise(q.URI); !strings.HasPrefix(p, prefix) {
				t.Errorf("app got %s %s, which is %s: outside %s", q.Method, q.URI, p, prefix)
			}
		}
	}
}

// normalise is the path an app may resolve uri to: decoded once, dot
// segments removed. Undecodable is reported as itself (not under anything).
func normalise(uri string) string {
	p, _, _ := strings.Cut(uri, "?")
	d, err := url.PathUnescape(p)
	if err != nil {
		return "undecodable " + p
	}
	return path.Clean(d)
}

// errorPagesAreJSON wants each answer gatehouse gave to parse as JSON (the
// requests ask for it).
func errorPagesAreJSON(t *testing.T, r *attackRun) {
	n := 0
	for _, a := range r.client.answers {
		if a.cause == "" {
			continue
		}
		n++
		if !json.Valid([]byte(a.body)) {
			t.Errorf("%d %s error page is not JSON: %q", a.status, a.cause, a.body)
		}
	}
	if n == 0 {
		t.Errorf("no error page from gatehouse to check")
	}
}

// h2FrameTypes lists the types of the HTTP/2 frames b starts with.
func h2FrameTypes(b []byte) []byte {
	var types []byte
	for len(b) >= 9 {
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		types = append(types, b[3])
		if len(b) < 9+n {
			break
		}
		b = b[9+n:]
	}
	return types
}

// The app's side.

// appReq is a request as the app read it off the wire.
type appReq struct {
	Method, URI, Host string
	Header            http.Header
	Body              string
	BodyErr           string // the body ended in an error (cut short, malformed)
}

// recApp is a raw app that records each request it reads and answers it
// with answer.
type recApp struct {
	addr string
	mu   sync.Mutex
	reqs []appReq
}

// newRecApp starts a recording app. answer writes the raw answer to a
// request; nil answers 200 with a body naming the request.
func newRecApp(t testing.TB, answer func(c net.Conn, r appReq)) *recApp {
	if answer == nil {
		answer = answerGot
	}
	a := &recApp{}
	a.addr = rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				// Bytes that are not a request are something the app
				// received too: record them, so a case wanting nothing
				// fails. A connection closed between requests is nothing.
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
					a.record(appReq{Method: "!unreadable", URI: err.Error()})
				}
				return
			}
			body, err := io.ReadAll(req.Body)
			q := appReq{Method: req.Method, URI: req.RequestURI, Host: req.Host, Header: req.Header, Body: string(body)}
			if err != nil {
				q.BodyErr = err.Error()
			}
			a.record(q)
			if err != nil {
				return
			}
			answer(c, q)
		}
	})
	return a
}

func (a *recApp) record(q appReq) {
	a.mu.Lock()
	a.reqs = append(a.reqs, q)
	a.mu.Unlock()
}

// settle waits (boundedly) for the gateway to be done with the member,
// then returns what the app received.
func (a *recApp) settle(d *direct) []appReq {
	for deadline := time.Now().Add(2 * time.Second); d.m.Inflight() != 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a forward racing the client's close
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

// answerGot answers 200 "got METHOD URI".
func answerGot(c net.Conn, r appReq) {
	body := "got " + r.Method + " " + r.URI
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// rawAnswer answers every request with raw and keeps the connection open,
// so the gateway cannot learn from a close that the answer was bad.
func rawAnswer(raw string) func(c net.Conn, r appReq) {
	return func(c net.Conn, r appReq) { io.WriteString(c, raw) }
}

// earlyHints answers 103 with a Link, then, a moment later, 200.
func earlyHints(c net.Conn, r appReq) {
	io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	answerGot(c, r)
}

// The client's side.

// answer is one HTTP/1 response the client read.
type answer struct {
	status int
	cause  string
	header http.Header
	body   string
}

// clientView is everything the client got on one connection.
type clientView struct {
	err       error // the dial failed
	raw       []byte
	answers   []answer // raw, read as HTTP/1 responses, as far as it goes
	closed    bool     // the gateway closed (else the read deadline ran out)
	firstByte time.Duration
}

// sendRaw writes send on a new connection to addr in one write and reads
// until the gateway closes or stays silent readIdle.
func sendRaw(addr, send string) clientView { return sendRawAfter(addr, "", send) }

// parkOpener is the plain request TestAttacksOnParkedConnections sends
// first, and parkPause how long it then waits: well past the front's
// parkAfter, so that the connection is parked when the case's bytes come.
const (
	parkOpener = "GET / HTTP/1.1\r\nHost: gatehouse.test\r\n\r\n"
	parkPause  = 300 * time.Millisecond
)

// sendRawAfter is sendRaw with opener written first and parkPause waited
// out before send (its answer stays in the socket, read with the rest).
func sendRawAfter(addr, opener, send string) clientView {
	var v clientView
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		v.err = err
		return v
	}
	defer conn.Close()
	if opener != "" {
		io.WriteString(conn, opener)
		time.Sleep(parkPause)
	}
	start := time.Now()
	io.WriteString(conn, send) // a gateway that closes early fails this; read what it said
	end := start.Add(readTotal)
	buf := make([]byte, 64<<10)
	for {
		dl := time.Now().Add(readIdle)
		if dl.After(end) {
			dl = end
		}
		conn.SetReadDeadline(dl)
		n, err := conn.Read(buf)
		if n > 0 && v.raw == nil {
			v.firstByte = time.Since(start)
		}
		v.raw = append(v.raw, buf[:n]...)
		if err != nil {
			var ne net.Error
			v.closed = !(errors.As(err, &ne) && ne.Timeout())
			break
		}
	}
	v.answers = readAnswers(v.raw)
	return v
}

// readAnswers reads raw as a sequence of HTTP/1 responses, up to the first
// thing that is not one.
func readAnswers(raw []byte) []answer {
	var as []answer
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return as
		}
		body, err := io.ReadAll(resp.Body)
		as = append(as, answer{status: resp.StatusCode, cause: resp.Header.Get("Gatehouse-Cause"), header: resp.Header, body: string(body)})
		if err != nil {
			return as
		}
	}
}

// The verdict.

// attackRun is one case's exchange on one engine.
type attackRun struct {
	d      *direct
	app    *recApp
	client clientView
	reqs   []appReq // what the app received
}

func (r *attackRun) outcome() outcome {
	o := outcome{Closed: r.client.closed}
	for _, a := range r.client.answers {
		o.Statuses = append(o.Statuses, a.status)
		o.Causes = append(o.Causes, a.cause)
	}
	for _, q := range r.reqs {
		o.App = append(o.App, q.Method+" "+q.URI)
	}
	return o
}

func (o outcome) String() string {
	return fmt.Sprintf("statuses %v causes %q closed %v app %q", o.Statuses, o.Causes, o.Closed, o.App)
}

func (r *attackRun) reqsString() string {
	var s []string
	for _, q := range r.reqs {
		s = append(s, fmt.Sprintf("%s %q host=%q body=%q", q.Method, q.URI, q.Host, q.Body))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// matchOutcome reports whether got is one of wants, and if not, the diff
// against each.
func matchOutcome(got outcome, wants []outcome) (string, bool) {
	var diffs []string
	for i, w := range wants {
		g := got
		g.Causes = slices.Clone(got.Causes)
		for j := range w.Causes {
			if w.Causes[j] == anyCause && j < len(g.Causes) {
				g.Causes[j] = anyCause
			}
		}
		if slices.Equal(w.App, []string{anyRequests}) {
			g.App = w.App
		}
		diff := cmp.Diff(w, g, cmpopts.EquateEmpty())
		if diff == "" {
			return "", true
		}
		diffs = append(diffs, fmt.Sprintf("acceptable outcome %d of %d:\n%s", i+1, len(wants), diff))
	}
	return strings.Join(diffs, "\n"), false
}

// anyEntry waits a little for the first access entry of d, whatever its
// path (an HTTP/2 preface has none to look it up by).
func (d *direct) anyEntry() (telemetry.AccessEntry, bool) {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		d.mu.Lock()
		if len(d.entries) > 0 {
			e := d.entries[0]
			d.mu.Unlock()
			return e, true
		}
		d.mu.Unlock()
	}
	return telemetry.AccessEntry{}, false
}
