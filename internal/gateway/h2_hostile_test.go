package gateway_test

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// TestH2Hostile writes hostile HTTP/2 frames, by hand, to the gateway,
// over TLS and as h2c (the "https" and "http" subtests), and checks, for
// each case:
//
//   - the client gets what a correct server gives: the same stream or
//     connection error, or status, as net/http's own HTTP/2 server (the
//     oracle) given the same bytes, out of the outcomes the case allows;
//   - a connection that survives a stream error still serves a
//     well-formed request (the server's HPACK state is intact);
//   - the app receives exactly the requests the oracle hands its handler
//     intact, none of the malformed ones; where gatehouse is stricter
//     than net/http (a request HTTP/1.1 cannot carry), the app sees
//     nothing and the client a 400;
//   - a well-formed request on a fresh connection afterwards is served.
//
// goleak (TestMain) checks that nothing is left running.
func TestH2Hostile(t *testing.T) {
	// The cases' exchanges run at once, over h2c and TLS together: most
	// are a few frames, and the silent ones wait out the idle timeout
	// together.
	runH2Cases(t, h2Cases, len(h2Cases), true)
}

// runH2Cases runs cases over h2c and over TLS (both at once if
// together), at most par at a time on each, each against its own
// gateway, app and oracle (net/http's server, h2c: the protocol under
// test is the same over both).
func runH2Cases(t *testing.T, cases []h2Case, par int, together bool) {
	for _, secure := range []bool{false, true} {
		t.Run(schemeOf(secure), func(t *testing.T) {
			if together {
				t.Parallel()
			}
			runs := make([]*h2Run, len(cases))
			for i := range cases {
				app := newRecApp(t, nil)
				opts := h2Opts(secure)
				runs[i] = &h2Run{app: app, d: directWith(t, app.addr, opts, cases[i].adjust), o: newOracle(t, opts)}
			}
			// The exchanges race the idle timeout (h2Idle): all of them at
			// once, beside the -race suite on two cores, let it pass
			// before a client's first HEADERS. Each case's TLS handshakes
			// (its own and afterwards') come at once too: a burst of them
			// starves the exchanges further.
			n := min(par, 32)
			if secure {
				n = min(par, 16)
			}
			sem := make(chan struct{}, n)
			var wg sync.WaitGroup
			for i, c := range cases {
				r := runs[i]
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					var wg2 sync.WaitGroup
					wg2.Go(func() { r.oracleGot, r.oracleView = exchangeH2(t, r.o.addr, false, c) })
					r.got, r.view = exchangeH2(t, r.d.addr, secure, c)
					r.reqs = r.app.settle(r.d)
					r.after = afterwards(t, r.d.url, secure)
					wg2.Wait()
				})
			}
			wg.Wait()
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) { runs[i].check(t, c) })
			}
		})
	}
}

// h2Opts are the front's options for these tests: h2c on, or TLS; the
// idle timeout short enough for a silent client to be seen out.
func h2Opts(secure bool) front.Options {
	o := front.Options{H2C: true, KeepaliveTimeout: h2Idle}
	if secure {
		o.TLS, _ = h2TLS()
	}
	return o
}

const (
	// The idle timeout is what the silent cases wait out, and a bound on
	// the gap between the others' exchanges: every case at once, each with
	// a gateway, an app and an oracle, under -race beside the plain
	// suite, took longer than 2.5 s between two streams on a slow machine.
	h2Idle     = 5 * time.Second  // front.Options.KeepaliveTimeout, x/net's IdleTimeout
	h2Patience = 10 * time.Second // bound on waiting for one stream's fate
	nextID     = 1001             // the follow-up request's stream
)

// h2Case is one row of the table.
type h2Case struct {
	name string
	// send writes the attack after the client preface and an empty
	// SETTINGS frame (raw: send writes the preface itself).
	send func(h *h2Raw)
	raw  bool
	// watch is the stream whose fate is the outcome (default 1); conn:
	// the connection's.
	watch uint32
	conn  bool
	// settle, if set, says when the server has answered instead of
	// watch's fate; result, if set, reads the outcome from the view.
	settle func(v *h2View) bool
	result func(v *h2View) string
	// want are the acceptable outcomes, from the gateway and the oracle
	// alike: the stream's fate (see h2View.outcome), and when the
	// connection survived it, "; next " and a follow-up request's.
	want []string
	// app is what the app must receive, "METHOD URI" each, in order; the
	// oracle must hand its handler the same, intact. appFor, if set, says
	// it for each outcome (the gateway's, and the oracle's).
	app    []string
	appFor func(outcome string) []string
	// stricter says why gatehouse refuses a request net/http's HTTP/2
	// server hands its handler: the app must see nothing, and oracleWant
	// is the oracle's outcome.
	stricter string
	// oracleWant replaces want for the oracle.
	oracleWant []string
	// adjust, if set, changes the app's config.
	adjust func(*config.App)
}

// Outcomes many cases share.
var (
	// malformed: a stream error, as a 400 answer or RST_STREAM, after
	// which the connection serves on.
	malformed = []string{"400; next 200", "RST PROTOCOL_ERROR; next 200"}
	// resetOnly: RST_STREAM PROTOCOL_ERROR, the connection serves on.
	resetOnly = []string{"RST PROTOCOL_ERROR; next 200"}
	// servedOK: answered 200, the connection serves on.
	servedOK = []string{"200; next 200"}
	// stricterWant: gatehouse's own 400, logged as bad_request.
	stricterWant = []string{"400; next 200"}
)

func connError(code http2.ErrCode) []string { return []string{"GOAWAY " + code.String()} }

// headersWith is a case sending one GET of path on stream 1 with extra
// fields.
func headersWith(path string, extra ...string) func(h *h2Raw) {
	return func(h *h2Raw) { h.headers(1, true, h.req("GET", path, extra...)...) }
}

// fields is a case sending one HEADERS frame on stream 1 with exactly
// these fields, END_STREAM set.
func fields(f ...string) func(h *h2Raw) {
	return func(h *h2Raw) { h.headers(1, true, f...) }
}

// post sends a POST of path on stream 1 with extra fields, then DATA
// frames with bodies (the last one ending the stream).
func post(path string, extra []string, bodies ...string) func(h *h2Raw) {
	return func(h *h2Raw) {
		h.headers(1, len(bodies) == 0, h.req("POST", path, extra...)...)
		for i, b := range bodies {
			h.data(1, i == len(bodies)-1, []byte(b))
		}
	}
}

// latePost sends a POST of path declaring content-length cl, and a
// moment later its body as one DATA frame ending the stream.
func latePost(path, cl, body string) func(h *h2Raw) {
	return func(h *h2Raw) {
		h.headers(1, false, h.req("POST", path, "content-length", cl)...)
		time.Sleep(300 * time.Millisecond) // the point: the gateway has had time to forward
		h.data(1, true, []byte(body))
	}
}

// newerXNet is a malformed request that x/net v0.62's HTTP/2 server (the
// gateway's) resets and Go 1.26's bundled one (the oracle) still hands
// its handler: the newer checks of the :authority and :path
// (httpcommon.NewServerRequest).
func newerXNet(c h2Case) h2Case {
	c.want, c.oracleWant = resetOnly, servedOK
	c.stricter = "x/net's HTTP/2 server is newer than net/http's"
	return c
}

// strictCase is a GET net/http's HTTP/2 server hands its handler but
// gatehouse refuses with 400, since the HTTP/1.1 request line it would
// write says something else to the app, or nothing it can parse.
func strictCase(name, method, path, why string) h2Case {
	return h2Case{
		name:       name,
		send:       func(h *h2Raw) { h.headers(1, true, h.req(method, path)...) },
		want:       stricterWant,
		oracleWant: servedOK,
		stricter:   why,
	}
}

var h2Cases = []h2Case{
	// Connection-specific fields are malformed in HTTP/2 (RFC 9113
	// §8.2.2); TE may only say "trailers".
	{name: "connection field", send: headersWith("/c", "connection", "keep-alive"), want: malformed},
	{name: "transfer-encoding chunked with a chunked body",
		send: post("/te", []string{"transfer-encoding", "chunked"}, "5\r\nhello\r\n0\r\n\r\n"+smuggled), want: malformed},
	{name: "keep-alive field", send: headersWith("/k", "keep-alive", "timeout=5"), want: malformed},
	{name: "upgrade field", send: headersWith("/u", "upgrade", "websocket"), want: malformed},
	{name: "proxy-connection field", send: headersWith("/p", "proxy-connection", "keep-alive"), want: malformed},
	{name: "te gzip", send: headersWith("/t", "te", "gzip"), want: malformed},
	{name: "te trailers and gzip", send: headersWith("/t", "te", "trailers, gzip"), want: malformed},
	{name: "a field sent again around others is served", send: headersWith("/again", "x-a", "1", "x-b", "2", "x-a", "3", "x-a", "4"), want: servedOK, app: []string{"GET /again"}},
	{name: "te trailers is served", send: headersWith("/te-trailers", "te", "trailers"), want: servedOK, app: []string{"GET /te-trailers"}},

	// Field names: lower-case tokens only (§8.2.1).
	{name: "upper-case field name", send: headersWith("/n", "X-Upper", "1"), want: resetOnly},
	{name: "field name with a space", send: headersWith("/n", "x y", "1"), want: resetOnly},
	{name: "field name with a colon", send: headersWith("/n", "x:y", "1"), want: resetOnly},
	{name: "empty field name", send: headersWith("/n", "", "1"), want: resetOnly},

	// Pseudo-header fields (§8.3).
	{name: "missing :method", send: fields(":scheme", "http", ":authority", "x", ":path", "/m"), want: resetOnly},
	{name: "missing :path", send: fields(":method", "GET", ":scheme", "http", ":authority", "x"), want: resetOnly},
	{name: "missing :scheme", send: fields(":method", "GET", ":authority", "x", ":path", "/m"), want: resetOnly},
	{name: ":scheme ftp", send: fields(":method", "GET", ":scheme", "ftp", ":authority", "x", ":path", "/m"), want: resetOnly},
	{name: "duplicate :path", send: fields(":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/a", ":path", "/b"), want: resetOnly},
	{name: "duplicate :method", send: fields(":method", "GET", ":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/a"), want: resetOnly},
	{name: "pseudo-header after a regular field", send: fields(":method", "GET", ":scheme", "http", "x-a", "1", ":authority", "x", ":path", "/a"), want: resetOnly},
	{name: "unknown pseudo-header", send: headersWith("/a", ":foo", "bar"), want: resetOnly},
	{name: ":status in a request", send: headersWith("/a", ":status", "200"), want: resetOnly},
	{name: ":path without a leading slash", send: headersWith("a/b"), want: resetOnly},
	newerXNet(h2Case{name: ":path absolute URI", send: headersWith("http://evil/a")}),
	{name: "empty :path", send: headersWith(""), want: resetOnly},
	{name: ":path with a tab", send: headersWith("/a\tb"), want: resetOnly},
	newerXNet(h2Case{name: ":authority with a space", send: fields(":method", "GET", ":scheme", "http", ":authority", "a b", ":path", "/a")}),
	{name: ":authority with userinfo", send: fields(":method", "GET", ":scheme", "http", ":authority", "u@x", ":path", "/a"), want: resetOnly},
	newerXNet(h2Case{name: ":authority and host disagree", send: headersWith("/a", "host", "other")}),
	newerXNet(h2Case{name: "two host fields, no :authority", send: fields(":method", "GET", ":scheme", "http", ":path", "/a", "host", "a", "host", "b")}),
	// RFC 9113 §8.3.1: an http or https request carries one or the
	// other. gatehouse refuses it as it refuses an HTTP/1.1 request
	// without Host; it used to send the app its own name as the Host.
	{name: "no :authority and no host field", send: fields(":method", "GET", ":scheme", "http", ":path", "/no-host"),
		want: stricterWant, oracleWant: servedOK, stricter: "a request without authority"},
	{name: "host field, no :authority, is served", send: fields(":method", "GET", ":scheme", "http", ":path", "/host-only", "host", "h"), want: servedOK, app: []string{"GET /host-only"}},

	// Characters HTTP/1.1 cannot carry, which HPACK can (§8.2.1).
	{name: "CR in a field value", send: headersWith("/v", "x-a", "1\rX-Injected: 1"), want: resetOnly},
	{name: "LF in a field value", send: headersWith("/v", "x-a", "1\nX-Injected: 1"), want: resetOnly},
	{name: "CRLF in a field value", send: headersWith("/v", "x-a", "1\r\n\r\n"+smuggled), want: resetOnly},
	{name: "NUL in a field value", send: headersWith("/v", "x-a", "1\x00"), want: resetOnly},
	{name: "CRLF in :path", send: headersWith("/v HTTP/1.1\r\nX: 1\r\n\r\n" + smuggled), want: resetOnly},
	{name: "LF in :method", send: fields(":method", "GET\n", ":scheme", "http", ":authority", "x", ":path", "/v"), want: resetOnly},
	{name: "NUL in :authority", send: fields(":method", "GET", ":scheme", "http", ":authority", "x\x00", ":path", "/v"), want: resetOnly},

	// What net/http's HTTP/2 server hands its handler, and HTTP/1.1's
	// request line cannot say (gatehouse used to write it as it was: the
	// app could not parse it, and the gateway took the member out of
	// rotation for it).
	strictCase("method with a space", "GET /admin", "/public", "a request line of four words"),
	strictCase("method with a slash", "G/T", "/m", "not a token"),
	strictCase(":path with a space", "GET", "/a /b", "a request line of four words"),
	strictCase("query with a space", "GET", "/a?b c", "a request line of four words"),
	strictCase(":path with a fragment", "GET", "/a#b", "a fragment is not part of a request target"),
	strictCase(":path * for GET", "GET", "*", "not a path"),
	// OPTIONS * asks about the server, which answers it (as net/http
	// does), over HTTP/1.1 as over HTTP/2; no app sees it.
	{name: "OPTIONS *", send: fields(":method", "OPTIONS", ":scheme", "http", ":authority", "x", ":path", "*"), want: servedOK, oracleWant: servedOK},
	{name: "lower-case method is a method", send: fields(":method", "get", ":scheme", "http", ":authority", "x", ":path", "/lower"), want: servedOK, app: []string{"get /lower"}},

	// Content-Length against the DATA sent (§8.1.1): the body read
	// fails, and the app, which is sent a body only once it was read in
	// full (retry_body_limit), sees nothing.
	{name: "content-length more than the DATA", send: post("/cl", []string{"content-length", "10"}, "hello"), want: malformed},
	{name: "content-length less than the DATA", send: post("/cl", []string{"content-length", "3"}, "hello"), want: malformed},
	{name: "content-length less than two DATA frames", send: post("/cl", []string{"content-length", "5"}, "hel", "lo!"), want: malformed},
	{name: "content-length not a number", send: post("/cl", []string{"content-length", "abc"}, "hello"), want: malformed},
	{name: "content-length negative", send: post("/cl", []string{"content-length", "-1"}, "hello"), want: malformed},
	{name: "content-length matching is served", send: post("/cl-ok", []string{"content-length", "5"}, "hel", "lo"), want: servedOK, app: []string{"POST /cl-ok"}},
	{name: "no content-length is served", send: post("/no-cl", nil, "hel", "lo"), want: servedOK, app: []string{"POST /no-cl"}},
	// A client fault on a stream is the stream's: the connection serves
	// on (gatehouse's "Connection: close" after one used to make x/net
	// send GOAWAY).
	{name: "body over limits.request_body", send: post("/big-body", []string{"content-length", "2000"}, strings.Repeat("b", 2000)),
		adjust: func(a *config.App) { a.Limits.RequestBody = 1000 }, want: []string{"413; next 200"}, oracleWant: servedOK,
		stricter: "limits.request_body"},
	// A length of 0 (or one x/net cannot parse, which it takes as 0)
	// used to be forwarded at once, body unread, and the DATA that came
	// later only reset a stream the app had been sent: the client is
	// slow to send it here.
	{name: "content-length 0 then DATA", send: latePost("/cl0", "0", "late"), want: malformed},
	{name: "content-length not a number then DATA", send: latePost("/cl-nan", "x", "late"), want: malformed},
	{name: "content-length 0 then an empty DATA frame is served", send: latePost("/cl0-ok", "0", ""), want: servedOK, app: []string{"POST /cl0-ok"}},
	{name: "an expectation other than 100-continue", send: post("/expect", []string{"expect", "something-else"}, "hello"),
		want: stricterWant, oracleWant: servedOK, stricter: "refused as over HTTP/1.1 (RFC 9110 §10.1.1)"},
	{name: "an empty expect is served, as over HTTP/1.1", send: post("/expect-none", []string{"expect", ""}, "hello"),
		want: servedOK, app: []string{"POST /expect-none"}},
	{name: "100-continue beside another expectation", send: post("/expect-both", []string{"expect", "100-continue, something-else"}, "hello"),
		want: stricterWant, oracleWant: servedOK, stricter: "refused as over HTTP/1.1, where the field is not 100-continue alone"},
	{name: "two content-lengths differing", send: post("/cl2", []string{"content-length", "5", "content-length", "6"}, "hello"),
		want: stricterWant, oracleWant: servedOK, stricter: "x/net reads the first"},
	// RFC 9113 calls this malformed; both of Go's servers take the
	// stream's end as the truth (an empty body).
	{name: "content-length with END_STREAM on HEADERS", send: post("/cl-end", []string{"content-length", "5"}),
		want: stricterWant, oracleWant: servedOK, stricter: "a length the stream's end contradicts"},

	// Frames on streams in the wrong state (§5.1).
	{name: "DATA on a closed stream", send: func(h *h2Raw) {
		h.get(1, "/closed")
		h.await(h2Patience, settled(1))
		h.data(1, true, []byte("late"))
		h.await(h2Patience, func(v *h2View) bool { return v.Streams[1].Reset || v.Closed })
	}, result: func(v *h2View) string {
		if s := v.Streams[1]; s != nil && s.Status != 0 && s.Reset {
			return fmt.Sprintf("%d then RST %s", s.Status, s.Code)
		}
		return v.outcome(1)
	}, want: []string{"200 then RST STREAM_CLOSED; next 200"}, app: []string{"GET /closed"}},
	{name: "DATA on an idle stream", send: func(h *h2Raw) { h.data(3, true, []byte("x")) }, watch: 3, want: connError(http2.ErrCodeProtocol)},
	{name: "DATA on stream 0", send: func(h *h2Raw) { h.data(0, true, []byte("x")) }, conn: true, want: connError(http2.ErrCodeProtocol)},
	{name: "HEADERS on stream 0", send: func(h *h2Raw) { h.headers(0, true, h.req("GET", "/z")...) }, conn: true, want: connError(http2.ErrCodeProtocol)},
	{name: "HEADERS on an even stream", send: func(h *h2Raw) { h.headers(2, true, h.req("GET", "/z")...) }, watch: 2, want: connError(http2.ErrCodeProtocol)},
	{name: "stream id going down", send: func(h *h2Raw) {
		h.get(5, "/five")
		h.await(h2Patience, settled(5))
		h.get(3, "/three")
	}, watch: 3, want: connError(http2.ErrCodeProtocol), app: []string{"GET /five"}},
	{name: "stream depending on itself", send: func(h *h2Raw) {
		blk := h.block(h.req("GET", "/prio")...)
		h.frame(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true,
				Priority: http2.PriorityParam{StreamDep: 1, Weight: 15}})
		})
	}, want: resetOnly},

	// Trailers (§8.1).
	{name: "trailers with a pseudo-header", send: func(h *h2Raw) {
		h.headers(1, false, h.req("POST", "/tr")...)
		h.data(1, false, []byte("x"))
		h.headers(1, true, ":path", "/evil")
	}, want: resetOnly},
	{name: "trailers without END_STREAM", send: func(h *h2Raw) {
		h.headers(1, false, h.req("POST", "/tr")...)
		h.data(1, false, []byte("x"))
		h.headers(1, false, "x-t", "1")
	}, want: resetOnly},

	// Header blocks (§4.3, §6.10).
	// Each block's fields are its own: a stream lacking :path after one
	// with a long head is malformed, not served as the one before it.
	{name: "a block without :path after a long one", send: func(h *h2Raw) {
		h.headers(1, true, h.req("GET", "/first", bigFields(8<<10)...)...)
		h.await(h2Patience, settled(1))
		h.headers(3, true, ":method", "GET", ":scheme", h.scheme, ":authority", "x")
	}, watch: 3, want: resetOnly, app: []string{"GET /first"}},
	{name: "HPACK garbage", send: func(h *h2Raw) {
		h.frame(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, EndStream: true, EndHeaders: true})
		})
	}, want: connError(http2.ErrCodeCompression)},
	{name: "CONTINUATION on another stream", send: func(h *h2Raw) {
		blk := h.block(h.req("GET", "/c")...)
		h.frame(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:3], EndStream: true})
		})
		h.frame(func(w *http2.Framer) error { return w.WriteContinuation(3, true, blk[3:]) })
	}, want: connError(http2.ErrCodeProtocol)},
	{name: "DATA inside a header block", send: func(h *h2Raw) {
		blk := h.block(h.req("POST", "/c")...)
		h.frame(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:3]})
		})
		h.data(1, true, []byte("x"))
	}, want: connError(http2.ErrCodeProtocol)},
	{name: "header list past the head limit", send: func(h *h2Raw) { h.splitHeaders(1, h.req("GET", "/big", bigFields(96<<10)...)) },
		// 431 when the block ends in the frame that crosses the limit,
		// else the connection (x/net's CONTINUATION-flood defence).
		want: []string{"431; next 200", "GOAWAY PROTOCOL_ERROR"}},
	{name: "header list under the head limit is served", send: func(h *h2Raw) { h.splitHeaders(1, h.req("GET", "/big-ok", bigFields(40<<10)...)) },
		want: servedOK, app: []string{"GET /big-ok"}},
	{name: "empty CONTINUATION frames", send: emptyContinuations(10),
		want: servedOK, app: []string{"GET /empty-continuations"}},
	{name: "empty CONTINUATION flood", send: emptyContinuations(2000),
		// x/net counts header bytes, not frames, and serves the request;
		// the front counts frames that carry nothing.
		stricter: "a flood of frames that carry nothing ends the connection", oracleWant: servedOK,
		want: connError(http2.ErrCodeEnhanceYourCalm)},
	{name: "CONTINUATION trickle", send: func(h *h2Raw) {
		blk := h.block(h.req("GET", "/trickle")...)
		h.frame(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk})
		})
		// Empty CONTINUATION frames cost nothing against the header
		// limit: what ends them is the idle timeout, as for silence.
		for start := time.Now(); time.Since(start) < h2Patience; time.Sleep(100 * time.Millisecond) {
			if h.frame(func(w *http2.Framer) error { return w.WriteContinuation(1, false, nil) }) != nil {
				return
			}
		}
	}, want: []string{"closed", "GOAWAY NO_ERROR before the stream"}},

	// Flow control (§6.9).
	{name: "WINDOW_UPDATE overflowing the connection window", send: func(h *h2Raw) {
		for range 2 {
			h.frame(func(w *http2.Framer) error { return w.WriteWindowUpdate(0, 1<<31-1) })
		}
	}, conn: true, want: connError(http2.ErrCodeFlowControl)},
	{name: "WINDOW_UPDATE overflowing a stream window", send: func(h *h2Raw) {
		h.headers(1, false, h.req("POST", "/w")...)
		h.frame(func(w *http2.Framer) error { return w.WriteWindowUpdate(1, 1<<31-1) })
	}, want: []string{"RST FLOW_CONTROL_ERROR; next 200"}},
	{name: "WINDOW_UPDATE of zero on the connection", send: func(h *h2Raw) {
		h.frame(func(w *http2.Framer) error { return w.WriteWindowUpdate(0, 0) })
	}, conn: true, want: connError(http2.ErrCodeProtocol)},
	{name: "WINDOW_UPDATE of zero on a stream", send: func(h *h2Raw) {
		h.headers(1, false, h.req("POST", "/w")...)
		h.frame(func(w *http2.Framer) error { return w.WriteWindowUpdate(1, 0) })
	}, want: resetOnly},
	{name: "SETTINGS initial window past 2^31-1", send: func(h *h2Raw) {
		h.frame(func(w *http2.Framer) error {
			return w.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		})
	}, conn: true, want: connError(http2.ErrCodeFlowControl)},
	{name: "SETTINGS max frame size below 16 KiB", send: func(h *h2Raw) {
		h.frame(func(w *http2.Framer) error {
			return w.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100})
		})
	}, conn: true, want: connError(http2.ErrCodeProtocol)},
	// A client may ask for no HPACK table at all; the answers, and the
	// follow-up's on the same connection, still decode.
	{name: "SETTINGS header table size 0, then a request", send: func(h *h2Raw) {
		h.frame(func(w *http2.Framer) error {
			return w.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
		})
		h.headers(1, true, h.req("GET", "/table0")...)
	}, want: servedOK, app: []string{"GET /table0"}},
	{name: "frame larger than the server's max frame size", send: func(h *h2Raw) {
		h.headers(1, false, h.req("POST", "/f")...)
		h.raw([]byte{0x20, 0, 0, byte(http2.FrameData), 0, 0, 0, 0, 1, 'x'}) // says 2 MiB follow
	}, want: connError(http2.ErrCodeFrameSize)},
	{name: "too many concurrent streams", send: func(h *h2Raw) {
		// The front allows 250 at once; the 251st is refused, and the
		// connection serves on once the others are reset.
		for id := uint32(1); id <= 501; id += 2 {
			h.headers(id, false, h.req("POST", "/many")...)
		}
		h.await(h2Patience, settled(501))
		for id := uint32(1); id < 501; id += 2 {
			h.frame(func(w *http2.Framer) error { return w.WriteRSTStream(id, http2.ErrCodeCancel) })
		}
	}, watch: 501, want: []string{"RST PROTOCOL_ERROR; next 200", "RST REFUSED_STREAM; next 200"}},

	// The connection's start (§3.4).
	{name: "HTTP/1.1 after the preface", raw: true, send: func(h *h2Raw) {
		h.raw([]byte(http2.ClientPreface + "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	}, conn: true, want: []string{"GOAWAY FRAME_SIZE_ERROR", "GOAWAY PROTOCOL_ERROR", "closed"}},
	{name: "garbage in the preface", raw: true, send: func(h *h2Raw) {
		h.raw([]byte("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	}, conn: true, want: []string{"closed"}},
	{name: "preface then silence", raw: true, send: func(h *h2Raw) { h.raw([]byte(http2.ClientPreface)) },
		// x/net waits 2 s for the client's SETTINGS.
		conn: true, want: []string{"closed", "GOAWAY NO_ERROR before the stream"}},
	{name: "preface and SETTINGS then silence", send: func(*h2Raw) {}, conn: true,
		want: []string{"closed", "GOAWAY NO_ERROR before the stream"}},
	{name: "HEADERS without END_HEADERS then silence", send: func(h *h2Raw) {
		blk := h.block(h.req("GET", "/half")...)
		h.frame(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk})
		})
	}, want: []string{"closed", "GOAWAY NO_ERROR before the stream"}},
}

// bigFields are header fields of about n bytes in all.
func bigFields(n int) []string {
	var f []string
	for i := 0; n > 0; i++ {
		v := strings.Repeat(fmt.Sprintf("%08x", i*2654435761), 125) // 1000 bytes that compress poorly
		f = append(f, fmt.Sprintf("x-pad-%d", i), v)
		n -= len(v) + 32
	}
	return f
}

// splitHeaders writes fields as HEADERS and CONTINUATION frames of at
// most 16 KiB each, ending the stream.
func (h *h2Raw) splitHeaders(id uint32, fields []string) {
	blk := h.block(fields...)
	const max = 16 << 10
	first := blk[:min(max, len(blk))]
	blk = blk[len(first):]
	h.frame(func(w *http2.Framer) error {
		return w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: true, EndHeaders: len(blk) == 0})
	})
	for len(blk) > 0 {
		frag := blk[:min(max, len(blk))]
		blk = blk[len(frag):]
		if h.frame(func(w *http2.Framer) error { return w.WriteContinuation(id, len(blk) == 0, frag) }) != nil {
			return
		}
	}
}

// emptyContinuations opens a GET on stream 1 whose header block goes on
// in n empty CONTINUATION frames before the one that ends it.
func emptyContinuations(n int) func(h *h2Raw) {
	return func(h *h2Raw) {
		blk := h.block(h.req("GET", "/empty-continuations")...)
		h.frame(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true})
		})
		if h.burst(n, func(w *http2.Framer) { w.WriteContinuation(1, false, nil) }) == nil {
			h.frame(func(w *http2.Framer) error { return w.WriteContinuation(1, true, nil) })
		}
	}
}

// exchangeH2 plays c against the server at addr and returns its outcome:
// the watched stream's fate and, if the connection survived it, a
// follow-up request's.
func exchangeH2(t *testing.T, addr string, secure bool, c h2Case) (string, h2View) {
	h, err := dialH2(t, addr, secure)
	if err != nil {
		return "dial: " + err.Error(), h2View{}
	}
	if !c.raw {
		h.start()
	}
	c.send(h)
	watch := c.watch
	if watch == 0 && !c.conn {
		watch = 1
	}
	settle := settled(watch)
	if c.settle != nil {
		settle = c.settle
	}
	v, _ := h.await(h2Patience, settle)
	out := v.outcome(watch)
	if c.result != nil {
		out = c.result(&v)
	}
	if !v.Closed && !v.GoAway {
		h.get(nextID, "/next")
		nv, _ := h.await(h2Patience, settled(nextID))
		out += "; next " + nv.outcome(nextID)
		v = nv
	}
	return out, v
}

// afterwards is a well-formed request on a fresh connection: what the
// client got, "200 got GET /after" when served.
func afterwards(t *testing.T, base string, secure bool) string {
	url := strings.Replace(base, "http://", schemeOf(secure)+"://", 1)
	c := h2Client(t, secure)
	// A request that must be answered: under -race, beside 85 other
	// cases and the other packages' tests, 5 s was seen to pass.
	c.Timeout = 20 * time.Second
	resp, err := c.Get(url + "/after")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s %d %s", resp.Proto, resp.StatusCode, b)
}

// h2Run is one case's exchange with the gateway and with the oracle.
type h2Run struct {
	app        *recApp
	d          *direct
	o          *oracle
	got        string
	view       h2View
	oracleGot  string
	oracleView h2View
	reqs       []appReq
	after      string
}

func (r *h2Run) check(t *testing.T, c h2Case) {
	t.Helper()
	if !slices.Contains(c.want, r.got) {
		t.Errorf("gateway: %q, want one of %q\n%s", r.got, c.want, r.view.String())
	}
	oracleWant := c.want
	if c.oracleWant != nil {
		oracleWant = c.oracleWant
	}
	if !slices.Contains(oracleWant, r.oracleGot) {
		t.Errorf("oracle (net/http): %q, want one of %q; the case's expectation is wrong\n%s", r.oracleGot, oracleWant, r.oracleView.String())
	}
	var app []string
	for _, q := range r.reqs {
		if q.URI != "/next" && q.URI != "/after" {
			app = append(app, q.Method+" "+q.URI)
		}
	}
	want := c.app
	if c.appFor != nil {
		want = c.appFor(r.got)
	}
	if diff := cmp.Diff(want, app, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the app received (-want +got):\n%s", diff)
	}
	var intact []string
	for _, q := range r.o.seen() {
		if q.BodyErr == "" && q.RequestURI != "/next" {
			intact = append(intact, q.String())
		}
	}
	switch {
	case c.stricter != "" && len(intact) == 0:
		t.Errorf("stricter than net/http (%s), but the oracle handed its handler nothing", c.stricter)
	case c.appFor != nil:
		if diff := cmp.Diff(c.appFor(r.oracleGot), intact, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("the oracle handed its handler (-want +got):\n%s", diff)
		}
	case c.stricter == "":
		if diff := cmp.Diff(intact, app, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("the app's requests differ from those net/http's HTTP/2 server hands its handler intact (-oracle +app):\n%s", diff)
		}
	}
	if slices.Equal(c.want, stricterWant) && !r.d.logged("bad_request", 400) {
		t.Errorf("no access entry says 400 bad_request")
	}
	if want := "HTTP/2.0 200 got GET /after"; r.after != want {
		t.Errorf("a well-formed request on a fresh connection afterwards: %q, want %q", r.after, want)
	}
}

// logged reports whether an access entry of d says status and cause.
func (d *direct) logged(cause string, status int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.ContainsFunc(d.entries, func(e telemetry.AccessEntry) bool { return e.Cause == cause && e.Status == status })
}

// The front's head limit is HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE, as
// net/http's MaxHeaderBytes is its server's: the same value advertised,
// and a header list past it refused before it reaches the app; over h2c
// and over TLS.
func TestH2HeadLimit(t *testing.T) {
	t.Parallel()
	const limit = 16 << 10
	for _, secure := range []bool{false, true} {
		t.Run(schemeOf(secure), func(t *testing.T) {
			t.Parallel()
			opts := h2Opts(secure)
			opts.HeadLimit = limit
			app := newRecApp(t, nil)
			d := directWith(t, app.addr, opts, nil)
			oracleOpts := h2Opts(false)
			oracleOpts.HeadLimit = limit
			o := newOracle(t, oracleOpts)
			for _, c := range []struct {
				size int
				want []string
			}{
				{12 << 10, []string{"200"}},
				{24 << 10, []string{"431", "GOAWAY PROTOCOL_ERROR"}},
			} {
				var advertised []uint32
				var got []string
				for i, addr := range []string{d.addr, o.addr} {
					h, err := dialH2(t, addr, secure && i == 0)
					if err != nil {
						t.Fatal(err)
					}
					h.start()
					h.splitHeaders(1, h.req("GET", fmt.Sprintf("/h%d", c.size), bigFields(c.size)...))
					v, _ := h.await(h2Patience, settled(1))
					advertised = append(advertised, v.Settings[http2.SettingMaxHeaderListSize])
					got = append(got, v.outcome(1))
				}
				if advertised[0] != advertised[1] || advertised[0] < limit {
					t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d, net/http's %d for the same limit %d", advertised[0], advertised[1], limit)
				}
				for i, who := range []string{"gateway", "oracle"} {
					if !slices.Contains(c.want, got[i]) {
						t.Errorf("%d bytes of fields against a %d-byte limit: %s answered %s, want one of %q", c.size, limit, who, got[i], c.want)
					}
				}
			}
			var uris []string
			for _, q := range app.settle(d) {
				uris = append(uris, q.URI)
			}
			if diff := cmp.Diff([]string{"/h12288"}, uris); diff != "" {
				t.Errorf("the app received (-want +got):\n%s", diff)
			}
		})
	}
}

// A header list past the limit in one HEADERS frame is answered 431 and
// logged, with its method, path and cause, as an HTTP/1.1 head past the
// limit is; a body sent after it is not wanted, and the connection
// serves on.
func TestH2HeadPastLimitLogged(t *testing.T) {
	t.Parallel()
	cases := []struct {
		method string
		body   []byte // sent after the HEADERS, if any
	}{
		{"GET", nil},
		{"POST", []byte("hello")},
	}
	for _, secure := range []bool{false, true} {
		for _, c := range cases {
			t.Run(schemeOf(secure)+"/"+c.method, func(t *testing.T) {
				t.Parallel()
				opts := h2Opts(secure)
				opts.HeadLimit = 4 << 10
				app := newRecApp(t, nil)
				d := directWith(t, app.addr, opts, nil)
				h, err := dialH2(t, d.addr, secure)
				if err != nil {
					t.Fatal(err)
				}
				h.start()
				h.headers(1, c.body == nil, h.req(c.method, "/big", bigFields(8<<10)...)...)
				if c.body != nil {
					h.data(1, true, c.body)
				}
				h.get(3, "/next")
				h.await(h2Patience, settled(1))
				v, _ := h.await(h2Patience, settled(3))
				if got := v.outcome(1) + "; next " + v.outcome(3); got != "431; next 200" {
					t.Fatalf("8 KiB of fields against a 4 KiB limit, then a request: %s", got)
				}
				e := d.entry(t, "/big")
				if e.Method != c.method || e.Status != 431 || e.Cause != "headers_too_large" {
					t.Errorf("the access entry of /big: %s %d %s, want %s 431 headers_too_large", e.Method, e.Status, e.Cause, c.method)
				}
				var uris []string
				for _, q := range app.settle(d) {
					uris = append(uris, q.URI)
				}
				if diff := cmp.Diff([]string{"/next"}, uris); diff != "" {
					t.Errorf("the app received (-want +got):\n%s", diff)
				}
			})
		}
	}
}
