package h2_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

const idleTimeout = 100 * time.Millisecond

// A connection with no stream for IdleTimeout is told GOAWAY and closed.
func TestIdleConnectionIsClosed(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &h2.Server{IdleTimeout: idleTimeout}, http.NotFoundHandler(), nil)
	c := dialRaw(t, ts)
	sc := ts.nextConn(t)
	start := time.Now()
	frames := c.readToEnd()
	if len(c.goAways) != 1 {
		t.Fatalf("%d GOAWAY frames before the close (frames %v), want 1", len(c.goAways), frames)
	}
	if g := c.goAways[0]; g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 0 {
		t.Errorf("GOAWAY %v with last stream %d, want NO_ERROR with 0", g.ErrCode, g.LastStreamID)
	}
	awaitServed(t, sc)
	t.Logf("closed %v after the SETTINGS", time.Since(start))
}

// A connection whose stream runs longer than IdleTimeout is not idle
// while it runs; it is once the stream ended. Its timeout is longer than
// idleTimeout: the connection is idle from its start until the server
// reads the request, which under -race on a busy machine took longer
// than 100 ms, and a GOAWAY decided then is right.
func TestConnectionWithARunningStreamIsNotIdle(t *testing.T) {
	t.Parallel()
	const idleTimeout = time.Second
	started := make(chan struct{})
	release := make(chan struct{})
	ts := startServer(t, &h2.Server{IdleTimeout: idleTimeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-release:
		case <-r.Context().Done(): // the test gave up
		}
	}), nil)
	c := dialRaw(t, ts)
	sc := ts.nextConn(t)
	c.get(1, "/long")
	await(t, started, "the handler")
	// Time itself must pass: several idle timeouts, the stream running.
	time.Sleep(3 * idleTimeout)
	c.ping()
	if len(c.goAways) != 0 {
		t.Fatalf("GOAWAY %v while a stream ran", c.goAways[0].ErrCode)
	}
	close(release)
	if a := c.readAnswer(1); a.reset != nil {
		t.Errorf("the stream was reset with %v", *a.reset)
	}
	c.readToEnd()
	if len(c.goAways) != 1 || c.goAways[0].ErrCode != http2.ErrCodeNo || c.goAways[0].LastStreamID != 1 {
		t.Errorf("GOAWAY frames %+v once idle, want one NO_ERROR with last stream 1", c.goAways)
	}
	awaitServed(t, sc)
}

// A connection idle past its read grace waits for its next frame with
// no read buffer, and is served on as before: a request whole, or one
// whose HEADERS frame comes in pieces across the grace and across the
// wait without the buffer.
func TestIdleConnectionServesOnAfterItsReadGrace(t *testing.T) {
	t.Parallel()
	// Time itself must pass: several read graces (50 ms), the
	// connection idle.
	const pause = 200 * time.Millisecond
	tests := []struct {
		name string
		// send sends the HEADERS frame b of a GET.
		send func(c *rawClient, b []byte)
	}{
		{"whole, after the grace", func(c *rawClient, b []byte) {
			time.Sleep(pause)
			c.Conn.Write(b)
		}},
		{"begun before the grace ends, the rest after", func(c *rawClient, b []byte) {
			c.Conn.Write(b[:4])
			time.Sleep(pause)
			c.Conn.Write(b[4:])
		}},
		{"begun after the grace, in pieces", func(c *rawClient, b []byte) {
			time.Sleep(pause)
			c.Conn.Write(b[:1])
			time.Sleep(pause)
			c.Conn.Write(b[1:12])
			time.Sleep(pause)
			c.Conn.Write(b[12:])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("answer " + r.URL.Path))
			}), nil)
			c := dialRaw(t, ts)
			c.get(1, "/first")
			if a := c.readAnswer(1); string(a.body) != "answer /first" {
				t.Fatalf("first answer %q", a.body)
			}
			var frame bytes.Buffer
			block := c.Block(":method", "GET", ":scheme", "http", ":authority", "example.test", ":path", "/next")
			http2.NewFramer(&frame, nil).WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block, EndStream: true, EndHeaders: true})
			tt.send(c, frame.Bytes())
			if a := c.readAnswer(3); string(a.body) != "answer /next" || a.reset != nil {
				t.Fatalf("the answer after the pause: %q, reset %v", a.body, a.reset)
			}
			if len(c.goAways) != 0 {
				t.Errorf("GOAWAY %v", c.goAways[0].ErrCode)
			}
		})
	}
}
