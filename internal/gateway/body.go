package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/pool"
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
		err = &clientBodyError{err}
	}
	return n, err
}

// clientBodyError is a failure to read the client's request body while it
// streamed to the app.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// isClientBodyError reports whether err, or an error it wraps, is a
// clientBodyError, without the allocation of errors.As.
func isClientBodyError(err error) bool {
	for err != nil {
		if _, ok := err.(*clientBodyError); ok {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}

// responseBody hands the connection back to the pool once the body has
// been read to its end, releases the member when the response is done, and
// notes a body that ended early.
type responseBody struct {
	rc     io.ReadCloser
	pc     *pconn
	u      *upstream
	m      *pool.Member
	st     *reqState
	reuse  bool
	closed bool
	// unwatch stops the interruption of a streamed body's reads when its
	// client leaves; false when the interruption already happened.
	unwatch func() bool
}

func newResponseBody(ctx context.Context, resp *http.Response, pc *pconn, u *upstream, m *pool.Member, st *reqState) io.ReadCloser {
	b := &responseBody{rc: resp.Body, pc: pc, u: u, m: m, st: st, reuse: !resp.Close}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now carries another protocol: it is the body,
		// readable and writable, and never goes back to the pool.
		b.reuse = false
		ub := &upgradeBody{responseBody: b}
		st.upgrade = ub
		return ub
	}
	if resp.Body == http.NoBody {
		b.done(true)
		return b
	}
	if resp.ContentLength < 0 {
		// A stream may be silent for minutes: when its client leaves,
		// the read from the app is interrupted, so that the member and
		// the connection are let go now rather than at the next event.
		b.unwatch = context.AfterFunc(ctx, func() { pc.conn.SetReadDeadline(aLongTimeAgo) })
	}
	return b
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.pc == nil {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.done(true)
	case err != nil:
		b.st.truncated = true
		b.done(false)
	}
	return n, err
}

// done ends the connection's part: back to the pool when the exchange
// ended cleanly and both sides keep it alive, else closed.
func (b *responseBody) done(clean bool) {
	if b.pc == nil {
		return
	}
	if b.unwatch != nil && !b.unwatch() {
		clean = false // its deadline was moved: the connection is spent
	}
	b.unwatch = nil
	// Bytes already buffered past the end of the response were sent
	// unasked: left there, they would be read as the next request's
	// response.
	if clean && b.reuse && b.pc.br.Buffered() == 0 {
		b.u.put(b.pc)
	} else {
		b.pc.close()
	}
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

type upgradeBody struct {
	*responseBody
	// ended: Close may be called from ReverseProxy's copy goroutines and
	// from errorHandler at once.
	ended atomic.Bool
}

// Read of an upgraded connection reads raw bytes: its errors are the end
// of a conversation, not a truncated response, and the request's state
// may already belong to another request when the copy loop sees them.
func (u *upgradeBody) Read(p []byte) (int, error) { return u.pc.br.Read(p) }

func (u *upgradeBody) Write(p []byte) (int, error) { return u.pc.conn.Write(p) }

// Close ends the upgraded conversation. ReverseProxy closes the body from
// its watcher goroutine, and errorHandler when the switch failed; closing
// twice is harmless.
func (u *upgradeBody) Close() error {
	if u.ended.Swap(true) {
		return nil
	}
	u.pc.conn.Close()
	u.m.Release()
	return nil
}
