package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestH2ToHTTP1Translation sends well-formed HTTP/2 requests, frame by
// frame, to the gateway (h2c) and to net/http's own HTTP/2 server (the
// oracle), and compares what the app's net/http server parsed of the
// HTTP/1.1 request gatehouse wrote with what the oracle handed its
// handler: method, target, Host, header fields, body. The differences
// allowed are gatehouse's own, each named by the case (gone: fields
// gatehouse sets or drops; adjust: anything else), and the framing of
// the body (Content-Length or chunked), which net/http hides.
func TestH2ToHTTP1Translation(t *testing.T) {
	t.Parallel()
	app := newNetApp(t, nil)
	d := directWith(t, app.addr, h2Opts(false), nil)
	o := newOracle(t, h2Opts(false))
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB: streamed to the app, chunked
	for _, c := range []struct {
		name   string
		fields []string // after the pseudo-header fields of method and path
		method string
		path   string
		bodies []string // DATA frames
		// adjust changes what the oracle's handler got into what the app
		// must get.
		adjust func(q *seenReq)
	}{
		{name: "GET", method: "GET", path: "/", fields: []string{"accept", "*/*"}},
		{name: "HEAD", method: "HEAD", path: "/head"},
		{name: "OPTIONS a path", method: "OPTIONS", path: "/opts"},
		{name: "DELETE", method: "DELETE", path: "/items/7"},
		{name: "extension method", method: "PROPFIND", path: "/dav/"},
		{name: "query string", method: "GET", path: "/search?q=a+b&lang=en&x=%26&empty=&flag"},
		{name: "empty query", method: "GET", path: "/q?"},
		{name: "percent-encoded path", method: "GET", path: "/a%2Fb/%20c/%E2%82%AC/%25?x=%2F"},
		{name: "raw UTF-8 in the path", method: "GET", path: "/caf\xc3\xa9?q=\xe2\x82\xac"},
		{name: "matrix parameters", method: "GET", path: "/a;v=1/b;c"},
		{name: "dot segments are removed", method: "GET", path: "/a/./b/../c?x=../y",
			adjust: func(q *seenReq) { q.RequestURI = "/a/c?x=../y" }},
		{name: "authority with a port", method: "GET", path: "/", fields: []string{":authority", "example.com:8443"}},
		{name: "repeated fields keep their order", method: "GET", path: "/r",
			fields: []string{"x-multi", "1", "x-other", "a", "x-multi", "2", "x-multi", "3, 4"}},
		{name: "cookie crumbs are joined with a semicolon", method: "GET", path: "/c",
			fields: []string{"cookie", "a=1", "cookie", "b=2; c=3", "cookie", "d=4"}},
		{name: "empty value and a tab inside one", method: "GET", path: "/v", fields: []string{"x-empty", "", "x-tab", "a\tb"}},
		// Not part of the value (RFC 9110 §5.5; RFC 9113 §8.2.1 calls it
		// malformed, and net/http keeps it): over HTTP/1.1 the app's
		// parser trims it.
		{name: "white space around a value", method: "GET", path: "/ws", fields: []string{"x-pad", "  a b\t", "x-blank", " "},
			adjust: func(q *seenReq) {
				for k, vs := range q.Header {
					for i := range vs {
						vs[i] = strings.Trim(vs[i], " \t")
					}
					q.Header[k] = vs
				}
			}},
		{name: "obs-text value", method: "GET", path: "/v", fields: []string{"x-latin1", "caf\xe9 \xff"}},
		{name: "user-agent, accept, te trailers", method: "GET", path: "/ua",
			fields: []string{"user-agent", "h2-test/1", "accept", "*/*", "accept-encoding", "gzip, br", "te", "trailers"}},
		{name: "many fields", method: "GET", path: "/many", fields: manyFields(100)},
		{name: "content-type and authorization", method: "GET", path: "/auth",
			fields: []string{"authorization", "Bearer abc.def", "content-type", "text/plain; charset=utf-8"}},
		{name: "POST with content-length", method: "POST", path: "/post", fields: []string{"content-length", "11"}, bodies: []string{"hello", " world"}},
		{name: "POST without content-length", method: "POST", path: "/post", bodies: []string{"hel", "lo", " wor", "ld"}},
		{name: "POST without a body", method: "POST", path: "/empty"},
		{name: "PUT with an empty DATA frame", method: "PUT", path: "/put", bodies: []string{"abc", ""}},
		{name: "PATCH with a binary body", method: "PATCH", path: "/bin", bodies: []string{"\x00\x01\r\n\xff"}},
		{name: "large body with content-length", method: "POST", path: "/big", fields: []string{"content-length", fmt.Sprint(len(big))}, bodies: chop(big, 16<<10)},
		{name: "large body without content-length", method: "POST", path: "/big", bodies: chop(big, 16<<10)},
		{name: "forwarded fields are gatehouse's", method: "GET", path: "/xff",
			fields: []string{"x-forwarded-for", "6.6.6.6", "x-forwarded-host", "evil", "x-forwarded-proto", "https", "x-request-id", "client-id",
				"x-real-ip", "6.6.6.6"},
			adjust: func(q *seenReq) {
				for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id", "X-Real-Ip"} {
					delete(q.Header, k)
				}
			}},
		{name: "underscores in names are dropped", method: "GET", path: "/u", fields: []string{"x_user", "admin", "x-user", "guest"},
			adjust: func(q *seenReq) { delete(q.Header, "X_user") }},
		// RFC 9110 §6.5.1 lets an intermediary drop trailers, and
		// gatehouse's HTTP/1.1 writer sends none (for HTTP/1.1 clients
		// either): the body arrives whole, the trailer does not.
		{name: "trailers are dropped", method: "POST", path: "/trailers", fields: []string{"trailer", "x-checksum"}, bodies: []string{"body"},
			adjust: func(q *seenReq) { q.Trailer = nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			send := func(h *h2Raw, id uint32) {
				f := append(h.req(c.method, c.path), c.fields...)
				if len(c.fields) > 0 && c.fields[0] == ":authority" { // in place of the default
					f = append(f[:4], f[6:]...)
				}
				h.headers(id, len(c.bodies) == 0, f...)
				for i, b := range c.bodies {
					h.sendBody(id, i == len(c.bodies)-1, []byte(b))
				}
			}
			if c.name == "trailers are dropped" {
				send = func(h *h2Raw, id uint32) {
					h.headers(id, false, append(h.req(c.method, c.path), c.fields...)...)
					h.data(id, false, []byte(c.bodies[0]))
					h.headers(id, true, "x-checksum", "42")
				}
			}
			before := app.count()
			gw := sendOne(t, d.addr, send)
			or := sendOne(t, o.addr, send)
			if gw != "200" || or != "200" {
				t.Fatalf("answered %s by the gateway, %s by the oracle; want 200 from both", gw, or)
			}
			got := app.settle(d)[before:]
			seen := o.seen()
			if len(got) != 1 || len(seen) == 0 {
				t.Fatalf("the app got %d requests, the oracle's handler %d; want one each", len(got), len(seen))
			}
			want := seen[len(seen)-1]
			if c.adjust != nil {
				c.adjust(&want)
			}
			if diff := cmp.Diff(agreed(want, false), agreed(got[0], true), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the app's request differs from the oracle's (-oracle +app):\n%s", diff)
			}
		})
	}
}

// agreed is what the app and the oracle must agree on of q: the
// framing fields (Content-Length, the app's chunked coding), the Proto,
// and, at the app, the fields gatehouse adds, set aside.
func agreed(q seenReq, atApp bool) seenReq {
	q.Header = q.Header.Clone()
	delete(q.Header, "Content-Length")
	if atApp {
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id"} {
			delete(q.Header, k)
		}
	}
	q.Proto = ""
	return q
}

// sendOne sends one request on a new connection to addr with send and
// returns its outcome.
func sendOne(t *testing.T, addr string, send func(h *h2Raw, id uint32)) string {
	t.Helper()
	return sendOneOver(t, addr, false, send)
}

// sendOneOver is sendOne over TLS (secure) or h2c.
func sendOneOver(t *testing.T, addr string, secure bool, send func(h *h2Raw, id uint32)) string {
	t.Helper()
	v := exchangeOneOver(t, addr, secure, send)
	return v.outcome(1)
}

// exchangeOne sends stream 1 on a new h2c connection to addr with send,
// and returns what came back once the stream settled (or h2Patience).
func exchangeOne(t *testing.T, addr string, send func(h *h2Raw, id uint32)) h2View {
	t.Helper()
	return exchangeOneOver(t, addr, false, send)
}

// exchangeOneOver is exchangeOne over TLS (secure) or h2c.
func exchangeOneOver(t *testing.T, addr string, secure bool, send func(h *h2Raw, id uint32)) h2View {
	t.Helper()
	h, err := dialH2(t, addr, secure)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	send(h, 1)
	v, _ := h.await(h2Patience, settled(1))
	return v
}

func manyFields(n int) []string {
	var f []string
	for i := range n {
		f = append(f, fmt.Sprintf("x-field-%03d", i), fmt.Sprintf("value %d", i))
	}
	return f
}

// chop cuts s into pieces of at most n bytes.
func chop(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

// TestH2ResponsesIntact: an app's answer reaches an HTTP/2 client as the
// same app, served by net/http over HTTP/2 directly (the oracle), answers
// it: status, header fields, body, trailers, streamed bodies included.
// Framing fields (Content-Length) and the ones gatehouse adds (Date,
// X-Request-Id) are set aside.
func TestH2ResponsesIntact(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		method string
		answer http.HandlerFunc
	}{
		{"200 with a body", "GET", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }},
		{"201 with fields", "POST", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/items/1")
			w.Header().Add("Set-Cookie", "a=1; Path=/")
			w.Header().Add("Set-Cookie", "b=2; HttpOnly")
			w.Header().Set("X-Multi", "1")
			w.Header().Add("X-Multi", "2")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "created")
		}},
		{"204", "DELETE", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }},
		{"304", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}},
		{"404 from the app", "GET", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{"500 from the app", "GET", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}},
		{"HEAD with a length", "HEAD", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1234")
		}},
		{"large body", "GET", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat("x", 3<<20))
		}},
		{"streamed body", "GET", func(w http.ResponseWriter, r *http.Request) {
			for i := range 5 {
				fmt.Fprintf(w, "chunk %d\n", i)
				w.(http.Flusher).Flush()
			}
		}},
		{"declared trailers", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum, X-Count")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set("X-Count", "1")
		}},
		{"undeclared trailers", "GET", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := newNetApp(t, c.answer)
			d := directWith(t, app.addr, h2Opts(false), nil)
			direct := newH2App(t, c.answer)
			send := func(h *h2Raw, id uint32) { h.headers(id, true, h.req(c.method, "/r")...) }
			gw := answerOf(t, d.addr, send)
			or := answerOf(t, direct, send)
			if diff := cmp.Diff(or, gw, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the answer through gatehouse differs from the app's own over HTTP/2 (-direct +gatehouse):\n%s", diff)
			}
		})
	}
}

// h2Answer is what an HTTP/2 client got of a response, framing and
// gatehouse's own fields set aside.
type h2Answer struct {
	Status  int
	Header  http.Header
	Body    string
	Trailer http.Header
	Ended   bool
	Reset   string
}

func answerOf(t *testing.T, addr string, send func(h *h2Raw, id uint32)) h2Answer {
	t.Helper()
	v := exchangeOne(t, addr, send)
	s := v.Streams[1]
	if s == nil {
		t.Fatalf("no answer: %s", v.String())
	}
	a := h2Answer{Status: s.Status, Header: s.Header.Clone(), Body: string(s.Body), Trailer: s.Trailer, Ended: s.Ended}
	if s.Reset {
		a.Reset = s.Code.String()
	}
	for _, k := range []string{"Content-Length", "Date", "X-Request-Id"} {
		delete(a.Header, k)
	}
	if names := a.Header["Trailer"]; len(names) > 0 {
		// A set: the app's net/http and the front each announce the
		// trailers in their own order (from a map).
		var all []string
		for _, n := range names {
			for f := range strings.SplitSeq(n, ",") {
				all = append(all, strings.TrimSpace(f))
			}
		}
		slices.Sort(all)
		a.Header["Trailer"] = all
	}
	return a
}

// newH2App serves answer over h2c with net/http, as the app itself would
// serve an HTTP/2 client.
func newH2App(t *testing.T, answer http.HandlerFunc) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: answer, Protocols: new(http.Protocols), ErrorLog: quietLog()}
	srv.Protocols.SetUnencryptedHTTP2(true)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// An app's answer that carries connection-specific fields (RFC 9113
// §8.2.2) reaches an HTTP/2 client without them, on an intact stream, and
// the connection serves on.
func TestH2DropsConnectionSpecificResponseFields(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		raw  string
	}{
		{"Connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		{"Keep-Alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 2\r\n\r\nok"},
		{"Transfer-Encoding chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n"},
		{"Upgrade on a 200", "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nok"},
		{"Proxy-Connection", "HTTP/1.1 200 OK\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
		{"a field Connection names", "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: secret\r\nContent-Length: 2\r\n\r\nok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := rawBackend(t, func(conn net.Conn, br *bufio.Reader) {
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if req.URL.Path == "/next" {
						io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
						continue
					}
					io.WriteString(conn, c.raw)
					if strings.Contains(c.raw, "Connection: close") {
						return
					}
				}
			})
			d := directWith(t, addr, h2Opts(false), nil)
			h, err := dialH2(t, d.addr, false)
			if err != nil {
				t.Fatal(err)
			}
			h.start()
			h.get(1, "/r")
			h.get(3, "/next")
			v, _ := h.await(h2Patience, func(v *h2View) bool { return settled(1)(v) && settled(3)(v) })
			s := v.Streams[1]
			if s == nil || s.Status != 200 || !s.Ended || s.Reset || string(s.Body) != "ok" {
				t.Fatalf("stream 1: %s; want 200 \"ok\", ended cleanly", v.String())
			}
			for _, k := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "X-Hop"} {
				if vs, ok := s.Header[k]; ok {
					t.Errorf("the answer carries %s: %q", k, vs)
				}
			}
			if n := v.Streams[3]; n == nil || n.Status != 200 || string(n.Body) != "next" || v.GoAway {
				t.Errorf("the next request on the connection: %s", v.String())
			}
		})
	}
}
