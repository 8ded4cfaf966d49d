package h2_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/h2"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// waitLimit bounds every wait for an event: one that does not come in
// this long is not coming.
const waitLimit = 10 * time.Second

// testServer serves every connection its loopback listener accepts with
// srv, each ServeConn on a goroutine the test's cleanup waits for.
type testServer struct {
	srv  *h2.Server
	addr string
	// accepted has each connection as it is served, in order.
	accepted chan *servedConn

	mu    sync.Mutex
	conns []*servedConn
}

// servedConn is the server's side of one connection.
type servedConn struct {
	net.Conn
	// done is closed once ServeConn returned.
	done chan struct{}
}

// startServer serves h with srv on a loopback listener until the test
// ends. wrap, if set, wraps each accepted connection before it is
// served. The cleanup closes the listener and every connection and waits
// for their ServeConn.
func startServer(t *testing.T, srv *h2.Server, h http.Handler, wrap func(net.Conn) net.Conn) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: ln.Addr().String(), accepted: make(chan *servedConn, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if wrap != nil {
				nc = wrap(nc)
			}
			sc := &servedConn{Conn: nc, done: make(chan struct{})}
			ts.mu.Lock()
			ts.conns = append(ts.conns, sc)
			ts.mu.Unlock()
			wg.Go(func() {
				defer close(sc.done)
				srv.ServeConn(ctx, sc.Conn, h)
			})
			select {
			case ts.accepted <- sc:
			default:
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		cancel()
		ts.mu.Lock()
		for _, sc := range ts.conns {
			sc.Close()
		}
		ts.mu.Unlock()
		wg.Wait()
	})
	return ts
}

// nextConn is the next connection the server accepted.
func (ts *testServer) nextConn(t *testing.T) *servedConn {
	t.Helper()
	select {
	case sc := <-ts.accepted:
		return sc
	case <-time.After(waitLimit):
		t.Fatal("no connection accepted")
		return nil
	}
}

// awaitServed waits for sc's ServeConn to return.
func awaitServed(t *testing.T, sc *servedConn) {
	t.Helper()
	select {
	case <-sc.done:
	case <-time.After(waitLimit):
		t.Fatal("ServeConn did not return")
	}
}

// h2cClient is an HTTP/2 client speaking h2c with prior knowledge to
// the test's server, with a stream and connection receive window of
// window bytes (the defaults if 0). It is net/http's, whose HTTP/2 is
// x/net's client; x/net's own Transport is deprecated for it. Its
// connections close when the test ends.
func h2cClient(t *testing.T, window int) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), HTTP2: &http.HTTP2Config{}}
	tr.Protocols.SetUnencryptedHTTP2(true)
	if window > 0 {
		tr.HTTP2.MaxReceiveBufferPerStream = window
		tr.HTTP2.MaxReceiveBufferPerConnection = window
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitLimit}
}

// rawClient speaks HTTP/2 frame by frame to the test's server, for what
// a real client hides: the frames themselves, settings and windows of
// the test's choice, resets.
type rawClient struct {
	t *testing.T
	*testutil.RawH2
	// grant: DATA received is given back to the server's windows at
	// once.
	grant bool
	// goAways are the GOAWAY frames read so far.
	goAways []http2.GoAwayFrame
}

// dialRaw connects to ts, sends the preface with settings and waits for
// the server's SETTINGS, which it acknowledges.
func dialRaw(t *testing.T, ts *testServer, settings ...http2.Setting) *rawClient {
	t.Helper()
	h, err := testutil.DialH2(t, ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, RawH2: h, grant: true}
	if err := h.Preface(settings...); err != nil {
		t.Fatal(err)
	}
	for {
		f := c.readFrame()
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			break
		}
	}
	if err := h.Framer.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return c
}

// getOnNewConn opens an h2c connection to addr, sends the preface and a
// GET of / on stream 1, and returns the connection without waiting for
// the server.
func getOnNewConn(t *testing.T, addr string) *testutil.RawH2 {
	t.Helper()
	c, err := testutil.DialH2(t, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Preface(); err != nil {
		t.Fatal(err)
	}
	if err := c.Headers(1, true, testutil.H2Get("http", "a", "/")...); err != nil {
		t.Fatal(err)
	}
	return c
}

// read reads the next frame, or the error that ended the reading.
func (c *rawClient) read() (http2.Frame, error) {
	c.Conn.SetReadDeadline(time.Now().Add(waitLimit))
	f, err := c.Framer.ReadFrame()
	if err != nil {
		return nil, err
	}
	switch f := f.(type) {
	case *http2.GoAwayFrame:
		g := *f
		g.FrameHeader = http2.FrameHeader{Type: f.Type, Flags: f.Flags, Length: f.Length, StreamID: f.StreamID}
		c.goAways = append(c.goAways, g)
	case *http2.DataFrame:
		if n := f.Length; c.grant && n > 0 {
			if err := c.Framer.WriteWindowUpdate(0, n); err != nil {
				return nil, err
			}
			if !f.StreamEnded() {
				if err := c.Framer.WriteWindowUpdate(f.StreamID, n); err != nil {
					return nil, err
				}
			}
		}
	}
	return f, nil
}

// readFrame reads the next frame; an error fails the test.
func (c *rawClient) readFrame() http2.Frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// get sends a GET of path on stream id, ending the stream.
func (c *rawClient) get(id uint32, path string, extra ...string) {
	c.t.Helper()
	c.request(id, true, append([]string{":method", "GET", ":scheme", "http", ":authority", "example.test", ":path", path}, extra...)...)
}

// post sends the HEADERS of a POST to path on stream id; the body is the
// test's to send.
func (c *rawClient) post(id uint32, path string, extra ...string) {
	c.t.Helper()
	c.request(id, false, append([]string{":method", "POST", ":scheme", "http", ":authority", "example.test", ":path", path}, extra...)...)
}

func (c *rawClient) request(id uint32, end bool, fields ...string) {
	c.t.Helper()
	if err := c.Headers(id, end, fields...); err != nil {
		c.t.Fatal(err)
	}
}

// ping sends a PING and reads until its acknowledgement: the server has
// acted on every frame sent before it. The frames read meanwhile are
// returned.
func (c *rawClient) ping() []http2.Frame {
	c.t.Helper()
	data := [8]byte{'p', 'i', 'n', 'g'}
	if err := c.Framer.WritePing(false, data); err != nil {
		c.t.Fatal(err)
	}
	var seen []http2.Frame
	for {
		f := c.readFrame()
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && p.Data == data {
			return seen
		}
		seen = append(seen, f)
	}
}

// answer is what a stream brought back, as the client read it.
type answer struct {
	// blocks are its header blocks in order: 1xx heads, the head, the
	// trailers.
	blocks [][]hpack.HeaderField
	body   []byte
	// reset is the RST_STREAM's code, if the stream was reset.
	reset *http2.ErrCode
}

// statuses are the :status of each header block that has one.
func (a answer) statuses() []string {
	var s []string
	for _, b := range a.blocks {
		for _, f := range b {
			if f.Name == ":status" {
				s = append(s, f.Value)
			}
		}
	}
	return s
}

// values are the values of field name in header block i.
func (a answer) values(i int, name string) []string {
	var v []string
	if i >= len(a.blocks) {
		return nil
	}
	for _, f := range a.blocks[i] {
		if f.Name == name {
			v = append(v, f.Value)
		}
	}
	return v
}

// readAnswer reads until stream id ends or is reset, and returns what it
// brought. Frames of other streams and of the connection are passed
// over.
func (c *rawClient) readAnswer(id uint32) answer {
	c.t.Helper()
	var a answer
	for {
		f := c.readFrame()
		if f.Header().StreamID != id {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			a.blocks = append(a.blocks, f.Fields)
			if f.StreamEnded() {
				return a
			}
		case *http2.DataFrame:
			a.body = append(a.body, f.Data()...)
			if f.StreamEnded() {
				return a
			}
		case *http2.RSTStreamFrame:
			code := f.ErrCode
			a.reset = &code
			return a
		}
	}
}

// readToEnd reads until the server closes the connection and returns
// the frames read meanwhile.
func (c *rawClient) readToEnd() []http2.Frame {
	c.t.Helper()
	var seen []http2.Frame
	for {
		f, err := c.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("the server did not close the connection: %v", err)
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
				c.t.Logf("the connection ended with %v", err)
			}
			return seen
		}
		seen = append(seen, f)
	}
}

// handlerResult carries what a handler saw to the test.
type handlerResult struct {
	err error
	ctx error
}

// awaitResult waits for a handler's result on ch.
func awaitResult(t *testing.T, ch <-chan handlerResult) handlerResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatal("the handler did not report")
		return handlerResult{}
	}
}

// await waits for ch to be closed or to yield, naming what for.
func await[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
	}
}
