package spool

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// A source that breaks is not a body that ended: Fill returns its error,
// whether it came alone or with the last bytes read, and io.ErrUnexpectedEOF
// (a body of known length cut short) among them. Only io.EOF ends a body.
func TestFillReturnsTheSourcesError(t *testing.T) {
	errBroke := errors.New("broke")
	for _, tc := range []struct {
		name string
		src  io.Reader
		hint int64
		want error
	}{
		{"cut short, the error alone", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrUnexpectedEOF)), 10, io.ErrUnexpectedEOF},
		{"cut short, unknown length", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrUnexpectedEOF)), -1, io.ErrUnexpectedEOF},
		{"an error with the last bytes", &dataThenErr{data: []byte("abc"), err: errBroke}, 10, errBroke},
		{"an unexpected EOF with the last bytes", &dataThenErr{data: []byte("abc"), err: io.ErrUnexpectedEOF}, 10, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Spool
			s.Init(t.TempDir(), NewBudget(1<<20), NewBudget(1<<20), nil)
			defer s.Close()
			ended, err := s.Fill(tc.src, 100, tc.hint)
			if ended || !errors.Is(err, tc.want) {
				t.Fatalf("Fill = %v, %v; want false, %v", ended, err, tc.want)
			}
			var got bytes.Buffer
			s.WriteTo(&got)
			if got.String() != "abc" {
				t.Errorf("held %q, want the bytes read before the error", got.String())
			}
		})
	}
}

// dataThenErr returns data and err in one read, then io.EOF, as the
// gateway's response body does once it has let the app's connection go:
// an error not taken with the bytes it came with is lost.
type dataThenErr struct {
	data []byte
	err  error
	told bool
}

func (r *dataThenErr) Read(p []byte) (int, error) {
	if r.told {
		return 0, io.EOF
	}
	r.told = true
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, r.err
}
