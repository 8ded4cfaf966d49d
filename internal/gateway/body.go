package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

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
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// responseBody releases the member and the attempt's context when the
// response is done, and notes a body that ended early.
type responseBody struct {
	io.ReadCloser
	m      *pool.Member
	st     *reqState
	cancel context.CancelFunc
	once   sync.Once
}

func wrapBody(rc io.ReadCloser, m *pool.Member, st *reqState, cancel context.CancelFunc) io.ReadCloser {
	b := &responseBody{ReadCloser: rc, m: m, st: st, cancel: cancel}
	if _, ok := rc.(io.ReadWriteCloser); ok {
		// A 101 Switching Protocols body is the raw connection: keep it
		// writable for the upgrade.
		return &upgradeBody{b}
	}
	return b
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
		b.st.truncated = true
	}
	return n, err
}

func (b *responseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		b.m.Release()
		b.cancel()
	})
	return err
}

type upgradeBody struct{ *responseBody }

// Read of an upgraded connection reads raw bytes: its errors are the end
// of a conversation, not a truncated response, and the request's state
// may already belong to another request when the copy loop sees them.
func (u *upgradeBody) Read(p []byte) (int, error) { return u.responseBody.ReadCloser.Read(p) }

func (u *upgradeBody) Write(p []byte) (int, error) {
	return u.responseBody.ReadCloser.(io.Writer).Write(p)
}
