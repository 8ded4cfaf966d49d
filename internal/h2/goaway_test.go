package h2_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
	"github.com/gatehouse/gatehouse/internal/peek"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// GoAway tells the client which streams will be served, serves none
// after them, lets the open one finish, then ends the connection.
func TestGoAwayFinishesOpenStreamsThenCloses(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	var late atomic.Int32
	srv := &h2.Server{}
	ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/open" {
			late.Add(1)
			return
		}
		close(started)
		select {
		case <-release:
		case <-r.Context().Done(): // the test gave up
			return
		}
		io.WriteString(w, "finished")
	}), nil)
	c := dialRaw(t, ts)
	sc := ts.nextConn(t)
	c.get(1, "/open")
	await(t, started, "the open stream's handler")

	srv.GoAway()
	var goAway *http2.GoAwayFrame
	for goAway == nil {
		if g, ok := c.readFrame().(*http2.GoAwayFrame); ok {
			goAway = g
		}
	}
	if goAway.ErrCode != http2.ErrCodeNo || goAway.LastStreamID != 1 {
		t.Errorf("GOAWAY %v with last stream %d, want NO_ERROR with 1", goAway.ErrCode, goAway.LastStreamID)
	}

	// A stream after the GOAWAY's last is not served; the PING's answer
	// says the server has read it.
	c.get(3, "/late")
	seen := c.ping()
	close(release)
	a := c.readAnswer(1)
	if diff := cmp.Diff([]string{"200"}, a.statuses()); diff != "" || a.reset != nil {
		t.Errorf("statuses (-want +got):\n%s, reset %v", diff, a.reset)
	}
	if string(a.body) != "finished" {
		t.Errorf("body %q, want %q", a.body, "finished")
	}
	for _, f := range append(seen, c.readToEnd()...) {
		if f.Header().StreamID == 3 {
			t.Errorf("the stream after GOAWAY got %v", f)
		}
	}
	awaitServed(t, sc)
	if n := late.Load(); n != 0 {
		t.Errorf("the stream after GOAWAY ran its handler %d times", n)
	}
}

// A second GoAway sends nothing more: the client is told once.
func TestGoAwayIsSentOnce(t *testing.T) {
	t.Parallel()
	srv := &h2.Server{}
	ts := startServer(t, srv, http.NotFoundHandler(), nil)
	c := dialRaw(t, ts)
	sc := ts.nextConn(t)
	srv.GoAway()
	srv.GoAway()
	n := 0
	for _, f := range c.readToEnd() {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			n++
			if g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 0 {
				t.Errorf("GOAWAY %v with last stream %d, want NO_ERROR with 0", g.ErrCode, g.LastStreamID)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d GOAWAY frames, want 1", n)
	}
	awaitServed(t, sc)
}

// A connection told to go away just after its last stream ended, while
// it waits out its read grace, still gets its GOAWAY out to a client
// that reads it late (a pipe: the write waits for the read), and ends
// after it: the grace's deadline passing ends nothing.
func TestGoAwayWithinTheReadGraceGetsOut(t *testing.T) {
	t.Parallel()
	srv := &h2.Server{}
	sc, cc := net.Pipe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ServeConn(context.Background(), sc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "answer")
		}))
	}()
	defer cc.Close()
	c := testutil.NewRawH2(cc)
	// The client's writes, in order on one goroutine (the pipe holds
	// each until the server reads it): its preface, then, once it has
	// the server's SETTINGS, the request.
	settled := make(chan struct{})
	go func() {
		c.Preface()
		<-settled
		c.Headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "example.test", ":path", "/")
	}()
	read := func() http2.Frame {
		t.Helper()
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		f, err := c.Framer.ReadFrame()
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		return f
	}
	for f := read(); ; f = read() {
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			break
		}
	}
	close(settled)
	for f := read(); ; f = read() {
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			break
		}
	}
	// Time itself must pass: the handler returns a moment after its
	// answer, and the client reads again only after the 50 ms grace.
	time.Sleep(10 * time.Millisecond)
	srv.GoAway()
	time.Sleep(200 * time.Millisecond)
	for f := read(); ; f = read() {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
				t.Errorf("GOAWAY %v, last stream %d; want NO_ERROR, 1", g.ErrCode, g.LastStreamID)
			}
			break
		}
	}
	await(t, served, "the connection's end")
}

// A GoAway that comes as a connection begins, before its reader has read
// what the client sent with its preface, names the streams sent then,
// and they are served: on a connection that says when it holds nothing
// unread (Drained, from the socket), and on one that never says so (the
// reader then looks a moment for more).
func TestGoAwayAsTheConnectionBeginsServesWhatCameWithIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		drained func(net.Conn) bool
	}{
		{"the socket says", func(c net.Conn) bool { return peek.Pending(c) != peek.Data }},
		{"never drained", func(net.Conn) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &h2.Server{}
			sent := make(chan struct{})
			ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "served")
			}), func(nc net.Conn) net.Conn {
				return &beginningConn{Conn: nc, sent: sent, goAway: srv.GoAway, drained: tc.drained}
			})
			h := getOnNewConn(t, ts.addr) // the preface, then a GET on stream 1
			close(sent)
			c := &rawClient{t: t, RawH2: h, grant: true}
			status := ""
			for _, f := range c.readToEnd() {
				if hf, ok := f.(*http2.MetaHeadersFrame); ok && hf.StreamID == 1 {
					status = hf.PseudoValue("status")
				}
			}
			if status != "200" || len(c.goAways) != 1 || c.goAways[0].LastStreamID != 1 || c.goAways[0].ErrCode != http2.ErrCodeNo {
				t.Errorf("stream 1's status %q, GOAWAY frames %+v; want 200 and one GOAWAY NO_ERROR naming stream 1", status, c.goAways)
			}
		})
	}
}

// beginningConn is a server's connection whose client has sent its
// preface and a request before the server reads it (sent): its first
// read tells the server to go away, and its reads return at most a
// frame header's worth, so that the reader finds its buffer empty
// between frames with the client's bytes still in the socket.
type beginningConn struct {
	net.Conn
	sent    chan struct{}
	goAway  func()
	drained func(net.Conn) bool
	once    sync.Once
}

func (c *beginningConn) Read(p []byte) (int, error) {
	c.once.Do(func() {
		<-c.sent
		c.goAway()
	})
	return c.Conn.Read(p[:min(len(p), 9)])
}

func (c *beginningConn) Drained() bool { return c.drained(c.Conn) }
