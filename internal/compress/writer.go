package compress

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// ErrClosed is returned by a Writer's Write, Flush and Close after Close.
var ErrClosed = errors.New("compression writer is closed")

// errReleased is what the encoder sees if it writes after Release, which
// only a caller breaking the Release contract can cause.
var errReleased = errors.New("compression writer is released")

// Writer compresses one answer into an underlying writer. It comes from
// Compressor.NewWriter and goes back with Release; it is not safe for
// concurrent use.
type Writer struct {
	pool *sync.Pool
	enc  encoder
	name string
	// out is the encoder's destination for the Writer's whole pooled
	// life, so attaching an answer is one field store and Release can
	// drop the answer's writer without resetting the encoder twice.
	out   sink
	state writerState
	// dirty is set when bytes were written since the last encoder flush,
	// so a Flush with nothing new does not emit an empty sync block.
	dirty bool
	// in counts the answer's uncompressed bytes; retainLimit (0: none) is
	// the most an encoder may have taken in one answer and still go back
	// to the pool, because brotli's buffers grow with the answer and never
	// shrink.
	in          int64
	retainLimit int64

	// The underlying writer's flush, found once per answer.
	flushErr   interface{ FlushError() error }
	flushErr2  interface{ Flush() error }
	flushPlain http.Flusher
}

type writerState uint8

const (
	stateOpen writerState = iota
	stateClosed
	stateReleased
)

type sink struct{ w io.Writer }

func (s *sink) Write(p []byte) (int, error) {
	if s.w == nil {
		return 0, errReleased
	}
	return s.w.Write(p)
}

// NewWriter returns a pooled encoder for enc, a coding Negotiate returned,
// that writes the compressed stream to w. The caller must Close it to end
// the stream and then Release it; Release without Close abandons the
// stream (nothing more is written to w), for an answer cut short.
// NewWriter panics if enc is not one of the Compressor's encodings: that
// is a bug in the caller, which must only pass what Negotiate returned.
func (c *Compressor) NewWriter(enc string, w io.Writer) *Writer {
	cd, ok := codingOf(enc)
	if !ok || c.pools[cd] == nil {
		panic(fmt.Sprintf("compress: NewWriter with encoding %q, which this Compressor does not offer", enc))
	}
	wr := c.pools[cd].Get().(*Writer)
	wr.out.w = w
	wr.enc.Reset(&wr.out)
	wr.state = stateOpen
	wr.dirty = false
	wr.in = 0
	switch f := w.(type) {
	case interface{ FlushError() error }:
		wr.flushErr = f
	case interface{ Flush() error }:
		wr.flushErr2 = f
	case http.Flusher:
		wr.flushPlain = f
	}
	return wr
}

// Encoding returns the content coding the Writer produces.
func (wr *Writer) Encoding() string { return wr.name }

// Write compresses p. The encoder buffers; Flush or Close push it out.
func (wr *Writer) Write(p []byte) (int, error) {
	if wr.state != stateOpen {
		return 0, ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	wr.dirty = true
	n, err := wr.enc.Write(p)
	wr.in += int64(n)
	return n, err
}

// Flush pushes everything written so far through the encoder, so the
// client can decode it all, and then flushes the underlying writer if it
// can be flushed (http.Flusher, Flush() error or FlushError() error): a
// server-sent event written and flushed reaches the client as one event.
// Each Flush that follows new data costs a few bytes of ratio.
func (wr *Writer) Flush() error {
	if wr.state != stateOpen {
		return ErrClosed
	}
	if wr.dirty {
		if err := wr.enc.Flush(); err != nil {
			return fmt.Errorf("flush %s encoder: %w", wr.name, err)
		}
		wr.dirty = false
	}
	switch {
	case wr.flushErr != nil:
		return wr.flushErr.FlushError()
	case wr.flushErr2 != nil:
		return wr.flushErr2.Flush()
	case wr.flushPlain != nil:
		wr.flushPlain.Flush()
	}
	return nil
}

// Close ends the compressed stream, writing what the encoder still holds
// and the stream's trailer to the underlying writer. It does not flush
// the underlying writer. The Writer must still be Released.
func (wr *Writer) Close() error {
	if wr.state != stateOpen {
		return ErrClosed
	}
	wr.state = stateClosed
	if err := wr.enc.Close(); err != nil {
		return fmt.Errorf("close %s encoder: %w", wr.name, err)
	}
	return nil
}

// Release returns the Writer to its pool; it must not be used afterwards.
// An open (not Closed) stream is abandoned: whatever the encoder holds is
// dropped, and the next NewWriter resets the encoder. A brotli Writer
// that compressed more than 256 KiB is left to the garbage collector
// instead, so the pool does not keep its grown buffers (several MiB).
func (wr *Writer) Release() {
	if wr.state == stateReleased {
		return
	}
	wr.state = stateReleased
	wr.out.w = nil
	wr.flushErr, wr.flushErr2, wr.flushPlain = nil, nil, nil
	if wr.retainLimit > 0 && wr.in > wr.retainLimit {
		return
	}
	wr.pool.Put(wr)
}
