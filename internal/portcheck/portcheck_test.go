package portcheck

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The address a listener is reached on: its own, or loopback of its
// family for a wildcard one.
func TestDialableListener(t *testing.T) {
	type result struct {
		Addr string
		OK   bool
	}
	tests := []struct {
		listening string
		want      result
	}{
		{"127.0.0.1:8000", result{"127.0.0.1:8000", true}},
		{"0.0.0.0:8000", result{"127.0.0.1:8000", true}},
		{"[::]:8000", result{"[::1]:8000", true}},
		{"[::1]:3000", result{"[::1]:3000", true}},
		{"10.1.2.3:9000", result{"10.1.2.3:9000", true}},
		{"not an address", result{}},
	}
	for _, tt := range tests {
		t.Run(tt.listening, func(t *testing.T) {
			var got result
			got.Addr, got.OK = dialable(tt.listening)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("dialable(%q) (-want +got):\n%s", tt.listening, diff)
			}
		})
	}
}
