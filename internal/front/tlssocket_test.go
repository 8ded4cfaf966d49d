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
// starts, so that neither a deadline long past nor one of its own nearly
// spent cuts a write begun now; a deadline already past when it is set
// stops writes at once.
func TestTLSSocketBoundsEveryWrite(t *testing.T) {
	t.Parallel()
	const send = time.Second
	for _, tc := range []struct {
		name string
		// before acts on the socket before the write.
		before func(t *testing.T, s *tlsSocket, peer net.Conn)
		// readAfter: the peer starts taking what is written that long
		// after the write begins; 0: it never does.
		readAfter time.Duration
		// within bounds how long the write may take, fail whether it
		// fails.
		within time.Duration
		fail   bool
	}{
		{"no deadline, a peer that never reads", func(*testing.T, *tlsSocket, net.Conn) {}, 0, 5 * send, true},
		{"a deadline set ahead stands", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			// Ahead still when the write starts, on a busy machine too;
			// the write's own bound would be send and a half.
			s.SetWriteDeadline(time.Now().Add(send / 2))
		}, 0, send + send/4, true},
		{"a deadline long past is not this write's", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			s.SetWriteDeadline(time.Now().Add(send / 20))
			time.Sleep(send / 10) // it passes
		}, send / 10, 5 * send, false},
		{"its own deadline nearly spent is renewed", func(t *testing.T, s *tlsSocket, peer net.Conn) {
			go peer.Read(make([]byte, 64))
			if _, err := s.Write([]byte("first")); err != nil {
				t.Fatal(err)
			}
			// Less than send is left of the first write's deadline, less
			// than readAfter.
			time.Sleep(send * 9 / 10)
		}, send, 5 * send, false},
		{"a deadline set in the past stops it", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			s.SetWriteDeadline(time.Unix(1, 0))
		}, send / 10, send / 2, true},
		{"SetDeadline in the past stops it too", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			s.SetDeadline(time.Now().Add(-time.Second))
		}, send / 10, send / 2, true},
		{"cleared, it is bounded again", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			s.SetWriteDeadline(time.Unix(1, 0))
			s.SetWriteDeadline(time.Time{})
		}, 0, 5 * send, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			s := &tlsSocket{Conn: a, send: send}
			tc.before(t, s, b)
			if tc.readAfter > 0 {
				time.AfterFunc(tc.readAfter, func() { io.Copy(io.Discard, b) })
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := s.Write([]byte("record"))
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(tc.within):
				t.Fatalf("the write did not end within %v", tc.within)
			}
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
