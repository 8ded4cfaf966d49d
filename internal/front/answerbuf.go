package front

import (
	"io"
	"sync"
)

// writeBufs holds the memory of the connections' write buffers.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeSize); return &b }}

// answerBuf buffers an answer's writes to the client, as bufio.Writer
// does, in memory taken from writeBufs only while an answer is written.
// It is the connection's own, not pooled: its memory can then be given
// back in the middle of a Flush, by the answer's last send as soon as
// the bytes are on the wire and before that send waits for the next
// request (sink.send), where a bufio.Writer, still flushing, could not be.
// Under load most connections are in that wait.
type answerBuf struct {
	bp  *[]byte // from writeBufs; nil while none is held
	buf []byte  // (*bp)[:what is buffered]
	out io.Writer
	err error // the first write's failure, returned from then on
}

// take gives b memory to write into, if it holds none, and out to write
// to.
func (b *answerBuf) take(out io.Writer) {
	if b.bp == nil {
		b.bp = writeBufs.Get().(*[]byte)
		b.buf = (*b.bp)[:0]
		b.err = nil
	}
	b.out = out
}

// give gives b's memory back; what it held is dropped.
func (b *answerBuf) give() {
	if b.bp != nil {
		*b.bp = b.buf[:0]
		writeBufs.Put(b.bp)
	}
	b.bp, b.buf, b.err = nil, nil, nil
}

// held reports whether b holds memory (take, and no give since).
func (b *answerBuf) held() bool { return b.bp != nil }

// Buffered is how many bytes are waiting to be sent.
func (b *answerBuf) Buffered() int { return len(b.buf) }

// Flush sends what is buffered.
func (b *answerBuf) Flush() error {
	if b.err != nil {
		return b.err
	}
	if len(b.buf) == 0 {
		return nil
	}
	held := b.bp
	n, err := b.out.Write(b.buf)
	if held != nil && b.bp == nil {
		// Given back by the send, once all of it was sent or made into
		// TLS records; a failure to send the records is still this
		// answer's.
		b.err = err
		return err
	}
	if n < len(b.buf) && err == nil {
		err = io.ErrShortWrite
	}
	if err != nil {
		b.buf = b.buf[:copy(b.buf, b.buf[n:])]
		b.err = err
		return err
	}
	b.buf = b.buf[:0]
	return nil
}

// mustHold panics on a write with no memory to write into: one after the
// answer's end (its last send may have given the memory back), or before
// take, is a defect that would lose the bytes.
func (b *answerBuf) mustHold() {
	if b.bp == nil {
		panic("front: an answer written with no write buffer")
	}
}

// Write buffers p; what does not fit is sent, and a p larger than the
// buffer, with nothing buffered before it, goes out without a copy.
func (b *answerBuf) Write(p []byte) (int, error) {
	b.mustHold()
	written := 0
	for len(p) > cap(b.buf)-len(b.buf) && b.err == nil {
		var n int
		if len(b.buf) == 0 {
			n, b.err = b.out.Write(p)
		} else {
			n = cap(b.buf) - len(b.buf)
			b.buf = append(b.buf, p[:n]...)
			b.Flush()
		}
		written += n
		p = p[n:]
	}
	if b.err != nil {
		return written, b.err
	}
	b.buf = append(b.buf, p...)
	return written + len(p), nil
}

// WriteString buffers s, as Write does.
func (b *answerBuf) WriteString(s string) (int, error) {
	b.mustHold()
	written := 0
	for len(s) > cap(b.buf)-len(b.buf) && b.err == nil {
		n := cap(b.buf) - len(b.buf)
		b.buf = append(b.buf, s[:n]...)
		b.Flush()
		written += n
		s = s[n:]
	}
	if b.err != nil {
		return written, b.err
	}
	b.buf = append(b.buf, s...)
	return written + len(s), nil
}

// WriteByte buffers c.
func (b *answerBuf) WriteByte(c byte) error {
	b.mustHold()
	if b.err != nil {
		return b.err
	}
	if len(b.buf) == cap(b.buf) && b.Flush() != nil {
		return b.err
	}
	b.buf = append(b.buf, c)
	return nil
}
