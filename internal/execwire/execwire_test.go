package execwire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type frame struct {
	Stream  byte
	Payload []byte
}

// decodeAll reads frames until the input ends.
func decodeAll(b []byte) ([]frame, error) {
	fr := NewReader(bytes.NewReader(b))
	var out []frame
	for {
		s, p, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, frame{s, append([]byte{}, p...)})
	}
}

// What Append writes, Reader reads back: the same streams and the same
// bytes, a payload longer than MaxPayload as several frames.
func FuzzFramesRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte(""), byte(1), byte(2))
	f.Add(bytes.Repeat([]byte("x"), MaxPayload+3), []byte("err"), byte(0), byte(2))
	f.Fuzz(func(t *testing.T, a, b []byte, sa, sb byte) {
		sa, sb = sa%(Exit+1), sb%(Exit+1)
		wire := Append(Append(nil, sa, a), sb, b)
		got, err := decodeAll(wire)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		join := func(s byte, fs []frame) []byte {
			out := []byte{}
			for _, f := range fs {
				if f.Stream != s {
					t.Fatalf("frame of stream %d among %d's", f.Stream, s)
				}
				if len(f.Payload) > MaxPayload {
					t.Fatalf("frame of %d bytes", len(f.Payload))
				}
				out = append(out, f.Payload...)
			}
			return out
		}
		na := len(decodeMust(t, Append(nil, sa, a)))
		if d := cmp.Diff(append([]byte{}, a...), join(sa, got[:na])); d != "" {
			t.Errorf("first payload (-sent +read):\n%s", d)
		}
		if d := cmp.Diff(append([]byte{}, b...), join(sb, got[na:])); d != "" {
			t.Errorf("second payload (-sent +read):\n%s", d)
		}
	})
}

func decodeMust(t *testing.T, b []byte) []frame {
	t.Helper()
	fs, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// Bytes no encoder wrote are refused with the reason, and a length
// beyond the limit is refused before a byte is allocated for it or read.
func TestFramesRefuseMalformedBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		wire  []byte
		check func(error) bool
	}{
		{"truncated head", []byte{1, 0, 0}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"truncated payload", []byte{1, 0, 0, 0, 5, 'a', 'b'}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"huge length", []byte{1, 0xff, 0xff, 0xff, 0xff, 'a'}, func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		{"unknown stream", []byte{9, 0, 0, 0, 0}, func(err error) bool { return errors.As(err, new(*StreamError)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(tc.wire)
			fr := NewReader(r)
			_, _, err := fr.Next()
			if !tc.check(err) {
				t.Fatalf("Next = %v", err)
			}
			if cap(fr.buf) > len(tc.wire) {
				t.Errorf("allocated %d bytes for a frame of %d bytes on the wire", cap(fr.buf), len(tc.wire))
			}
			if errors.Is(err, ErrTooLarge) && r.Len() != len(tc.wire)-HeaderLen {
				t.Errorf("read %d bytes past the head of a refused frame", len(tc.wire)-HeaderLen-r.Len())
			}
		})
	}
	t.Run("one past the limit", func(t *testing.T) {
		var h [HeaderLen]byte
		PutHeader(h[:], Stdout, MaxPayload+1)
		fr := NewReader(bytes.NewReader(h[:]))
		if _, _, err := fr.Next(); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Next = %v, want ErrTooLarge", err)
		}
		if fr.buf != nil {
			t.Errorf("allocated %d bytes", cap(fr.buf))
		}
	})
}

// An exit code, a signal's 128+N among them, survives its frame.
func TestExitCodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 1, 3, 130, 137, 255, -1} {
		got, err := ExitCode(ExitPayload(code))
		if err != nil || got != code {
			t.Errorf("ExitCode(ExitPayload(%d)) = %d, %v", code, got, err)
		}
	}
	if _, err := ExitCode([]byte{1}); err == nil {
		t.Error("a 1-byte exit payload was accepted")
	}
}
