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
	"runtime"
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
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestAttacks sends hostile bytes to the gateway on a raw connection and
// checks both sides of it: what the client was answered, and exactly what
// the app behind the gateway received. A request smuggling or path
// confusion bug shows on the app's side (a request it should never have
// seen), so the app's log is asserted for every case, the positive ones
// included, so that no case passes because nothing reached the app at all.
//
// The table runs on HTTP/1.1 over plain TCP and over TLS (h1Wires): the
// front parses both with the same code, but reads them through different
// connections (a TLS record may hold a head, a body and the next request
// at once). Every case gets its own gateway and app. The exchanges of one
// wire run concurrently: a case where the gateway wrongly keeps the
// connection open costs a read deadline, and they are waited out
// together, not one by one. The test stays serial: its hundred and more
// connections at once, TLS handshakes among them, are load enough, and a
// gateway slowed past the read deadline would pass for one that keeps a
// connection open.
func TestAttacks(t *testing.T) {
	eachWire(t, h1Wires, func(t *testing.T, w wire) {
		runs := make([]*attackRun, len(attackCases))
		for i, c := range attackCases {
			app := newRecApp(t, c.answer)
			d := directWith(t, app.addr, w.h1Options(), func(a *config.App) {
				if c.routes != nil {
					a.Routes = config.PlainRoutes(c.routes...)
				}
				if c.adjust != nil {
					c.adjust(a)
				}
			})
			runs[i] = &attackRun{d: d, app: app}
		}
		for i, c := range attackCases {
			runs[i].send = c.pieces()
		}
		exchangeAll(w, runs)
		for i, c := range attackCases {
			t.Run(c.name, func(t *testing.T) {
				if c.want == nil && c.check == nil {
					t.Fatal("a case must want something")
				}
				runs[i].verdict(t, c.want, c.check, "")
			})
		}
	})
}

// TestAttacksOnParkedConnections sends each case of the table (those that
// need no app of their own) on a connection that was first served one
// plain request and then left idle well past the front's parkAfter: the
// outcome must be the opener's answer followed by exactly the outcome the
// same bytes get on a fresh connection, on both sides of the gateway.
//
// On the plain socket the idle connection is parked: it gives up its
// goroutine and buffers to the poller, which hands it back when the
// case's bytes come. A TLS connection cannot be parked (its tls.Conn
// keeps state and buffered records the poller cannot see), but it takes
// the other way out of the same wait: it drops its request state and buffers and waits on its goroutine
// for one byte, which the next request's reading must take up. Both are
// run.
func TestAttacksOnParkedConnections(t *testing.T) {
	eachWire(t, h1Wires, func(t *testing.T, w wire) {
		type pair struct{ fresh, parked *attackRun }
		runs := make([]pair, len(attackCases))
		var all []*attackRun
		for i, c := range attackCases {
			if c.routes != nil || c.answer != nil {
				continue
			}
			for _, r := range []**attackRun{&runs[i].fresh, &runs[i].parked} {
				app := newRecApp(t, nil)
				*r = &attackRun{d: directWith(t, app.addr, w.h1Options(), c.adjust), app: app, send: c.pieces()}
				all = append(all, *r)
			}
			runs[i].parked.opener = parkOpener
		}
		exchangeAll(w, all)
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
	// records, if set, are sent instead of send: over TLS a record
	// each, all in one segment.
	records []string
	want    []outcome
	check   func(t *testing.T, r *attackRun)
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

// kept is o with the connection left open after it.
func kept(o outcome) outcome { o.Closed = false; return o }

// upgradeRefused: gatehouse refused to forward the upgrade, and the app
// saw nothing.
func upgradeRefused() outcome {
	return outcome{Statuses: []int{400}, Causes: []string{"upgrade_refused"}, Closed: true}
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

// refusedCase is a case gatehouse must refuse itself (rejected).
func refusedCase(name, send string) attackCase {
	return attackCase{name: name, send: send, want: []outcome{rejected()}}
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
	refusedCase("CL.TE content-length first", fmt.Sprintf("POST /clte HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(clBody), clBody)),
	refusedCase("CL.TE transfer-encoding first", fmt.Sprintf("POST /tecl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n%s", len(clBody), clBody)),

	// 2. Two lengths: which one frames the body is anyone's guess.
	refusedCase("duplicate content-length differing", "POST /dupcl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\nhello"+smuggled),
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
	refusedCase("TE on HTTP 1.0", "POST /te10 HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),

	// 5. Chunk sizes a lenient parser reads as something else; the access
	// log must blame the client's bad request, not a client that left.
	chunkTrick("0x prefix", "/c-0x", "0x5\r\n\r\n"),
	chunkTrick("negative", "/c-neg", "-1\r\nhello\r\n0\r\n\r\n"),
	chunkTrick("overflow", "/c-overflow", "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
	chunkTrick("2^64 wraps to 0", "/c-wrap", "10000000000000000\r\n\r\n"),
	chunkTrick("no CRLF after data", "/c-nocrlf", "5\r\nhello0\r\n\r\n"),
	chunkTrick("invalid char in size", "/c-char", "5z\r\nhello\r\n0\r\n\r\n"),

	// 5b. The front reads chunked bodies itself (http1.ChunkedReader):
	// where a body ends is decided there, so a line end, a size or an
	// extension another reader takes otherwise is refused, never read so
	// that the request after it gets through.
	chunkTrick("bare LF after chunk size", "/c-lf-size", "5\nhello\r\n0\r\n\r\n"),
	chunkTrick("bare LF after chunk data", "/c-lf-data", "5\r\nhello\n0\r\n\r\n"),
	chunkTrick("bare LF after last chunk", "/c-lf-last", "5\r\nhello\r\n0\n\n"),
	chunkTrick("2^63 overflows int64", "/c-2p63", "8000000000000000\r\nhello\r\n0\r\n\r\n"),
	chunkTrick("17 hex digits", "/c-17digits", "00000000000000005\r\nhello\r\n0\r\n\r\n"),
	chunkTrick("bare CR in chunk extension", "/c-ext-cr", "5;a\rb\r\nhello\r\n0\r\n\r\n"),
	chunkTrick("bare CR in quoted chunk extension", "/c-ext-qcr", "5;a=\"b\rc\"\r\nhello\r\n0\r\n\r\n"),
	chunkTrick("CR CR LF after chunk data", "/c-crcrlf", "5\r\nhello\r\r\n0\r\n\r\n"),
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
	{
		// Served exactly once, with its whole body; the request after the
		// body is served as the next one (the body's chunks carry valid
		// extensions, and the second holds what looks like a request).
		name: "chunked body then a pipelined request",
		send: "POST /c-then HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3;ext=1\r\nhel\r\n2;q=\"a b\"\r\nlo\r\n" + fmt.Sprintf("%X\r\n%s\r\n", len(smuggled), smuggled) + "0\r\n\r\n" +
			"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{served("POST /c-then", "GET /after")},
		check: allOf(appBodiesAre("hello"+smuggled, ""), answerBodies("got POST /c-then", "got GET /after"),
			noEntry("/smuggled")),
	},
	{
		// A body larger than the front's read buffer, so that the
		// pipelined requests come in a later read than the body's start.
		name: "large chunked body then two pipelined requests",
		send: "POST /c-big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"2710\r\n" + strings.Repeat("b", 10000) + "\r\n1\r\nc\r\n0\r\n\r\n" +
			"POST /c-big2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
			"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:  []outcome{served("POST /c-big", "POST /c-big2", "GET /after")},
		check: appBodiesAre(strings.Repeat("b", 10000)+"c", "", ""),
	},
	{
		// Content-Length and Transfer-Encoding must not be trailers (RFC
		// 9110 §6.5.1). Here they can frame nothing (the body has ended),
		// but passed on, an app that merges trailers into the head would
		// find a length there that is not the body's. Dropped and served,
		// the next request served after the trailer section; or refused,
		// and nothing after it served.
		name: "trailer with Content-Length and Transfer-Encoding",
		send: "POST /c-trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" +
			"0\r\nContent-Length: 41\r\nTransfer-Encoding: chunked\r\nX-Sum: 1\r\n\r\n" +
			"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{served("POST /c-trailer", "GET /after"), rejected(),
			with(rejected(), func(o *outcome) { o.App = []string{"POST /c-trailer"} })},
		check: func(t *testing.T, r *attackRun) {
			for _, q := range r.reqs {
				if q.Method != "POST" {
					continue
				}
				if cl := q.Header.Get("Content-Length"); cl != "" && cl != "5" {
					t.Errorf("app got Content-Length %q for a body of 5 bytes", cl)
				}
				if st := r.outcome().Statuses; len(st) > 0 && st[0] == 200 && (q.Body != "hello" || q.BodyErr != "") {
					t.Errorf("served, and the app got body %q (error %q), want \"hello\"", q.Body, q.BodyErr)
				}
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

	// Empty lines before a request line are dropped (RFC 9112 2.2), as
	// many as come, before the first request and between pipelined ones;
	// a lone CR is no empty line.
	{
		name: "empty lines before the request line",
		send: strings.Repeat("\r\n", 10) + "GET /el HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{served("GET /el")},
	},
	{
		name: "empty lines between pipelined requests",
		send: "GET /el1 HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("\r\n", 6) + "GET /el2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{served("GET /el1", "GET /el2")},
	},
	refusedCase("lone CR before the request line", "\rGET /lcr HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),

	// Records read together (over TLS a record each, in one segment):
	// TLS decrypts one at a time and keeps the rest, where no look at
	// the socket sees them; over TCP, the same bytes pipelined.
	{
		name:    "pipelined requests in records of their own",
		records: []string{"GET /rec1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /rec2 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /rec3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		want:    []outcome{served("GET /rec1", "GET /rec2", "GET /rec3")},
	},
	{
		name:    "a head cut across records",
		records: []string{"GET /cut HTTP/1.1\r\nHo", "st: x\r\nConnection: clo", "se\r\n\r\n"},
		want:    []outcome{served("GET /cut")},
	},
	{
		name: "a body in records after its head, then a request",
		records: []string{"POST /recbody HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", "01234", "56789",
			"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		want: []outcome{served("POST /recbody", "GET /after")},
	},
	{
		name: "a request in a record after a chunked body's end",
		records: []string{"POST /recchunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n",
			"GET /afterchunk HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		want: []outcome{served("POST /recchunk", "GET /afterchunk")},
	},

	// 7. obs-fold (RFC 9112 5.2): a server may unfold it, another may take
	// the continuation for a header of its own.
	refusedCase("obs-fold space", "GET /fold HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"),
	refusedCase("obs-fold tab", "GET /fold-tab HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\nConnection: close\r\n\r\n"),

	// 8. Control characters in a value: a NUL ends a C string, a bare CR
	// ends a line for some readers.
	refusedCase("NUL in header value", "GET /nul HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n"),
	refusedCase("SOH in header value", "GET /soh HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\nConnection: close\r\n\r\n"),
	refusedCase("bare CR in header value", "GET /cr HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 5\r\nConnection: close\r\n\r\n"),

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
	refusedCase("missing Host on HTTP 1.1", "GET /nohost HTTP/1.1\r\nConnection: close\r\n\r\n"),
	refusedCase("duplicate Host", "GET /twohosts HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n"),

	// 11. Pipelining: Connection: close ends the connection there; the
	// request behind it is never served. Without it, all are, in order.
	{
		name: "pipelined after Connection: close",
		send: "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		want: []outcome{served("GET /a")},
	},
	{
		name:  "pipelined three",
		send:  "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:  []outcome{served("GET /1", "GET /2", "GET /3")},
		check: answerBodies("got GET /1", "got GET /2", "got GET /3"),
	},
	{
		// Keep-alive survives pipelining: nothing closes the connection.
		name:  "pipelined three kept alive",
		send:  "GET /k1 HTTP/1.1\r\nHost: x\r\n\r\nGET /k2 HTTP/1.1\r\nHost: x\r\n\r\nGET /k3 HTTP/1.1\r\nHost: x\r\n\r\n",
		want:  []outcome{kept(served("GET /k1", "GET /k2", "GET /k3"))},
		check: answerBodies("got GET /k1", "got GET /k2", "got GET /k3"),
	},

	// 12. A path that routes under /public/ but that the app resolves
	// outside it (encoded or not).
	dotSegment("%2e%2e", "/public/%2e%2e/admin/secret.txt"),
	dotSegment("plain ..", "/public/../admin/secret.txt"),
	dotSegment("%2E%2E%2F", "/public/%2E%2E%2Fadmin/secret.txt"),
	dotSegment("..%2f", "/public/..%2fadmin/secret.txt"),
	dotSegment(".%2e", "/public/.%2e/admin/secret.txt"),
	// A servlet container drops ";x%2Fpublic" (a parameter up to the next
	// raw slash) and serves /admin/secret.txt; decoded first, the path
	// would route under /public/.
	{
		name:   "a path parameter holding %2F",
		routes: []string{"/public/"},
		send:   "GET /;x%2Fpublic/admin/secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:   []outcome{noRoute(), rejected()},
		check:  appStaysUnder("/public/"),
	},
	// A servlet container serves "/old;x/page" as "/old/page", which the
	// route's rewrite sends to /new/: sent on as it came, the app would
	// serve the old page.
	{
		name: "a path parameter in a rewritten prefix",
		adjust: func(a *config.App) {
			a.Routes = []config.Route{{Match: "/old/", Rewrite: &config.Rewrite{From: "^/old/(.*)$", To: "/new/$1"}}, {Match: "/"}}
		},
		send: "GET /old;x/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{served("GET /new/page")},
	},
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

	// An app slower than the first quarter second: its answer is waited
	// for with a look at its socket and no read buffer, then read; its
	// connection is reused for the next request. One that resets the
	// connection then: the reset, which the look takes from the socket,
	// is still the request's cause.
	{
		name: "an app answering after the first slice, then a request",
		answer: func(c net.Conn, r appReq) {
			if r.URI == "/late" {
				time.Sleep(400 * time.Millisecond)
			}
			answerGot(c, r)
		},
		send: "GET /late HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{served("GET /late", "GET /next")},
	},
	{
		name: "an app resetting after the first slice",
		answer: func(c net.Conn, r appReq) {
			time.Sleep(400 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		},
		send: "GET /reset HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{{Statuses: []int{502}, Causes: []string{"upstream_reset"}, Closed: true, App: []string{"GET /reset"}}},
	},

	// 14. HTTP/2 prior knowledge on a listener without h2c (h1Options):
	// not HTTP/1, not to be forwarded as if it were; gatehouse answers it
	// itself (a GOAWAY) and closes.
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

	// 19. Expect (RFC 9110 §10.1.1): 100-continue is the front's to
	// answer, when the body is first read, and not forwarded; any other
	// expectation is refused (400, where 417 would do as well).
	{
		name: "chunked with Expect: 100-continue",
		send: "POST /c-continue HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n" +
			"5\r\nhello\r\n0\r\n\r\n",
		want:  []outcome{{Statuses: []int{100, 200}, Causes: []string{"", ""}, Closed: true, App: []string{"POST /c-continue"}}},
		check: allOf(appBodies("hello"), appLacks("Expect"), answerBodies("", "got POST /c-continue")),
	},
	{
		name: "Expect: 100-continue then a pipelined request",
		send: "POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello" +
			"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want:  []outcome{{Statuses: []int{100, 200, 200}, Causes: []string{"", "", ""}, Closed: true, App: []string{"POST /continue", "GET /after"}}},
		check: allOf(appBodiesAre("hello", ""), appLacks("Expect")),
	},
	{
		// Refused before its body is read: no 100, and the body the
		// client sent anyway (a request) is never read as one.
		name:   "Expect: 100-continue on a request refused before its body",
		routes: []string{"/public/"},
		send:   fmt.Sprintf("POST /elsewhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled),
		want:   []outcome{noRoute()},
	},
	{
		name:  "Expect: something-else",
		send:  "POST /expect HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\nhello" + smuggled,
		want:  []outcome{rejected()},
		check: entryIs("/expect", 400, "bad_request"),
	},
	{
		// Every Expect field counts, not the last alone.
		name:  "Expect: something-else, then Expect: 100-continue",
		send:  "POST /expect2 HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + smuggled,
		want:  []outcome{rejected()},
		check: entryIs("/expect2", 400, "bad_request"),
	},

	// 20. HTTP/1.0: no chunked coding, no 1xx, keep-alive only when asked
	// for and granted; an answer of unknown length ends with the
	// connection.
	{
		// Keep-alive is the server's to grant: both served (every answer
		// but the last saying keep-alive, with a length), or the first
		// only, as the connection's last answer.
		name:  "HTTP 1.0 keep-alive then a second request",
		send:  "GET /k10 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /k10b HTTP/1.0\r\nHost: x\r\n\r\n",
		want:  []outcome{served("GET /k10", "GET /k10b"), served("GET /k10")},
		check: allOf(http10Answers, appAnswered),
	},
	{
		name:   "HTTP 1.0 answer of unknown length runs to the close",
		answer: chunkedAnswer("hello", " world"),
		send:   "GET /u10 HTTP/1.0\r\nHost: x\r\n\r\n",
		want:   []outcome{served("GET /u10")},
		check:  allOf(http10Answers, answerBodies("hello world")),
	},
	{
		name:   "HTTP 1.0 answer the app ends by closing",
		answer: closeAnswer("hello world"),
		send:   "GET /close10 HTTP/1.0\r\nHost: x\r\n\r\n",
		want:   []outcome{served("GET /close10")},
		check:  allOf(http10Answers, answerBodies("hello world")),
	},
	{
		// No 100 Continue to a client that does not know it.
		name:  "HTTP 1.0 Expect: 100-continue is ignored",
		send:  "POST /e10 HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
		want:  []outcome{served("POST /e10")},
		check: allOf(http10Answers, appBodies("hello"), appLacks("Expect")),
	},
	{
		// The request is for the address the client connected to.
		name: "HTTP 1.0 without Host",
		send: "GET /nohost10 HTTP/1.0\r\n\r\n",
		want: []outcome{served("GET /nohost10")},
		check: allOf(http10Answers, func(t *testing.T, r *attackRun) {
			for _, q := range r.reqs {
				if q.Host != r.d.addr {
					t.Errorf("app got Host %q, want the address connected to, %s", q.Host, r.d.addr)
				}
			}
		}),
	},

	// 21. An absolute-form target's authority is the request's host,
	// whatever Host says (RFC 9112 §3.2.2): the route is chosen by it,
	// and the app gets it as Host and the target in origin-form.
	{
		name:   "absolute-form target routed by its authority, not Host",
		routes: []string{"app.example/"},
		send:   "GET http://app.example/p?q=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
		want:   []outcome{served("GET /p?q=1")},
		check:  appHost("app.example"),
	},
	{
		name:   "Host names the route, the absolute-form target another host",
		routes: []string{"app.example/"},
		send:   "GET http://other.example/p HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
		want:   []outcome{noRoute()},
	},
	refusedCase("absolute-form target with userinfo", "GET http://user@app.example/p HTTP/1.1\r\nHost: app.example\r\n\r\n"+smuggled),
	refusedCase("absolute-form target of another scheme", "GET ftp://app.example/p HTTP/1.1\r\nHost: app.example\r\n\r\n"+smuggled),

	// 22. gatehouse is no forward proxy.
	refusedCase("CONNECT", "CONNECT app.example:443 HTTP/1.1\r\nHost: app.example:443\r\n\r\n"+smuggled),

	// 23. OPTIONS * is gatehouse's own to answer (200, Allow, no app
	// asked), and the connection goes on: what is pipelined after it is
	// read by the front as any request is.
	{
		name: "OPTIONS * then pipelined requests",
		send: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" +
			"GET /o1 HTTP/1.1\r\nHost: x\r\n\r\n" +
			"POST /o2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
			"GET /o3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{{Statuses: []int{200, 200, 200, 200}, Causes: []string{"", "", "", ""}, Closed: true,
			App: []string{"GET /o1", "POST /o2", "GET /o3"}}},
		check: allOf(answerBodies("", "got GET /o1", "got POST /o2", "got GET /o3"), appBodiesAre("", "hello", ""),
			func(t *testing.T, r *attackRun) {
				if a := r.client.answers; len(a) > 0 && a[0].header.Get("Allow") == "" {
					t.Errorf("the OPTIONS * answer has no Allow field: %v", a[0].header)
				}
			}),
	},

	// 24. Upgrades: only to a protocol the app's upgrades: lists (by
	// default websocket), never h2c; an Upgrade field that Connection
	// does not name (or on HTTP/1.0) asks for nothing, and is a
	// hop-by-hop field to drop.
	{
		name:  "Upgrade: h2c refused",
		send:  "GET /up-h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n",
		want:  []outcome{upgradeRefused()},
		check: entryIs("/up-h2c", 400, "upgrade_refused"),
	},
	{
		// A refused upgrade leaves the connection HTTP/1.1: what follows
		// is served, or the connection closes; never passed to the app
		// as anything but a request.
		name: "Upgrade: h2c refused, then a pipelined request",
		send: "GET /up-h2c2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n" +
			"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: []outcome{upgradeRefused(),
			{Statuses: []int{400, 200}, Causes: []string{"upgrade_refused", ""}, Closed: true, App: []string{"GET /after"}}},
	},
	{
		name:  "Upgrade without Connection: upgrade is a plain request",
		send:  "GET /up-plain HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: close\r\n\r\n",
		want:  []outcome{served("GET /up-plain")},
		check: allOf(appLacks("Upgrade"), appConnectionLacks("upgrade")),
	},
	{
		name:  "Upgrade: websocket on HTTP 1.0 is a plain request",
		send:  "GET /up10 HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		want:  []outcome{served("GET /up10")},
		check: allOf(http10Answers, appLacks("Upgrade"), appConnectionLacks("upgrade")),
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
		if diff := cmp.Diff(bodies, got); diff != "" {
			t.Errorf("answer bodies (-want +got):\n%s", diff)
		}
	}
}

// allOf runs each check.
func allOf(checks ...func(*testing.T, *attackRun)) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		for _, c := range checks {
			c(t, r)
		}
	}
}

// appBodiesAre wants the app's requests to carry these bodies, in order,
// each in full.
func appBodiesAre(bodies ...string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		var got []string
		for _, q := range r.reqs {
			got = append(got, q.Body)
			if q.BodyErr != "" {
				t.Errorf("app got %s %s with a body that ended in %q", q.Method, q.URI, q.BodyErr)
			}
		}
		if diff := cmp.Diff(bodies, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("bodies the app got (-want +got):\n%s", diff)
		}
	}
}

// appLacks wants no request the app got to carry any of fields.
func appLacks(fields ...string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		for _, q := range r.reqs {
			for _, f := range fields {
				if v, ok := q.Header[http.CanonicalHeaderKey(f)]; ok {
					t.Errorf("app got %s %s with %s: %q", q.Method, q.URI, f, v)
				}
			}
		}
	}
}

// appConnectionLacks wants no request the app got to name token in its
// Connection field.
func appConnectionLacks(token string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		for _, q := range r.reqs {
			for _, v := range q.Header["Connection"] {
				for tok := range strings.SplitSeq(v, ",") {
					if strings.EqualFold(strings.TrimSpace(tok), token) {
						t.Errorf("app got %s %s with Connection: %s", q.Method, q.URI, v)
					}
				}
			}
		}
	}
}

// appHost wants every request the app got to say Host: host.
func appHost(host string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		for _, q := range r.reqs {
			if q.Host != host {
				t.Errorf("app got %s %s with Host %q, want %q", q.Method, q.URI, q.Host, host)
			}
		}
	}
}

// appAnswered wants the client's answers to be the app's to the requests
// it got, in order ("got METHOD URI" each).
func appAnswered(t *testing.T, r *attackRun) {
	var want []string
	for _, q := range r.reqs {
		want = append(want, "got "+q.Method+" "+q.URI)
	}
	answerBodies(want...)(t, r)
}

// noEntry wants no access entry for path: nothing of it was read as a
// request.
func noEntry(path string) func(*testing.T, *attackRun) {
	return func(t *testing.T, r *attackRun) {
		r.d.mu.Lock()
		defer r.d.mu.Unlock()
		for _, e := range r.d.entries {
			if e.Path == path {
				t.Errorf("access entry for %s: %d %q; nothing of the kind was sent as a request", path, e.Status, e.Cause)
			}
		}
	}
}

// http10Answers wants the answers to an HTTP/1.0 client to be what it
// can read (RFC 9112 §6.1, RFC 9110 §15.2): none 1xx or chunked, and
// each the connection goes on after announcing keep-alive with a length;
// the last before the connection's end promising no keep-alive.
func http10Answers(t *testing.T, r *attackRun) {
	as := r.client.answers
	for i, a := range as {
		keepAlive := false
		for _, v := range a.header["Connection"] {
			for tok := range strings.SplitSeq(v, ",") {
				keepAlive = keepAlive || strings.EqualFold(strings.TrimSpace(tok), "keep-alive")
			}
		}
		switch last := i == len(as)-1; {
		case a.status < 200:
			t.Errorf("answer %d to an HTTP/1.0 client is %d: no 1xx to such a client", i+1, a.status)
		case a.chunked:
			t.Errorf("answer %d to an HTTP/1.0 client is chunked", i+1)
		case !last && (a.length < 0 || !keepAlive):
			t.Errorf("answer %d to an HTTP/1.0 client, with Content-Length %d and Connection %q, is followed by another",
				i+1, a.length, a.header["Connection"])
		case last && r.client.closed && keepAlive:
			t.Errorf("the last answer to an HTTP/1.0 client says keep-alive, and the connection closed after it")
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
	// conns, if followed (newRecApp's), say when the app has handled
	// every byte sent to it.
	conns *appConns
}

// newRecApp starts a recording app. answer writes the raw answer to a
// request; nil answers 200 with a body naming the request.
func newRecApp(t testing.TB, answer func(c net.Conn, r appReq)) *recApp {
	if answer == nil {
		answer = answerGot
	}
	a := &recApp{conns: &appConns{}}
	a.addr = rawBackend(t, func(c net.Conn, br *bufio.Reader) { a.conns.serve(c, br, a.serve(answer)) })
	return a
}

// serve reads requests off c, records each, and answers it with answer.
func (a *recApp) serve(answer func(c net.Conn, r appReq)) func(c net.Conn, br *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			a.conns.busy(c, false)
			if _, err := br.Peek(1); err == nil {
				a.conns.busy(c, true)
			}
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
			if req.Header.Get("User-Agent") == strayProbe {
				// Not the gateway's: a health probe of a gatehouse run by
				// another test on this machine, whose instance had the
				// port this app now has.
				io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
				continue
			}
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
	}
}

// strayProbe is the User-Agent of gatehouse's health probes (probe.go),
// which no case sends.
const strayProbe = "gatehouse-probe"

func (a *recApp) record(q appReq) {
	a.mu.Lock()
	a.reqs = append(a.reqs, q)
	a.mu.Unlock()
}

// settle waits (boundedly) for the gateway to be done with every request
// and the app with every byte it was sent (quiesce), then returns what
// the app received. Where those events do not tell the whole story (an
// app it does not follow, a front that speaks HTTP/2), a forward racing
// the client's close or reset is given a moment more to show.
func (a *recApp) settle(d *direct) []appReq {
	var quiet func() bool
	var grace time.Duration
	if a.conns != nil {
		quiet = a.conns.quiet
	}
	if quiet == nil || d.h2 {
		grace = 50 * time.Millisecond
	}
	quiesce(d, 3*time.Second, quiet, grace)
	return a.all()
}

// all is what the app received so far.
func (a *recApp) all() []appReq {
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

// chunkedAnswer answers 200 with a chunked body of parts, each in a write
// of its own: a length the gateway does not know when the answer starts.
func chunkedAnswer(parts ...string) func(c net.Conn, r appReq) {
	return func(c net.Conn, r appReq) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, p := range parts {
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(p), p)
		}
		io.WriteString(c, "0\r\n\r\n")
	}
}

// closeAnswer answers 200 with body and neither length nor chunked
// coding, and ends the body by closing the connection.
func closeAnswer(body string) func(c net.Conn, r appReq) {
	return func(c net.Conn, r appReq) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"+body)
		c.Close()
	}
}

// earlyHints answers 103 with a Link, then, once the gateway has read
// it, 200.
func earlyHints(c net.Conn, r appReq) {
	io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
	testutil.AwaitPeerRead(c, 0, 2*time.Second)
	answerGot(c, r)
}

// The client's side.

// answer is one HTTP/1 response the client read.
type answer struct {
	status int
	cause  string
	proto  string // its status line's version
	header http.Header
	// chunked: its body came chunked; length is its Content-Length (-1
	// when it has none: chunked, or running to the connection's end).
	chunked bool
	length  int64
	body    string
}

// clientView is everything the client got on one connection.
type clientView struct {
	err       error // the dial failed
	raw       []byte
	answers   []answer // raw, read as HTTP/1 responses, as far as it goes
	closed    bool     // the gateway closed (else the read deadline ran out)
	firstByte time.Duration
}

// sendRaw is sendH1 on a plain connection.
func sendRaw(addr, send string) clientView { return sendH1(wireH1, addr, send) }

// parkOpener is the plain request TestAttacksOnParkedConnections sends
// first, and parkPause how long it then waits: well past the front's
// parkAfter, so that the connection is parked (or, unparkable, has
// dropped its buffers) when the case's bytes come.
const (
	parkOpener = "GET / HTTP/1.1\r\nHost: gatehouse.test\r\n\r\n"
	parkPause  = 300 * time.Millisecond
)

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
		as = append(as, answer{status: resp.StatusCode, cause: resp.Header.Get("Gatehouse-Cause"), proto: resp.Proto, header: resp.Header,
			chunked: slices.Contains(resp.TransferEncoding, "chunked"), length: resp.ContentLength, body: string(body)})
		if err != nil {
			return as
		}
	}
}

// The verdict.

// pieces is what the case sends, in the pieces it sends it in.
func (c attackCase) pieces() []string {
	if c.records != nil {
		return c.records
	}
	return []string{c.send}
}

// attackRun is one case's exchange on one wire: opener (if any), then,
// parkPause later, send, on a connection of its own.
type attackRun struct {
	d      *direct
	app    *recApp
	opener string
	send   []string
	client clientView
	reqs   []appReq // what the app received
}

// exchangeAll runs the exchanges of runs over w side by side, and keeps
// what the client and the app got of each: a case where the gateway
// wrongly keeps the connection open costs a read deadline, and they are
// waited out together, not one by one. A few per core at once, not all:
// a hundred TLS handshakes at once under the race detector on a busy
// machine outlast the read deadline themselves.
func exchangeAll(w wire, runs []*attackRun) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4*runtime.GOMAXPROCS(0))
	for _, r := range runs {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			r.client = sendH1After(w, r.d.addr, r.opener, r.send...)
			r.reqs = r.app.settle(r.d)
		})
	}
	wg.Wait()
}

// verdict wants r's exchange to have come to one of wants (none: any),
// and check, if set, to hold of it; more is added to a mismatch's
// message.
func (r *attackRun) verdict(t *testing.T, wants []outcome, check func(*testing.T, *attackRun), more string) {
	t.Helper()
	if r.client.err != nil {
		t.Fatalf("exchange: %v", r.client.err)
	}
	if wants != nil {
		if diff, ok := matchOutcome(r.outcome(), wants); !ok {
			t.Errorf("outcome mismatch (-want +got):\n%s\nclient got %.600q\napp got %s%s", diff, r.client.raw, r.reqsString(), more)
		} else if len(wants) > 1 {
			t.Logf("took the outcome %s", r.outcome()) // which of the acceptable ones
		}
	}
	if check != nil {
		check(t, r)
	}
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
func (d *direct) anyEntry() (e telemetry.AccessEntry, ok bool) {
	testutil.Eventually(2*time.Second, func() bool {
		e, ok = d.find(func(telemetry.AccessEntry) bool { return true })
		return ok
	})
	return e, ok
}
