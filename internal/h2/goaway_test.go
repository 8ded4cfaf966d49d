package h2_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
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
// and they are served; the GOAWAY comes as soon as the reader has read
// them, not at the hold's bound (a second): on a connection that says
// when it holds nothing unread (Drained, from the socket), and on one
// that never says so (the reader then looks a moment for more).
func TestGoAwayAsTheConnectionBeginsServesWhatCameWithIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		drained func(net.Conn) bool
	}{
		{"the socket says", func(c net.Conn) bool { return peek.Pending(c) == peek.Quiet }},
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
			start := time.Now()
			close(sent)
			c := &rawClient{t: t, RawH2: h, grant: true}
			status, goAwayAfter := "", time.Duration(0)
			for {
				f, err := c.read()
				if err != nil {
					break
				}
				switch f := f.(type) {
				case *http2.MetaHeadersFrame:
					if f.StreamID == 1 {
						status = f.PseudoValue("status")
					}
				case *http2.GoAwayFrame:
					goAwayAfter = time.Since(start)
				}
			}
			if status != "200" || len(c.goAways) != 1 || c.goAways[0].LastStreamID != 1 || c.goAways[0].ErrCode != http2.ErrCodeNo {
				t.Errorf("stream 1's status %q, GOAWAY frames %+v; want 200 and one GOAWAY NO_ERROR naming stream 1", status, c.goAways)
			}
			// The hold's bound is a second: a GOAWAY that waited it out
			// was not sent on the reader's catching up.
			if goAwayAfter >= 700*time.Millisecond {
				t.Errorf("the GOAWAY came %v after the request; want it once the request was read, well before the hold's bound", goAwayAfter)
			}
		})
	}
}

// beginningConn is a server's connection whose client has sent its
// preface and a request before the server reads it (sent): its first
// read tells the server to go away, and each read returns the preface, a
// frame's header or a frame's payload, no more, so that the reader finds
// its buffer empty at each frame's end with the client's next frame
// still in the socket.
type beginningConn struct {
	net.Conn
	sent    chan struct{}
	goAway  func()
	drained func(net.Conn) bool
	once    sync.Once
	// next is how much the next read may return; left, how much of the
	// current frame's payload is still to come.
	next, left int
}

func (c *beginningConn) Read(p []byte) (int, error) {
	c.once.Do(func() {
		<-c.sent
		c.goAway()
		c.next = len(http2.ClientPreface)
	})
	if c.next == 0 {
		if c.left > 0 {
			c.next = c.left
		} else {
			c.next = 9 // a frame header
		}
	}
	n, err := io.ReadFull(c.Conn, p[:min(len(p), c.next)])
	c.next -= n
	switch {
	case c.left > 0:
		c.left -= n
	case n == 9 && c.next == 0:
		// A frame's header (the preface, the first read, is 24 bytes).
		c.left = int(p[0])<<16 | int(p[1])<<8 | int(p[2])
	}
	return n, err
}

func (c *beginningConn) Drained() bool { return c.drained(c.Conn) }

// A GoAway that comes before the client's preface, which comes late (past
// the second a GOAWAY is held for the reader), still lets the server say
// its SETTINGS first: no frame goes before them (RFC 9113 §3.4).
func TestGoAwayBeforeALatePrefaceFollowsTheSettings(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := &h2.Server{}
		sc, cc := net.Pipe()
		defer cc.Close()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeConn(context.Background(), &goAwayAtFirstRead{Conn: sc, goAway: srv.GoAway}, http.NotFoundHandler())
		}()
		time.Sleep(3 * time.Second) // the client is slow to send its preface
		c := testutil.NewRawH2(cc)
		go c.Preface()
		f, err := c.Framer.ReadFrame()
		if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() || err != nil {
			t.Errorf("the server's first frame: %v (%v); want its SETTINGS", f, err)
		}
		cc.Close()
		<-served
	})
}

// goAwayAtFirstRead tells the server to go away as it first reads the
// connection, before anything of the client's has come.
type goAwayAtFirstRead struct {
	net.Conn
	goAway func()
	once   sync.Once
}

func (c *goAwayAtFirstRead) Read(p []byte) (int, error) {
	c.once.Do(c.goAway)
	return c.Conn.Read(p)
}
