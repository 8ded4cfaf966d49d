package procstat

import "testing"

// A tree listens on a port whatever the address it bound.
func TestListensOn(t *testing.T) {
	s := &Stats{Listening: []string{"127.0.0.1:8000", "[::1]:9229", "not an address"}}
	for _, tc := range []struct {
		port int
		want bool
	}{{8000, true}, {9229, true}, {3000, false}, {80, false}} {
		if got := s.ListensOn(tc.port); got != tc.want {
			t.Errorf("ListensOn(%d) = %v, want %v", tc.port, got, tc.want)
		}
	}
}
