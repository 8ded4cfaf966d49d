package h2_test

import (
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
// while it runs; it is once the stream ended.
func TestConnectionWithARunningStreamIsNotIdle(t *testing.T) {
	t.Parallel()
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
	time.Sleep(5 * idleTimeout)
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
