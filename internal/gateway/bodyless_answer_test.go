package gateway_test

import (
	"io"
	"net"
	"net/http"
	"testing"
)

// An answer that cannot carry a body reaches every client as one that
// has none, whatever the app's fields say of a body: a 204 never carries
// Content-Length (RFC 9110 §8.6), nor does a 304 over HTTP/2, so a client
// does not wait for, or miss, a body the status rules out. Over HTTP/1.1 the writer drops it;
// an HTTP/2 client takes a content-length on a stream that ends with its
// HEADERS for a body that went missing.
func TestNoContentAnswerCarriesNoLength(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		raw    string
		status int
		// h1Length: over HTTP/1.1 the answer keeps its Content-Length (a
		// 304's is its representation's, RFC 9110 §8.6).
		h1Length bool
	}{
		{"204 that declares a body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-App: 1\r\n\r\n", 204, false},
		{"204 that declares an empty body", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-App: 1\r\n\r\n", 204, false},
		{"304 with its representation's length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nX-App: 1\r\n\r\n", 304, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
				status := c.status
				addr := rawApp(t, func(conn net.Conn, req *http.Request, body []byte) { io.WriteString(conn, c.raw) })
				d := newDirect(t, proto, addr, nil)
				cl := protoClient(t, proto)
				for range 2 { // the connection serves on
					resp, err := cl.Get(protoURL(proto, d.addr) + "/none")
					if err != nil {
						t.Fatal(err)
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || len(b) > 0 || resp.StatusCode != status || resp.Header.Get("X-App") != "1" {
						t.Errorf("got %d %q, %v; want %d with X-App and no body", resp.StatusCode, b, err, status)
					}
					if vs, ok := resp.Header["Content-Length"]; ok && !(c.h1Length && proto == "h1") {
						t.Errorf("the %d carries Content-Length %q over %s", status, vs, proto)
					}
				}
				if e := d.entry(t, "/none"); e.Status != status || e.Cause != "" {
					t.Errorf("access entry: status %d cause %q; want %d and none", e.Status, e.Cause, status)
				}
				d.waitIdle(t)
			})
		})
	}
}
