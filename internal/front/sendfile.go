package front

import (
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/internal/spool"
)

// A file's body goes to a plain socket by sendfile(2): Writer.ReadFrom
// flushes the head and hands the file, cut at the answer's
// Content-Length, to sink.ReadFrom, which lets the kernel copy it, with
// SendTimeout bounding each wait in which the client takes nothing (on
// Linux, sendFile), or else a piece at a time within SendTimeout each.
// A TLS connection, a chunked answer or a body of any other kind is
// copied through Write as before.

// sendPiece is how much of a file one sendfile may send before the write
// deadline is renewed, where sendFile does not renew it on progress.
const sendPiece = 1 << 20

// ReadFrom writes the answer's body from r: a file (or part of one) by
// sendfile when it can, otherwise as Write would.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	f, limit := fileOf(r)
	if f == nil || !w.bodyOK || w.chunked || w.remaining < 0 || w.failed {
		return copyThrough(w, r)
	}
	if limit < 0 || limit > w.remaining {
		limit = w.remaining
	}
	// The head goes first, on its own, and the file after it by
	// sendfile: not a read of the file's first bytes into the buffer
	// behind the head, which costs a read and a copy more.
	var n int64
	err := w.fc.bw.Flush()
	if err == nil {
		n, err = sink{w.fc}.ReadFrom(&io.LimitedReader{R: f, N: limit})
	}
	w.remaining -= n
	if err != nil {
		w.fail()
		return n, ErrClientWrite
	}
	return n, nil
}

// fileOf is the file r reads, and how much of it (-1: to its end).
func fileOf(r io.Reader) (*os.File, int64) {
	switch v := r.(type) {
	case *os.File:
		return v, -1
	case *io.LimitedReader:
		if f, ok := v.R.(*os.File); ok {
			return f, v.N
		}
	}
	return nil, 0
}

// copyThrough copies r to w with a pooled buffer, through w's Write.
func copyThrough(w io.Writer, r io.Reader) (int64, error) {
	buf := spool.Buffer(32 << 10)
	defer spool.Release(buf)
	return io.CopyBuffer(writerOnly{w}, r, buf)
}

// writerOnly hides a writer's ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// ReadFrom is the buffered writer's way to the socket for what is left of
// a file once its buffer is empty (see Writer.ReadFrom).
func (s sink) ReadFrom(r io.Reader) (int64, error) {
	tc, ok := s.fc.c.(*net.TCPConn)
	lr, isLimited := r.(*io.LimitedReader)
	if !ok || !isLimited || s.fc.sendWait {
		return copyThrough(s, r)
	}
	if n, err, handled := sendFile(tc, lr, s.fc.sendTimeout); handled {
		return n, err
	}
	var total int64
	for lr.N > 0 {
		piece := &io.LimitedReader{R: lr.R, N: min(lr.N, sendPiece)}
		tc.SetWriteDeadline(time.Now().Add(s.fc.sendTimeout))
		n, err := tc.ReadFrom(piece)
		total += n
		lr.N -= n
		if err != nil {
			return total, err
		}
		if n == 0 {
			break // the file is shorter than said
		}
	}
	return total, nil
}
