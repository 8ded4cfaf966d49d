package front

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// The two ways an HTTP/2 stream comes: over TLS (ALPN h2) and h2c (prior
// knowledge on a plain listener).
var h2Ways = []struct {
	name string
	tls  bool
}{{"tls", true}, {"h2c", false}}

// h2Client is a raw HTTP/2 client connection: the test writes the frames
// it wants, however malformed, and reads what the front answers.
type h2Client struct {
	t *testing.T
	*testutil.RawH2
}

// h2Serve serves h over TLS (h2) or h2c on a loopback listener, and opens
// a client connection to it, its preface and SETTINGS sent.
func h2Serve(t *testing.T, h Handler, overTLS bool, opts Options) *h2Client {
	t.Helper()
	opts, cli := h2Options(t, opts, overTLS)
	return h2Open(t, limServe(t, h, opts), cli)
}

// h2Stub serves an xStub with serve (nil: it answers 200 "served") over
// TLS (h2) or h2c, and opens a client connection to it.
func h2Stub(t *testing.T, overTLS bool, serve func(x *Exchange, h *handed)) (*xStub, *h2Client) {
	t.Helper()
	st := newXStub(serve)
	return st, h2Serve(t, st, overTLS, Options{})
}

// h2Options are opts for a listener HTTP/2 clients reach over TLS (h2)
// or h2c, and the clients' TLS config (nil: h2c).
func h2Options(t *testing.T, opts Options, overTLS bool) (Options, *tls.Config) {
	if !overTLS {
		opts.H2C = true
		return opts, nil
	}
	var cli *tls.Config
	opts.TLS, cli = testTLS(t, "h2")
	return opts, cli
}

// h2Open opens a client connection to addr, over TLS trusting cli or h2c
// (cli nil), its preface and SETTINGS sent; every read and write of it
// ends within 20 s.
func h2Open(t *testing.T, addr string, cli *tls.Config) *h2Client {
	t.Helper()
	r, err := testutil.DialH2(t, addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	r.Conn.SetDeadline(time.Now().Add(20 * time.Second))
	if err := r.Preface(); err != nil {
		t.Fatal(err)
	}
	return &h2Client{t: t, RawH2: r}
}

// request opens stream id with fields (pseudo-fields first, as given),
// and data as DATA frames after it (each its own frame; none: the
// HEADERS end the stream).
func (hc *h2Client) request(id uint32, fields [][2]string, data ...string) {
	hc.t.Helper()
	var flat []string
	for _, f := range fields {
		flat = append(flat, f[0], f[1])
	}
	err := hc.Headers(id, len(data) == 0, flat...)
	for i, d := range data {
		if err == nil {
			err = hc.Framer.WriteData(id, i == len(data)-1, []byte(d))
		}
	}
	if err != nil {
		hc.t.Fatalf("writing stream %d: %v", id, err)
	}
}

// exchange is request, then answer.
func (hc *h2Client) exchange(id uint32, fields [][2]string, data ...string) h2Answer {
	hc.t.Helper()
	hc.request(id, fields, data...)
	return hc.answer(id)
}

// h2Answer is what came back on one stream.
type h2Answer struct {
	heads [][]hpack.HeaderField // each HEADERS block, in order
	data  string
	ended bool           // a frame ended the stream (END_STREAM)
	reset *http2.ErrCode // the stream was reset (RST_STREAM)
}

// field is the first value of name in the i-th HEADERS block; "" when
// absent.
func (a h2Answer) field(i int, name string) string {
	if i >= len(a.heads) {
		return ""
	}
	for _, f := range a.heads[i] {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func (a h2Answer) status() string {
	if len(a.heads) == 0 {
		return ""
	}
	return a.field(0, ":status")
}

// answer reads frames until stream id ends (END_STREAM or RST_STREAM),
// answering the connection's SETTINGS and PINGs meanwhile.
func (hc *h2Client) answer(id uint32) h2Answer {
	hc.t.Helper()
	var a h2Answer
	for {
		switch f := hc.next(id, &a).(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				a.heads = append(a.heads, f.Fields)
				if f.StreamEnded() {
					a.ended = true
					return a
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				a.data += string(f.Data())
				if f.StreamEnded() {
					a.ended = true
					return a
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				code := f.ErrCode
				a.reset = &code
				return a
			}
		}
	}
}

// next reads the next frame while stream id is answered (what came of it
// so far is sofar, for a failure's message), answering the connection's
// SETTINGS and PINGs as a client does; a GOAWAY or the connection's end
// fails the test.
func (hc *h2Client) next(id uint32, sofar any) http2.Frame {
	hc.t.Helper()
	f, err := hc.Framer.ReadFrame()
	if err != nil {
		hc.t.Fatalf("reading stream %d's answer (so far %+v): %v", id, sofar, err)
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			hc.Framer.WriteSettingsAck()
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			hc.Framer.WritePing(true, f.Data)
		}
	case *http2.GoAwayFrame:
		hc.t.Fatalf("GOAWAY (%v) while stream %d was answered (so far %+v)", f.ErrCode, id, sofar)
	}
	return f
}

// h2Get are the pseudo-fields of a GET of path.
func h2Get(scheme, path string) [][2]string {
	return [][2]string{{":method", "GET"}, {":scheme", scheme}, {":authority", "example.com"}, {":path", path}}
}

// The stream's Request.TLS is the connection's handshake, whatever its
// :scheme says: set over TLS with :scheme http, nil over h2c with :scheme
// https.
func TestH2StreamTLSIsTheConnections(t *testing.T) {
	t.Parallel()
	for _, way := range h2Ways {
		for _, scheme := range []string{"http", "https"} {
			t.Run(way.name+"/:scheme "+scheme, func(t *testing.T) {
				t.Parallel()
				st, hc := h2Stub(t, way.tls, nil)
				if a := hc.exchange(1, h2Get(scheme, "/s")); a.status() != "200" || a.data != "served" {
					t.Errorf("answer %+v, want 200 served", a)
				}
				st.nextIs(t, handed{Method: "GET", RequestURI: "/s", Host: "example.com", Proto: "HTTP/2.0", TLS: way.tls})
			})
		}
	}
}

// What a stream hands the handler: method, target, host, body and its
// length, as an HTTP/1.1 request's.
func TestH2StreamHanded(t *testing.T) {
	t.Parallel()
	for _, way := range h2Ways {
		for _, tc := range []struct {
			name   string
			fields [][2]string
			data   []string
			want   handed
		}{
			{"GET", h2Get("https", "/p?q=1"), nil,
				handed{Method: "GET", RequestURI: "/p?q=1", Host: "example.com", Proto: "HTTP/2.0"}},
			{"POST with content-length", [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/up"}, {"content-length", "11"}},
				[]string{"hello", " world"},
				handed{Method: "POST", RequestURI: "/up", Host: "example.com", Proto: "HTTP/2.0", ContentLength: 11, Body: "hello world"}},
			{"POST of unknown length", [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/up"}},
				[]string{"hello"},
				handed{Method: "POST", RequestURI: "/up", Host: "example.com", Proto: "HTTP/2.0", ContentLength: -1, Body: "hello"}},
			{"content-length 0 and an empty DATA", [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/up"}, {"content-length", "0"}},
				[]string{""},
				handed{Method: "POST", RequestURI: "/up", Host: "example.com", Proto: "HTTP/2.0"}},
			{"Host instead of :authority", [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/h"}, {"host", "h.example"}}, nil,
				handed{Method: "GET", RequestURI: "/h", Host: "h.example", Proto: "HTTP/2.0"}},
			{"OPTIONS *", [][2]string{{":method", "OPTIONS"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "*"}}, nil,
				handed{Method: "OPTIONS", RequestURI: "*", Host: "example.com", Proto: "HTTP/2.0"}},
		} {
			t.Run(way.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				st, hc := h2Stub(t, way.tls, nil)
				if a := hc.exchange(1, tc.fields, tc.data...); a.status() != "200" || a.data != "served" || !a.ended {
					t.Errorf("answer %+v, want 200 served", a)
				}
				tc.want.TLS = way.tls
				if got := st.nextIs(t, tc.want); got.bodyErr != nil {
					t.Errorf("reading the body: %v", got.bodyErr)
				}
			})
		}
	}
}

// A stream the HTTP/1.1 request to the app could not carry as it is
// reaches the handler refused (Exchange.Reject, bad_request), and its
// client is answered 400: CONNECT, a method that is not a token, "*"
// with another method than OPTIONS, no :authority nor Host, and a
// content-length that is not the stream's one length.
func TestH2StreamRefused(t *testing.T) {
	t.Parallel()
	post := func(fields ...[2]string) [][2]string {
		return append([][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/up"}}, fields...)
	}
	for _, way := range h2Ways {
		for _, tc := range []struct {
			name   string
			fields [][2]string
			data   []string
			// reset: the client may see the stream reset instead of the
			// 400 (the h2 server resets a stream whose DATA passes its
			// length).
			reset bool
		}{
			{"CONNECT", [][2]string{{":method", "CONNECT"}, {":authority", "example.com:443"}}, nil, false},
			{"method with a space", [][2]string{{":method", "GE T"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/"}}, nil, false},
			{"method with a separator", [][2]string{{":method", "GET(1)"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/"}}, nil, false},
			{"* with GET", [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "*"}}, nil, false},
			{"no :authority nor Host", [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}}, nil, false},
			{"path with a space", [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/a b"}}, nil, false},
			{"content-length on a stream without DATA", post([2]string{"content-length", "5"}), nil, false},
			{"two content-lengths", post([2]string{"content-length", "5"}, [2]string{"content-length", "6"}), []string{"hello"}, false},
			// (The h2 server takes "five" for 0, as net/http's does, and
			// may reset the stream at its DATA before the 400 goes out.)
			{"content-length not a number", post([2]string{"content-length", "five"}), []string{"hello"}, true},
			{"DATA beyond content-length 0", post([2]string{"content-length", "0"}), []string{"x"}, true},
		} {
			t.Run(way.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				st, hc := h2Stub(t, way.tls, nil)
				a := hc.exchange(1, tc.fields, tc.data...)
				if a.status() != "400" && !(tc.reset && a.reset != nil) {
					t.Errorf("answer %+v, want 400", a)
				}
				if got := st.next(t); got.Reject != string(cause.BadRequest) {
					t.Errorf("the handler was handed %+v, want a refusal %s", got, cause.BadRequest)
				}
				// The connection serves on.
				if a := hc.exchange(3, h2Get("https", "/next")); a.status() != "200" {
					t.Errorf("the next stream got %+v, want 200", a)
				}
				st.nextIs(t, handed{Method: "GET", RequestURI: "/next", Host: "example.com", Proto: "HTTP/2.0", TLS: way.tls})
			})
		}
	}
}

// DATA that is longer or shorter than the stream's content-length cannot
// be known before the body is read: the stream is handed to the handler,
// whose read of the body fails, so that it never takes a body of another
// length than the one it was told.
func TestH2StreamBodyNotItsLength(t *testing.T) {
	t.Parallel()
	for _, way := range h2Ways {
		for _, tc := range []struct {
			name string
			data []string
		}{
			{"shorter", []string{"hel"}},
			{"longer", []string{"hello", " world"}},
		} {
			t.Run(way.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				st, hc := h2Stub(t, way.tls, echoBody)
				hc.request(1, [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/up"}, {"content-length", "5"}},
					tc.data...)
				if a := hc.answer(1); a.status() == "200" {
					t.Errorf("answer %+v; want no 200 for a body of another length", a)
				}
				got := st.next(t)
				if got.Reject == "" && got.bodyErr == nil {
					t.Errorf("the handler read %q of a stream whose content-length is 5, without an error", got.Body)
				}
			})
		}
	}
}

// Fields whose name holds an underscore are dropped, as from an HTTP/1
// head: one could pass for a field gatehouse sets.
func TestH2StreamDropsUnderscores(t *testing.T) {
	t.Parallel()
	for _, way := range h2Ways {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			hdrs := make(chan http.Header, 1)
			st, hc := h2Stub(t, way.tls, func(x *Exchange, h *handed) {
				hdrs <- x.Req.Header.Clone()
				limAnswer(x.W, http.StatusOK, "served")
			})
			if a := hc.exchange(1, append(h2Get("https", "/u"), [2]string{"x_forwarded_for", "6.6.6.6"}, [2]string{"x-real", "1"}, [2]string{"_", "x"})); a.status() != "200" {
				t.Errorf("answer %+v, want 200", a)
			}
			h := <-hdrs
			for k := range h {
				if strings.Contains(k, "_") {
					t.Errorf("the handler got field %q: %q", k, h[k])
				}
			}
			if h.Get("X-Real") != "1" {
				t.Errorf("the handler lost X-Real: %q", h)
			}
			st.next(t)
		})
	}
}

// An answer the handler cuts short (x.W.Abort) reaches the client as a
// reset stream, never as a complete answer; so does a stream the handler
// wrote nothing for (no empty 200).
func TestH2StreamAbort(t *testing.T) {
	t.Parallel()
	for _, way := range h2Ways {
		for _, tc := range []struct {
			name  string
			serve func(x *Exchange)
		}{
			{"abort after a flushed part", func(x *Exchange) {
				x.W.WriteHeader(http.StatusOK)
				io.WriteString(x.W, "partial")
				x.W.Flush()
				x.W.Abort()
			}},
			{"abort after an unflushed part", func(x *Exchange) {
				x.W.Header().Set("Content-Length", "100")
				x.W.WriteHeader(http.StatusOK)
				io.WriteString(x.W, "partial")
				x.W.Abort()
			}},
			{"abort before any answer", func(x *Exchange) { x.W.Abort() }},
			{"nothing written", func(x *Exchange) {}},
		} {
			t.Run(way.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				st, hc := h2Stub(t, way.tls, func(x *Exchange, h *handed) {
					if x.Req.URL.Path != "/a" {
						limAnswer(x.W, http.StatusOK, "served")
						return
					}
					tc.serve(x)
				})
				a := hc.exchange(1, h2Get("https", "/a"))
				if a.reset == nil || a.ended {
					t.Errorf("the client saw %+v; want the stream reset, not ended (no complete answer, no empty 200)", a)
				}
				st.next(t)
				// The connection serves on.
				if a := hc.exchange(3, h2Get("https", "/next")); a.status() != "200" || a.data != "served" || !a.ended {
					t.Errorf("the next stream got %+v, want 200", a)
				}
				st.next(t)
			})
		}
	}
}

// Trailers set through SetTrailer (the map read at the answer's end, as a
// body reader fills it) arrive as HTTP/2 trailers, announced in the
// answer's Trailer field.
func TestH2StreamTrailers(t *testing.T) {
	t.Parallel()
	for _, way := range h2Ways {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			st, hc := h2Stub(t, way.tls, func(x *Exchange, h *handed) {
				trailer := http.Header{"X-Checksum": nil} // declared; filled at the body's end
				x.W.SetTrailer(&trailer)
				x.W.WriteHeader(http.StatusOK)
				io.WriteString(x.W, "body")
				trailer = http.Header{"X-Checksum": {"abc"}} // replaced, as a body reader may
			})
			a := hc.exchange(1, h2Get("https", "/t"))
			if a.status() != "200" || a.data != "body" || !a.ended {
				t.Fatalf("answer %+v, want 200 body", a)
			}
			if got := a.field(0, "trailer"); !strings.EqualFold(got, "X-Checksum") {
				t.Errorf("the answer's Trailer field %q, want X-Checksum", got)
			}
			if len(a.heads) != 2 {
				t.Fatalf("%d HEADERS blocks, want the answer's and its trailers': %+v", len(a.heads), a.heads)
			}
			if got := a.field(1, "x-checksum"); got != "abc" {
				t.Errorf("trailers %+v, want x-checksum: abc", a.heads[1])
			}
			st.next(t)
		})
	}
}

// WriteInterim(103, h) sends an interim HEADERS with h before the final
// one, which carries the handler's own fields and not h's.
func TestH2StreamInterim(t *testing.T) {
	t.Parallel()
	for _, way := range h2Ways {
		for _, tc := range []struct {
			name string
			// before: fields set in the handler's header map before the
			// interim answer.
			before bool
		}{
			{"fields set after the interim", false},
			{"fields set before the interim", true},
		} {
			t.Run(way.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				st, hc := h2Stub(t, way.tls, func(x *Exchange, h *handed) {
					if tc.before {
						x.W.Header().Set("X-Final", "1")
					}
					x.W.WriteInterim(http.StatusEarlyHints, http.Header{"Link": {"</s.css>; rel=preload"}})
					if !tc.before {
						x.W.Header().Set("X-Final", "1")
					}
					limAnswer(x.W, http.StatusOK, "final")
				})
				a := hc.exchange(1, h2Get("https", "/i"))
				if len(a.heads) != 2 {
					t.Fatalf("%d HEADERS blocks (%+v), want an interim one and the final one", len(a.heads), a)
				}
				if a.field(0, ":status") != "103" || a.field(0, "link") != "</s.css>; rel=preload" {
					t.Errorf("interim HEADERS %+v, want 103 with the Link", a.heads[0])
				}
				if a.field(0, "x-final") != "" {
					t.Errorf("the 103 carries the final answer's field X-Final: %+v", a.heads[0])
				}
				if a.field(1, ":status") != "200" || a.field(1, "x-final") != "1" || a.field(1, "link") != "" {
					t.Errorf("final HEADERS %+v, want 200 with X-Final and no Link", a.heads[1])
				}
				if a.data != "final" || !a.ended {
					t.Errorf("body %q ended=%v, want final", a.data, a.ended)
				}
				st.next(t)
			})
		}
	}
}
