package front

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// The socket under TLS follows the record framing across reads that cut
// headers and bodies anywhere.
func TestTLSSocketFollowsRecords(t *testing.T) {
	// Two records: 3 body bytes, then 258 (a length over a byte).
	one := []byte{23, 3, 3, 0, 3, 'a', 'b', 'c'}
	two := append([]byte{23, 3, 3, 1, 2}, make([]byte, 258)...)
	stream := append(append([]byte(nil), one...), two...)
	tests := []struct {
		name string
		cuts []int // read boundaries in stream
		// mid is midRecord after each read.
		mid []bool
	}{
		{"whole records", []int{len(one), len(stream)}, []bool{false, false}},
		{"header cut", []int{2, len(one), len(one) + 4, len(stream)}, []bool{true, false, true, false}},
		{"body cut", []int{6, len(one) + 100, len(stream)}, []bool{true, true, false}},
		{"both in one read", []int{len(stream)}, []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s tlsSocket
			from := 0
			for i, to := range tt.cuts {
				s.follow(stream[from:to])
				from = to
				if got := s.mid.Load(); got != tt.mid[i] {
					t.Errorf("after reading to %d: mid-record %v, want %v", to, got, tt.mid[i])
				}
			}
		})
	}
}

// Following the record framing read by read says what a walk over the
// whole stream says, wherever the reads cut it.
func FuzzTLSSocketFollowsRecords(f *testing.F) {
	f.Add([]byte{23, 3, 3, 0, 3, 'a', 'b', 'c', 23, 3, 3, 0, 0}, []byte{2, 5})
	f.Add([]byte{22, 3, 1, 1, 0}, []byte{1, 1, 1})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		var s tlsSocket
		from := 0
		for _, c := range cuts {
			to := min(from+int(c), len(stream))
			s.follow(stream[from:to])
			from = to
		}
		s.follow(stream[from:])
		if got, want := s.mid.Load(), endsMidRecord(stream); got != want {
			t.Errorf("mid-record %v, want %v, for % x cut at %v", got, want, stream, cuts)
		}
	})
}

// endsMidRecord walks stream record by record: whether it ends inside a
// header or a body.
func endsMidRecord(stream []byte) bool {
	for len(stream) > 0 {
		if len(stream) < recordHeader {
			return true
		}
		n := recordHeader + (int(stream[3])<<8 | int(stream[4]))
		if len(stream) < n {
			return true
		}
		stream = stream[n:]
	}
	return false
}

// Every write through a tlsSocket ends within its bound: a deadline set
// for it while still ahead, else send (and half again) from when it
// starts, so a deadline long past does not fail a write begun now; a
// deadline set in the past stops writes at once.
func TestTLSSocketBoundsEveryWrite(t *testing.T) {
	t.Parallel()
	const send = time.Second
	for _, tc := range []struct {
		name string
		// before acts on the socket before the write.
		before func(s *tlsSocket)
		// reads: the peer takes what is written; else it never reads.
		reads bool
		// within bounds how long the write may take, fail whether it
		// fails.
		within time.Duration
		fail   bool
	}{
		{"no deadline, a peer that never reads", func(s *tlsSocket) {}, false, 5 * send, true},
		{"a deadline ahead stands", func(s *tlsSocket) { s.SetWriteDeadline(time.Now().Add(send / 10)) }, false, send, true},
		{"a deadline long past is not this write's", func(s *tlsSocket) {
			s.SetWriteDeadline(time.Now().Add(time.Millisecond))
			time.Sleep(10 * time.Millisecond) // it passes
		}, true, 5 * time.Second, false},
		{"a deadline set in the past stops it", func(s *tlsSocket) { s.SetWriteDeadline(time.Unix(1, 0)) }, true, send / 2, true},
		{"SetDeadline in the past stops it too", func(s *tlsSocket) { s.SetDeadline(time.Now().Add(-time.Second)) }, true, send / 2, true},
		{"cleared, it is bounded again", func(s *tlsSocket) {
			s.SetWriteDeadline(time.Unix(1, 0))
			s.SetWriteDeadline(time.Time{})
		}, false, 5 * send, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			if tc.reads {
				go io.Copy(io.Discard, b)
			}
			s := &tlsSocket{Conn: a, send: send}
			tc.before(s)
			start := time.Now()
			_, err := s.Write([]byte("record"))
			if took := time.Since(start); took > tc.within {
				t.Errorf("the write took %v, want within %v", took, tc.within)
			}
			if fail := err != nil; fail != tc.fail {
				t.Errorf("write error %v, want failure %v", err, tc.fail)
			}
			if tc.fail && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("write error %v, want a deadline's", err)
			}
		})
	}
}
