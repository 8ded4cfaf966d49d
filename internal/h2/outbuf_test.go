package h2

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeLog records the Writes an outBuffer makes.
type writeLog struct {
	writes []string
	err    error
}

func (w *writeLog) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// The write buffer gathers frames until a flush, writes out what no
// longer fits, passes a whole buffer's worth as it is, and holds no
// buffer between flushes.
func TestOutBufferGathersUntilFlush(t *testing.T) {
	a := strings.Repeat("a", 100)
	big := strings.Repeat("b", writeBuffer)
	near := strings.Repeat("n", writeBuffer-50)
	tests := []struct {
		name  string
		steps []string // a Write each; "" a Flush
		want  []string // the Writes that reached the connection
	}{
		{"small writes share one", []string{a, a, a, ""}, []string{a + a + a}},
		{"nothing written, nothing flushed", []string{"", ""}, nil},
		{"a full buffer goes before what does not fit", []string{near, a, ""}, []string{near, a}},
		{"a whole buffer's worth passes as it is", []string{big, a, ""}, []string{big, a}},
		{"after what is buffered", []string{a, big, ""}, []string{a, big}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pool sync.Pool
			w := &writeLog{}
			b := outBuffer{w: w, pool: &pool}
			for _, s := range tt.steps {
				var err error
				if s == "" {
					err = b.Flush()
				} else {
					_, err = b.Write([]byte(s))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(lengths(tt.want), lengths(w.writes)); diff != "" {
				t.Errorf("lengths of the writes (-want +got):\n%s", diff)
			} else if !cmp.Equal(tt.want, w.writes) {
				t.Errorf("the writes are as long as wanted but differ in content")
			}
			if b.Buffered() != 0 || b.bp != nil {
				t.Errorf("after the flush: %d buffered, buffer held %v", b.Buffered(), b.bp != nil)
			}
		})
	}
}

// A flush that fails drops what was buffered and gives the buffer back
// empty: the next connection to take it starts clean.
func TestOutBufferFailedFlushGivesBackAnEmptyBuffer(t *testing.T) {
	var pool sync.Pool
	broken := errors.New("broken")
	b := outBuffer{w: &writeLog{err: broken}, pool: &pool}
	b.Write([]byte("lost"))
	if err := b.Flush(); !errors.Is(err, broken) {
		t.Fatalf("flush: %v, want %v", err, broken)
	}
	w := &writeLog{}
	next := outBuffer{w: w, pool: &pool}
	next.Write([]byte("mine"))
	next.Flush()
	if got := strings.Join(w.writes, ""); got != "mine" {
		t.Errorf("the next connection wrote %q, want %q", got, "mine")
	}
}

func lengths(ss []string) []int {
	var n []int
	for _, s := range ss {
		n = append(n, len(s))
	}
	return n
}
