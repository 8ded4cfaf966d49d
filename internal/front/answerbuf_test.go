package front

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// limitedSink takes at most room bytes, then fails every write.
type limitedSink struct {
	got  bytes.Buffer
	room int
}

var errSinkFull = errors.New("sink full")

func (s *limitedSink) Write(p []byte) (int, error) {
	if len(p) > s.room {
		n := s.room
		s.got.Write(p[:n])
		s.room = 0
		return n, errSinkFull
	}
	s.room -= len(p)
	return s.got.Write(p)
}

// The answer buffer sends what bufio.Writer of the same size would, in
// any order of writes, flushes and failures: the same bytes reach the
// connection, and each call reports the same count and error.
func FuzzAnswerBufMatchesBufio(f *testing.F) {
	f.Add([]byte{0, 10, 1, 200, 3, 2, 5000 >> 8, 4}, uint16(1<<15))
	f.Add([]byte{1, 255, 1, 255, 1, 255, 1, 255, 1, 255, 1, 255, 1, 255, 1, 255, 1, 255, 3}, uint16(3000))
	f.Add([]byte{2, 7, 0, 100, 3, 0, 3, 3}, uint16(0))
	f.Fuzz(func(t *testing.T, ops []byte, room uint16) {
		want := &limitedSink{room: int(room)}
		got := &limitedSink{room: int(room)}
		bw := bufio.NewWriterSize(want, writeSize)
		var ab answerBuf
		ab.take(got)
		defer ab.give()
		for i := 0; i+1 < len(ops); i += 2 {
			// A length up to 16 KiB: past the buffer, and within it.
			n := int(ops[i+1]) * 64
			p := bytes.Repeat([]byte{'a' + byte(i%26)}, n)
			var wn, gn int
			var werr, gerr error
			switch ops[i] % 4 {
			case 0:
				wn, werr = bw.Write(p)
				gn, gerr = ab.Write(p)
			case 1:
				wn, werr = bw.WriteString(string(p))
				gn, gerr = ab.WriteString(string(p))
			case 2:
				werr, gerr = bw.WriteByte(byte(n)), ab.WriteByte(byte(n))
			case 3:
				werr, gerr = bw.Flush(), ab.Flush()
			}
			if wn != gn || !errors.Is(gerr, werr) || (werr == nil) != (gerr == nil) {
				t.Fatalf("op %d (%d, %d bytes): answerBuf %d, %v; bufio %d, %v", i/2, ops[i]%4, n, gn, gerr, wn, werr)
			}
			if ab.Buffered() != bw.Buffered() {
				t.Fatalf("op %d: answerBuf holds %d bytes, bufio %d", i/2, ab.Buffered(), bw.Buffered())
			}
		}
		werr, gerr := bw.Flush(), ab.Flush()
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("last flush: answerBuf %v, bufio %v", gerr, werr)
		}
		if !bytes.Equal(got.got.Bytes(), want.got.Bytes()) {
			t.Fatalf("sent %d bytes; bufio sent %d, and they differ", got.got.Len(), want.got.Len())
		}
	})
}
