package front

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// An HTTP/1.0 request is answered once: the answer says Connection:
// close, whatever the request asked, and the connection closes after it
// (what the client pipelined behind is not served). Without a Host field
// the request is for the address the client connected to, and the
// handler is told that one.
func TestHTTP10AnsweredOnce(t *testing.T) {
	t.Parallel()
	const pipelined = "GET /second HTTP/1.0\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name string
		send string
		want func(addr string) handed
	}{
		{"with Host", "GET /old HTTP/1.0\r\nHost: a\r\n\r\n",
			func(string) handed { return handed{Method: "GET", RequestURI: "/old", Host: "a", Proto: "HTTP/1.0"} }},
		{"keep-alive asked for", "GET /old HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
			func(string) handed { return handed{Method: "GET", RequestURI: "/old", Host: "a", Proto: "HTTP/1.0"} }},
		{"without Host", "GET /old?q=1 HTTP/1.0\r\n\r\n",
			func(addr string) handed {
				return handed{Method: "GET", RequestURI: "/old?q=1", Host: addr, Proto: "HTTP/1.0"}
			}},
		{"with a body", "POST /old HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
			func(addr string) handed {
				return handed{Method: "POST", RequestURI: "/old", Host: addr, Proto: "HTTP/1.0", ContentLength: 5, Body: "hello"}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(echoBody)
			addr := limServe(t, st, Options{})
			lc := limDial(t, addr)
			lc.send(tc.send + pipelined)
			want := tc.want(addr)
			resp, body := lc.mustResponse(5 * time.Second)
			if wantBody := want.Method + " " + want.RequestURI + " " + want.Body; resp.StatusCode != 200 || body != wantBody {
				t.Errorf("answer %d %q, want 200 %q", resp.StatusCode, body, wantBody)
			}
			if !resp.Close {
				t.Error("the answer does not say Connection: close")
			}
			st.nextIs(t, want)
			if extra, ok := lc.closed(5 * time.Second); !ok || len(extra) > 0 {
				t.Errorf("after the answer: closed %v, %q read; want the connection closed", ok, extra)
			}
			st.noMore(t)
		})
	}
}

// An answer of unknown length (no Content-Length) is chunked for an
// HTTP/1.1 client, and ends with the connection for an HTTP/1.0 one,
// which knows no chunks: the body comes as it was written, unframed.
func TestHTTP10UnknownLengthIsCloseDelimited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		proto   string
		send    string
		chunked bool
	}{
		{"HTTP/1.0", "HTTP/1.0", "GET /stream HTTP/1.0\r\nHost: a\r\n\r\n", false},
		{"HTTP/1.0 keep-alive asked for", "HTTP/1.0", "GET /stream HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", false},
		{"HTTP/1.1 (contrast)", "HTTP/1.1", "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(func(x *Exchange, h *handed) {
				x.W.WriteHeader(http.StatusOK)
				io.WriteString(x.W, "hello, ")
				x.W.Flush()
				io.WriteString(x.W, "world")
			})
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(tc.send)
			head := lc.mustRawHead(5 * time.Second)
			f := headFields(head)
			if statusLine(head) != "HTTP/1.1 200 OK" || f["content-length"] != nil {
				t.Errorf("head %q, want 200 without Content-Length", head)
			}
			if c := f["connection"]; len(c) != 1 || c[0] != "close" {
				t.Errorf("the answer's Connection: %q, want close", c)
			}
			lc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := io.ReadAll(lc.br)
			if err != nil {
				t.Fatalf("reading the body to the connection's end: %v (read %q)", err, rest)
			}
			want := "hello, world"
			if tc.chunked {
				if te := f["transfer-encoding"]; len(te) != 1 || te[0] != "chunked" {
					t.Errorf("Transfer-Encoding %q, want chunked", te)
				}
				want = "7\r\nhello, \r\n5\r\nworld\r\n0\r\n\r\n"
			} else if f["transfer-encoding"] != nil {
				t.Errorf("an answer to HTTP/1.0 says Transfer-Encoding %q", f["transfer-encoding"])
			}
			if string(rest) != want {
				t.Errorf("body on the wire %q, want %q", rest, want)
			}
			st.nextIs(t, handed{Method: "GET", RequestURI: "/stream", Host: "a", Proto: tc.proto})
		})
	}
}
