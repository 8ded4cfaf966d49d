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

// copyBuffers lends the copy buffers of answers of unknown or large
// length.
var copyBuffers = &bufferPool{size: 32 << 10}

// smallCopyBuffers copy bodies of known length up to their size: most
// answers are small, and a 32 KiB buffer for each in flight was a tenth
// of the heap under load.
var smallCopyBuffers = &bufferPool{size: 4 << 10}

type bufferPool struct {
	p    sync.Pool
	size int
}

type copyBuffer struct{ b []byte }

func (bp *bufferPool) Get() []byte {
	if c, ok := bp.p.Get().(*copyBuffer); ok {
		b := c.b
		c.b = nil
		bufHolders.Put(c)
		return b
	}
	return make([]byte, bp.size)
}

// Put keeps the buffer; its holder comes from a second pool so that
// putting one back does not allocate.
func (bp *bufferPool) Put(b []byte) {
	c, _ := bufHolders.Get().(*copyBuffer)
	if c == nil {
		c = new(copyBuffer)
	}
	c.b = b
	bp.p.Put(c)
}

var bufHolders sync.Pool
