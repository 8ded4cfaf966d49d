package h2_test

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// Frames the client sent on a stream past the GOAWAY's last, before it
// heard of the GOAWAY, are discarded (RFC 9113 §6.8): the header block
// decoded for HPACK's sake, nothing else. None of them ends the
// connection, whose streams before the GOAWAY's last finish.
func TestGoAwayDiscardsFramesOfStreamsAfterIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(t *testing.T, c *rawClient, id uint32)
	}{
		{"body", func(t *testing.T, c *rawClient, id uint32) {
			c.post(id, "/late")
			if err := c.Framer.WriteData(id, true, []byte("late body")); err != nil {
				t.Fatal(err)
			}
		}},
		{"body and trailers", func(t *testing.T, c *rawClient, id uint32) {
			c.post(id, "/late", "trailer", "x-sum")
			if err := c.Framer.WriteData(id, false, []byte("late body")); err != nil {
				t.Fatal(err)
			}
			c.request(id, true, "x-sum", "1")
		}},
		{"trailers only", func(t *testing.T, c *rawClient, id uint32) {
			c.post(id, "/late")
			c.request(id, true, "x-sum", "1")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			started := make(chan struct{})
			release := make(chan struct{})
			srv := &h2.Server{}
			ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/open" {
					t.Errorf("a stream after the GOAWAY was served: %s", r.URL.Path)
					return
				}
				close(started)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "finished")
			}), nil)
			c := dialRaw(t, ts)
			sc := ts.nextConn(t)
			c.get(1, "/open")
			await(t, started, "the open stream's handler")
			srv.GoAway()
			for len(c.goAways) == 0 {
				c.readFrame()
			}
			tc.send(t, c, 3)
			for _, f := range c.ping() {
				if f.Header().StreamID == 3 {
					t.Errorf("the stream after the GOAWAY got %v", f)
				}
			}
			close(release)
			a := c.readAnswer(1)
			if string(a.body) != "finished" || a.reset != nil {
				t.Errorf("stream 1: body %q, reset %v; want %q", a.body, a.reset, "finished")
			}
			c.readToEnd()
			for _, g := range c.goAways {
				if g.ErrCode != http2.ErrCodeNo {
					t.Errorf("GOAWAY %v, want only NO_ERROR", g.ErrCode)
				}
			}
			awaitServed(t, sc)
		})
	}
}
