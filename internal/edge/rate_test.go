package edge

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A rate outside what the limiter can count (one a year to one a
// nanosecond) is an error of the route, not a panic of the gateway that
// builds it on a reload.
func TestCompileRefusesARateTheLimiterCannotCount(t *testing.T) {
	for _, rate := range []string{"2000000000/s", "0.00001/h"} {
		t.Run(rate, func(t *testing.T) {
			r := config.Route{Match: "/", RateLimit: &config.RequestRateLimit{Rate: rate, Burst: 1}}
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Compile panicked: %v", p)
				}
			}()
			if _, err := Compile(config.NewApp("web"), &r); err == nil {
				t.Errorf("Compile took rate %q", rate)
			}
		})
	}
}

// A client's bucket is its IPv4 address, or its IPv6 address's prefix:
// every address of one /64 shares a bucket, and an IPv4 client written
// as IPv6 (IPv4-mapped, or by a NAT64 translator, under whose prefix
// every IPv4 client would share one /64) is its IPv4 address.
func TestClientKeyTakesAnIPv6ClientsPrefix(t *testing.T) {
	tests := []struct {
		addr   string
		v6Bits int
		want   string
	}{
		{"192.0.2.7", 64, "192.0.2.7"},
		{"::ffff:192.0.2.7", 64, "192.0.2.7"},
		{"64:ff9b::192.0.2.7", 64, "192.0.2.7"},
		{"64:ff9b::c633:6407", 64, "198.51.100.7"},
		{"64:ff9b::1:c000:207", 64, "64:ff9b::/64"}, // not the /96: an IPv6 client
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:a5b3:77ff:fe01:9c2d", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", 64, "2001:db8:1:3::/64"},
		{"2001:db8:1:2:a5b3::1", 56, "2001:db8:1::/56"},
		{"2001:db8:1:2::1", 128, "2001:db8:1:2::1/128"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"::1", 64, "::/64"},
		{"not an address", 64, "not an address"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := clientKey(tt.addr, tt.v6Bits); got != tt.want {
				t.Errorf("clientKey(%q, %d) = %q, want %q", tt.addr, tt.v6Bits, got, tt.want)
			}
		})
	}
}
