package gateway_test

import (
	"io"
	"net"
	"net/http"
	"testing"
)

// A client gets the trailer fields the app sent after its last chunk,
// and no others, over every protocol: a trailer the app announced and
// then left out is not made up from the head's field of the same name
// (the HTTP/2 server's handlers set trailers by the announced names,
// which a forwarded answer must not do).
func TestAnswerTrailersAreTheAppsOwn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		raw  string
		want string // the client's X-Sum trailer
	}{
		{"announced, sent", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-Sum: head\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 3\r\n\r\n", "3"},
		{"announced, left out", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-Sum: head\r\n\r\n3\r\nabc\r\n0\r\n\r\n", ""},
		{"announced with another, left out", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Count\r\nX-Sum: head\r\n\r\n3\r\nabc\r\n0\r\nX-Count: 1\r\n\r\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
				addr := rawApp(t, func(conn net.Conn, req *http.Request, body []byte) { io.WriteString(conn, c.raw) })
				d := newDirect(t, proto, addr, nil)
				req, _ := http.NewRequest("GET", protoURL(proto, d.addr)+"/sum", nil)
				req.Header.Set("TE", "trailers")
				resp, body := fetch(t, protoClient(t, proto), req)
				if body != "abc" || resp.Header.Get("X-Sum") != "head" {
					t.Errorf("body %q, head X-Sum %q; want abc and head", body, resp.Header.Get("X-Sum"))
				}
				if got := resp.Trailer.Get("X-Sum"); got != c.want {
					t.Errorf("trailer X-Sum %q, want %q (trailers %v)", got, c.want, resp.Trailer)
				}
				d.waitIdle(t)
			})
		})
	}
}
