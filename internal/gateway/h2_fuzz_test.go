package gateway_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/http1"
)

// h2FuzzSeeds are FuzzH2Request's seed corpus, taken from the tables of
// TestH2Hostile and TestH2ToHTTP1Translation: the method, path and
// authority of a request ("" leaves :authority out), two fields (a pair
// whose name and value are both empty is left out) and a body.
var h2FuzzSeeds = []struct {
	method, path, authority string
	n1, v1, n2, v2          string
	body                    string
}{
	{"GET", "/", "x", "", "", "", "", ""},
	{"GET", "/search?q=a+b&x=%26", "example.com:8443", "accept", "*/*", "user-agent", "", ""},
	{"HEAD", "/head", "x", "x-multi", "1", "x-multi", "2", ""},
	{"POST", "/post", "x", "content-length", "5", "content-type", "text/plain", "hello"},
	{"POST", "/post", "x", "content-length", "10", "", "", "hello"},
	{"POST", "/post", "x", "content-length", "3", "", "", "hello"},
	{"POST", "/post", "x", "content-length", "abc", "", "", "hello"},
	{"PUT", "/put", "x", "", "", "", "", "\x00\x01\r\n\xff"},
	{"GET", "/c", "x", "cookie", "a=1", "cookie", "b=2; c=3", ""},
	{"GET", "/a/./b/../c?x=../y", "x", "", "", "", "", ""},
	{"GET", "/a%2Fb/%20c/%25", "x", "x-pad", "  a b\t", "x-blank", " ", ""},
	{"GET", "/caf\xc3\xa9", "x", "x-latin1", "caf\xe9 \xff", "x_user", "admin", ""},
	{"GET", "/xff", "x", "x-forwarded-for", "6.6.6.6", "x-request-id", "client-id", ""},
	{"GET", "/origin", "x", "x-forwarded-ssl", "on", "x-real-ip", "6.6.6.6", ""},
	{"GET", "/te", "x", "te", "trailers", "proxy-authorization", "Basic eA==", ""},
	{"GET", "/h", "", "host", "h", "", "", ""},
	{"GET", "/no-host", "", "", "", "", "", ""},
	{"GET", "/c", "x", "connection", "keep-alive", "", "", ""},
	{"POST", "/te", "x", "transfer-encoding", "chunked", "", "", "5\r\nhello\r\n0\r\n\r\n" + smuggled},
	{"GET", "/u", "x", "upgrade", "websocket", "keep-alive", "5", ""},
	{"GET", "/t", "x", "te", "gzip", "", "", ""},
	{"GET", "/n", "x", "X-Upper", "1", "x y", "1", ""},
	{"GET", "/v", "x", "x-a", "1\r\nX-Injected: 1", "", "", ""},
	{"GET", "/v", "x", "x-a", "1\x00", "", "", ""},
	{"GET", "/v HTTP/1.1\r\nX: 1\r\n\r\n" + smuggled, "x", "", "", "", "", ""},
	{"GET /admin", "/public", "x", "", "", "", "", ""},
	{"G/T", "/m", "x", "", "", "", "", ""},
	{"GET", "/a /b", "x", "", "", "", "", ""},
	{"GET", "/a#b", "x", "", "", "", "", ""},
	{"GET", "*", "x", "", "", "", "", ""},
	{"OPTIONS", "*", "x", "", "", "", "", ""},
	{"GET", "a/b", "x", "", "", "", "", ""},
	{"GET", "http://evil/a", "x", "", "", "", "", ""},
	{"GET", "/a", "a b", "", "", "", "", ""},
	{"GET", "/a", "u@x", "", "", "", "", ""},
	{"GET", "/a", "x", "host", "other", "", "", ""},
	{"GET", "/a", "x", ":path", "/b", ":foo", "bar", ""},
	{"get", "/lower", "x", "expect", "100-continue", "", "", ""},
	{"POST", "/tr", "x", "trailer", "x-checksum", "", "", "body"},
	{"P\x80ST", "/post", "x", "content-length", "10", "", "", "hello"},
	{"POST", "/cl0", "x", "content-length", "0", "", "", "late"},
	{"POST", "/cl2", "x", "content-length", "5", "content-length", "6", "hello"},
	{"POST", "/cl-end", "x", "content-length", "5", "", "", ""},
}

// FuzzH2Request builds an HTTP/2 request from fuzzed pseudo-header
// values, fields and body, HPACK-encoded as they are, sends it to the
// gateway, as h2c and over TLS (a gateway and app for each), and to
// net/http's HTTP/2 server (the oracle, h2c), and checks, for each of the
// two, that either the client was refused (a stream or connection error,
// or a 4xx) and the app saw nothing, or the app's net/http parser read
// exactly what the oracle handed its handler intact, but for what
// gatehouse changes on purpose (see expectAtApp). The seeds run in every
// go test; go test -fuzz=FuzzH2Request explores further.
func FuzzH2Request(f *testing.F) {
	for _, s := range h2FuzzSeeds {
		f.Add(s.method, s.path, s.authority, s.n1, s.v1, s.n2, s.v2, []byte(s.body))
	}
	type gateway struct {
		secure bool
		app    *recApp
		d      *direct
	}
	var gws []gateway
	for _, secure := range []bool{false, true} {
		app := newRecApp(f, nil)
		gws = append(gws, gateway{secure: secure, app: app, d: directWith(f, app.addr, h2Opts(secure), nil)})
	}
	o := newOracle(f, h2Opts(false))
	f.Fuzz(func(t *testing.T, method, path, authority, n1, v1, n2, v2 string, body []byte) {
		fields := []string{":method", method, ":scheme", "http", ":path", path}
		if authority != "" {
			fields = append(fields, ":authority", authority)
		}
		for _, p := range [][2]string{{n1, v1}, {n2, v2}} {
			if p[0] != "" || p[1] != "" {
				fields = append(fields, p[0], p[1])
			}
		}
		send := func(h *h2Raw, id uint32) {
			h.headers(id, len(body) == 0, fields...)
			if len(body) > 0 {
				h.sendBody(id, true, body)
			}
		}
		oBefore := len(o.seen())
		gots := make([]string, len(gws))
		reqs := make([][]appReq, len(gws))
		for i, g := range gws {
			before := len(g.app.received(g.d))
			gots[i] = sendOneOver(t, g.d.addr, g.secure, send)
			reqs[i] = g.app.received(g.d)[before:]
		}
		oGot := sendOne(t, o.addr, send)
		var intact []seenReq
		for _, q := range o.seen()[oBefore:] {
			if q.BodyErr == "" {
				intact = append(intact, q)
			}
		}
		for i, g := range gws {
			got, reqs, over := gots[i], reqs[i], schemeOf(g.secure)
			switch {
			case len(reqs) == 0 && method == "OPTIONS" && path == "*":
				// The server's own question, answered by gatehouse.
				if got != "200" && !refused(got) {
					t.Errorf("%s: OPTIONS *: the client got %s; want 200 or a refusal", over, got)
				}
			case len(reqs) == 0:
				if !refused(got) {
					t.Errorf("%s: the app saw nothing, and the client got %s; want a refusal (a stream or connection error, or 4xx)", over, got)
				}
			case len(reqs) > 1 || reqs[0].Method == "!unreadable":
				t.Errorf("%s: the app received %d requests, the first %s %q: want one it can read", over, len(reqs), reqs[0].Method, reqs[0].URI)
			case len(intact) != 1:
				t.Errorf("%s: the app received %s %q, which net/http's HTTP/2 server did not hand its handler intact (%s)", over, reqs[0].Method, reqs[0].URI, oGot)
			default:
				want, at := expectAtApp(intact[0]), atApp(reqs[0])
				if diff := cmp.Diff(want, at, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s: the app's request differs from the oracle's (-oracle +app):\n%s", over, diff)
				}
				if got != "200" {
					t.Errorf("%s: served by the app, but the client got %s", over, got)
				}
			}
		}
	})
}

// received is what the app got, once the gateway is done with every
// request and the app with every byte (boundedly), and a moment more for
// a forward racing a reset; settle's moment is longer than a fuzzer can
// wait on every input.
func (a *recApp) received(d *direct) []appReq {
	quiesce(d, 3*time.Second, a.conns.quiet, 5*time.Millisecond)
	return a.all()
}

// refused: a stream or connection error, or a 4xx, is how the client
// must learn that its request was not forwarded.
func refused(outcome string) bool {
	return strings.HasPrefix(outcome, "RST ") || strings.HasPrefix(outcome, "GOAWAY ") || outcome == "closed" ||
		len(outcome) == 3 && outcome[0] == '4'
}

// fuzzView is what the app and the oracle must agree on.
type fuzzView struct {
	Method, URI, Host string
	Header            http.Header
	Body              string
}

// setAside are the fields not compared: the hop-by-hop ones gatehouse
// drops (TE is dropped only when it says other than "trailers"), Expect,
// which the gateway answers itself and never forwards, those it sets,
// Content-Length (framing), and Host, which r.Host carries (x/net takes
// it out of the header map; Go 1.26's bundled server leaves it in).
var setAside = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Trailer", "Transfer-Encoding", "Upgrade", "Expect", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
	"X-Request-Id", "Content-Length", "Host"}

// expectAtApp is what the app must read of a request the oracle's handler
// was handed: its path's dot segments removed (the route is chosen by
// that path), fields with an underscore in their name dropped, and the
// originFields too (the fuzzer is no trusted proxy), white space around
// values trimmed (HTTP/1.1 cannot carry it), and the fields of setAside
// set aside.
func expectAtApp(q seenReq) fuzzView {
	uri := q.RequestURI
	p, query, hasQuery := strings.Cut(uri, "?")
	if clean, changed, err := http1.CleanPath(p); err == nil && changed {
		uri = clean
		if hasQuery {
			uri += "?" + query
		}
	}
	h := http.Header{}
	for k, vs := range q.Header {
		if strings.Contains(k, "_") || slices.Contains(originFields, k) {
			continue
		}
		for _, v := range vs {
			h[k] = append(h[k], strings.Trim(v, " \t"))
		}
	}
	if te := h["Te"]; len(te) > 0 && te[0] != "trailers" {
		delete(h, "Te")
	}
	return fuzzView{Method: q.Method, URI: uri, Host: q.Host, Header: setFieldsAside(h), Body: q.Body}
}

func atApp(q appReq) fuzzView {
	return fuzzView{Method: q.Method, URI: q.URI, Host: q.Host, Header: setFieldsAside(q.Header.Clone()), Body: q.Body}
}

func setFieldsAside(h http.Header) http.Header {
	for _, k := range setAside {
		delete(h, k)
	}
	return h
}
