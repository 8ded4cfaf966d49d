package procdump

import (
	"net/netip"
	"testing"
)

// TestParseProcAddrReadsTheKernelsHex reads /proc/net/tcp{,6} addresses,
// whose words are in host (little-endian) order.
func TestParseProcAddrReadsTheKernelsHex(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" for refused
	}{
		{"0100007F:2405", "127.0.0.1:9221"},
		{"00000000:1F90", "0.0.0.0:8080"},
		{"00000000000000000000000001000000:1F90", "[::1]:8080"},
		{"0000000000000000FFFF00000100007F:0050", "127.0.0.1:80"},
		{"0100007F", ""},
		{"0100007G:0050", ""},
		{"0100007F:XYZ", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseProcAddr(tc.in)
			if tc.want == "" {
				if ok {
					t.Errorf("parseProcAddr(%q) = %v, want refused", tc.in, got)
				}
				return
			}
			if want := netip.MustParseAddrPort(tc.want); !ok || got != want {
				t.Errorf("parseProcAddr(%q) = %v, %v; want %v", tc.in, got, ok, want)
			}
		})
	}
}

// TestDialableReachesWildcardsOnLoopback: a listener on every address is
// reached on loopback.
func TestDialableReachesWildcardsOnLoopback(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:9229":   "127.0.0.1:9229",
		"[::]:9229":      "[::1]:9229",
		"10.1.2.3:9229":  "10.1.2.3:9229",
		"127.0.0.1:9229": "127.0.0.1:9229",
	} {
		if got := dialable(netip.MustParseAddrPort(in)); got != want {
			t.Errorf("dialable(%s) = %s, want %s", in, got, want)
		}
	}
}
