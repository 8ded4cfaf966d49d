package h2

import (
	"io"
	"sync"
)

// outBuffer gathers the frames written under the connection's write lock
// until a flush. It holds a buffer only while something is in it, taken
// from the server's pool for the frames of one flush: a connection idle
// or waiting for its apps holds none, where a buffer of its own would
// cost it writeBuffer for as long as it lives.
type outBuffer struct {
	w    io.Writer
	pool *sync.Pool
	bp   *[]byte // nil when empty
}

// Write buffers p, flushing first when it does not fit; a p as large as
// a whole buffer, with nothing buffered before it, is written as it is.
func (b *outBuffer) Write(p []byte) (int, error) {
	if b.Buffered()+len(p) > writeBuffer {
		if err := b.Flush(); err != nil {
			return 0, err
		}
		if len(p) >= writeBuffer {
			return b.w.Write(p)
		}
	}
	if b.bp == nil {
		b.bp, _ = b.pool.Get().(*[]byte)
		if b.bp == nil {
			buf := make([]byte, 0, writeBuffer)
			b.bp = &buf
		}
	}
	*b.bp = append(*b.bp, p...)
	return len(p), nil
}

// Buffered is how much is written and not flushed.
func (b *outBuffer) Buffered() int {
	if b.bp == nil {
		return 0
	}
	return len(*b.bp)
}

// Flush writes out what is buffered and gives the buffer back. After a
// failed write what was buffered is dropped: the connection is broken.
func (b *outBuffer) Flush() error {
	if b.bp == nil {
		return nil
	}
	_, err := b.w.Write(*b.bp)
	*b.bp = (*b.bp)[:0]
	b.pool.Put(b.bp)
	b.bp = nil
	return err
}
