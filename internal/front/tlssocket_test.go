package front

import (
	"testing"
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
