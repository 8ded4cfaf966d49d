// Package execwire is the frame protocol of gatehouse exec: after the
// admin API switches the connection (Upgrade: gatehouse-exec), both sides
// speak frames of a stream id byte, a 4-byte big-endian payload length
// and the payload. The client sends stdin frames (an empty one is its
// end); the server sends stdout and stderr frames, then one exit frame.
// It imports nothing of gatehouse.
package execwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Protocol is the Upgrade token of the switch.
const Protocol = "gatehouse-exec"

// The streams of a frame.
const (
	Stdin  byte = 0
	Stdout byte = 1
	Stderr byte = 2
	// Exit carries the command's exit code, 4 bytes big-endian (a
	// signal as 128+N, as a shell reports it). It is the last frame.
	Exit byte = 3
)

// HeaderLen is the size of a frame's head: the stream byte and the length.
const HeaderLen = 5

// MaxPayload bounds one frame's payload: a longer length is refused
// before anything is allocated for it.
const MaxPayload = 32 << 10

// ErrTooLarge is a frame whose length exceeds MaxPayload.
var ErrTooLarge = errors.New("execwire: frame longer than the limit")

// StreamError is a frame of a stream this protocol does not have.
type StreamError struct{ Stream byte }

func (e *StreamError) Error() string { return fmt.Sprintf("execwire: unknown stream %d", e.Stream) }

// PutHeader writes the head of a frame of n payload bytes into b[:HeaderLen].
func PutHeader(b []byte, stream byte, n int) {
	b[0] = stream
	binary.BigEndian.PutUint32(b[1:HeaderLen], uint32(n))
}

// Append appends the frames of p on stream to dst, split at MaxPayload;
// an empty p is one empty frame (stdin's end).
func Append(dst []byte, stream byte, p []byte) []byte {
	for {
		n := min(len(p), MaxPayload)
		var h [HeaderLen]byte
		PutHeader(h[:], stream, n)
		dst = append(append(dst, h[:]...), p[:n]...)
		p = p[n:]
		if len(p) == 0 {
			return dst
		}
	}
}

// ExitPayload is the payload of an exit frame.
func ExitPayload(code int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(int32(code))) }

// ExitCode reads an exit frame's payload.
func ExitCode(p []byte) (int, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("execwire: exit frame of %d bytes, want 4", len(p))
	}
	return int(int32(binary.BigEndian.Uint32(p))), nil
}

// Reader reads frames.
type Reader struct {
	r   io.Reader
	h   [HeaderLen]byte
	buf []byte
}

// NewReader reads frames from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next reads the next frame. Its payload is valid until the next call.
// The end of r between frames is io.EOF; within one, io.ErrUnexpectedEOF.
func (fr *Reader) Next() (stream byte, payload []byte, err error) {
	if _, err := io.ReadFull(fr.r, fr.h[:]); err != nil {
		return 0, nil, err
	}
	stream = fr.h[0]
	if stream > Exit {
		return 0, nil, &StreamError{Stream: stream}
	}
	n := binary.BigEndian.Uint32(fr.h[1:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, n, MaxPayload)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return stream, p, nil
}
