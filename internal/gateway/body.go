package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// replayer rewinds a request body for another attempt.
type replayer struct {
	buf []byte
	// counted tracks how much of a streamed body was read; a body that
	// was read at all cannot be sent again.
	counted *countingBody
}

// prepareBody keeps a request body of up to limit bytes in memory so the
// request can be replayed on another instance; a larger body streams, and
// is replayable only while none of it was sent.
func prepareBody(req *http.Request, limit int64) (replayer, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return replayer{}, nil
	}
	if req.ContentLength > limit {
		cb := &countingBody{ReadCloser: req.Body}
		req.Body = cb
		return replayer{counted: cb}, nil
	}
	bp := bodyBufs.Get().(*bytes.Buffer)
	bp.Reset()
	n, err := io.Copy(bp, io.LimitReader(req.Body, limit+1))
	if err != nil {
		bodyBufs.Put(bp)
		return replayer{}, err
	}
	if n > limit {
		// Unknown length and larger than the limit: stream what is left
		// after what we read.
		rest := io.MultiReader(bytes.NewReader(bytes.Clone(bp.Bytes())), req.Body)
		bodyBufs.Put(bp)
		cb := &countingBody{ReadCloser: readCloser{rest, req.Body}}
		req.Body = cb
		return replayer{counted: cb}, nil
	}
	buf := bytes.Clone(bp.Bytes())
	bodyBufs.Put(bp)
	req.Body.Close()
	req.ContentLength = int64(len(buf))
	req.Body = io.NopCloser(bytes.NewReader(buf))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return replayer{buf: buf}, nil
}

var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// rewind prepares req for another attempt; false when its body cannot be
// sent again.
func (r replayer) rewind(req *http.Request) bool {
	switch {
	case r.counted != nil:
		return r.counted.n == 0
	case r.buf != nil:
		req.Body = io.NopCloser(bytes.NewReader(r.buf))
	}
	return true
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		// The client's body broke (cut short, bad chunking): the failure
		// is the client's, not the instance's the body was going to.
		err = &upstream.ClientBodyError{Err: err}
	}
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// responseBody hands the connection back once the body has been read to
// its end, releases the member when the response is done, and notes a
// body that ended early.
type responseBody struct {
	rc     io.ReadCloser
	pc     *upstream.Conn
	m      *pool.Member
	st     *reqState
	closed bool
	// unwatch stops the interruption of a streamed body's reads when its
	// client leaves; false when the interruption already happened.
	unwatch func() bool
	// unend stops the end of an event stream at EndStreams; ended is set
	// when that end came.
	unend func() bool
	ended atomic.Bool
}

// endWith makes an event stream end when ctx does, as if the app had
// ended it: the client's response is complete (an event stream may end
// at any event; its client reconnects), the connection to the app is
// dropped.
func (b *responseBody) endWith(ctx context.Context) {
	if b.pc == nil || ctx == nil {
		return
	}
	pc := b.pc
	b.unend = context.AfterFunc(ctx, func() {
		b.ended.Store(true)
		pc.Interrupt()
	})
}

func newResponseBody(ctx context.Context, resp *http.Response, pc *upstream.Conn, m *pool.Member, st *reqState) io.ReadCloser {
	var b *responseBody
	if resp.StatusCode != http.StatusSwitchingProtocols && !isEventStream(resp.Header) {
		// A plain answer: copyResponse closes its body before
		// the request's state is put back, and no callback outlives it
		// that touches the body itself (watch's interrupts the
		// connection), so the state's own body serves, unallocated. An
		// upgrade outlives the request, and an event stream's end
		// (endWith) sets ended from another goroutine: theirs are their
		// own.
		b = &st.body
		*b = responseBody{rc: resp.Body, pc: pc, m: m, st: st}
	} else {
		b = &responseBody{rc: resp.Body, pc: pc, m: m, st: st}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now carries another protocol: it is the body,
		// readable and writable, and never goes back to the pool.
		return &upgradeBody{responseBody: b, conn: pc.NetConn(), br: pc.Reader()}
	}
	if resp.Body == http.NoBody {
		b.done(true)
		return b
	}
	if resp.ContentLength < 0 {
		// A stream may be silent for minutes: when the client leaves,
		// the read from the app is interrupted, so that the member and
		// the connection are let go now rather than at the app's next
		// write. (A body of known length arms this only once it takes
		// more than one read: see copyResponse.)
		b.watch(ctx)
	}
	return b
}

// watch interrupts the body's reads from the app when ctx ends.
func (b *responseBody) watch(ctx context.Context) {
	if b.unwatch != nil || b.pc == nil {
		return
	}
	b.unwatch = context.AfterFunc(ctx, b.pc.Interrupt)
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.pc == nil {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.done(true)
	case err != nil && b.ended.Load():
		b.done(false)
		return n, io.EOF
	case err != nil:
		b.st.truncated = true
		b.done(false)
	}
	return n, err
}

// done ends the exchange's use of the connection: clean when the body was
// read exactly to its end (see package upstream for when that is enough
// to reuse it).
func (b *responseBody) done(clean bool) {
	if b.pc == nil {
		return
	}
	if b.unwatch != nil && !b.unwatch() {
		clean = false // its deadline was moved: the connection is spent
	}
	if b.unend != nil && !b.unend() {
		clean = false
	}
	b.unwatch, b.unend = nil, nil
	b.pc.Finish(clean)
	b.pc = nil
}

func (b *responseBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.done(false)
	b.m.Release()
	return nil
}

// upgradeBody is the body of a 101 answer: the app's connection, which
// now carries the protocol switched to (see tunnel), after what its
// reader buffered.
type upgradeBody struct {
	*responseBody
	conn net.Conn
	br   *bufio.Reader
}

// Close ends the upgraded conversation on the app's side and releases
// the member.
func (u *upgradeBody) Close() error {
	if u.closed {
		return nil
	}
	u.closed = true
	u.conn.Close()
	u.m.Release()
	return nil
}
