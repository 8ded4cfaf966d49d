package gateway_test

import (
	"io"
	"net"
	"net/http"
	"testing"
)

// An answer that cannot carry a body reaches every client as one that
// has none, whatever the app's fields say of a body: a 204 never carries
// Content-Length (RFC 9110 §8.6), so a client does not wait for, or
// miss, a body the status rules out. Over HTTP/1.1 the writer drops it;
// an HTTP/2 client takes a content-length on a stream that ends with its
// HEADERS for a body that went missing.
func TestNoContentAnswerCarriesNoLength(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		raw  string
	}{
		{"204 that declares a body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-App: 1\r\n\r\n"},
		{"204 that declares an empty body", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-App: 1\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
				addr := rawApp(t, func(conn net.Conn, req *http.Request, body []byte) { io.WriteString(conn, c.raw) })
				d := newDirect(t, proto, addr, nil)
				c := protoClient(t, proto)
				for range 2 { // the connection serves on
					resp, err := c.Get(protoURL(proto, d.addr) + "/none")
					if err != nil {
						t.Fatal(err)
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || len(b) > 0 || resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-App") != "1" {
						t.Errorf("got %d %q, %v; want 204 with X-App and no body", resp.StatusCode, b, err)
					}
					if vs, ok := resp.Header["Content-Length"]; ok {
						t.Errorf("the 204 carries Content-Length %q", vs)
					}
				}
				if e := d.entry(t, "/none"); e.Status != http.StatusNoContent || e.Cause != "" {
					t.Errorf("access entry: status %d cause %q; want 204 and none", e.Status, e.Cause)
				}
				d.waitIdle(t)
			})
		})
	}
}
