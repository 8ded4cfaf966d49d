package instance

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Ports come from below the kernel's ephemeral range, where outgoing
// connections cannot take them between the check and the app's bind.
func TestPortsComeFromBelowTheEphemeralRange(t *testing.T) {
	p := NewPorts()
	if p.high < p.low {
		t.Skipf("the ephemeral range starts at %d: no room below it", p.high+1)
	}
	seen := map[int]bool{}
	for range 50 {
		port, err := p.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		if port < portLow || port >= ephemeralLow() {
			t.Fatalf("Alloc = %d, want one in [%d, %d)", port, portLow, ephemeralLow())
		}
		if seen[port] {
			t.Fatalf("Alloc handed out %d twice within the quarantine", port)
		}
		seen[port] = true
	}
}

// A port something listens on is passed over, and with no room below
// the ephemeral range the kernel picks.
func TestPortsSkipTakenPortsAndFallBackToTheKernel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	if !bindable(taken + 1) {
		t.Skipf("port %d, next to the one taken, is not free either", taken+1)
	}
	tests := []struct {
		name      string
		low, high int
		picks     []int // offsets from low the random source returns in turn
		want      func(int) bool
	}{
		{"taken port passed over", taken, taken + 1, []int{0, 0, 1}, func(p int) bool { return p == taken+1 }},
		{"no room below the ephemeral range", 20000, 19999, nil, func(p int) bool { return p >= ephemeralLow() }},
		{"every pick taken", taken, taken, []int{0}, func(p int) bool { return p != taken }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := 0
			p := &Ports{recent: map[int]time.Time{}, low: tc.low, high: tc.high, intn: func(int) int {
				v := tc.picks[min(i, len(tc.picks)-1)]
				i++
				return v
			}}
			port, err := p.Alloc()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(port) {
				t.Errorf("Alloc = %d (taken: %d)", port, taken)
			}
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err != nil {
				t.Errorf("Alloc = %d, not bindable: %v", port, err)
			} else {
				l.Close()
			}
		})
	}
}

// An app told its PORT binds it as it likes: node's app.listen(PORT) and
// Go's ":"+PORT take every address, IPv6 and IPv4 (::), puma 0.0.0.0, a
// Python server 127.0.0.1. A port another program holds on any address
// of the host is one such an app cannot bind, so it is not free, even
// when 127.0.0.1 itself is.
func TestPortHeldOnAnotherAddressIsNotFree(t *testing.T) {
	tests := []struct {
		name    string
		network string
		addr    string
	}{
		{"ipv6 loopback", "tcp6", "[::1]:0"},
		{"another ipv4 loopback address", "tcp4", "127.0.0.2:0"},
		{"ipv6 wildcard only", "tcp6", "[::]:0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lc := net.ListenConfig{}
			if tc.addr == "[::]:0" {
				// IPV6_V6ONLY: IPv4's 127.0.0.1 stays free.
				lc.Control = func(network, address string, c syscall.RawConn) error {
					var serr error
					c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1) })
					return serr
				}
			}
			l, err := lc.Listen(context.Background(), tc.network, tc.addr)
			if err != nil {
				t.Skipf("cannot listen on %s here: %v", tc.addr, err)
			}
			defer l.Close()
			port := l.Addr().(*net.TCPAddr).Port
			if wild, err := net.Listen("tcp", ":"+strconv.Itoa(port)); err == nil {
				wild.Close()
				t.Skipf("port %d can still be bound on every address here", port)
			}
			if bindable(port) {
				t.Errorf("bindable(%d) = true while %s holds it: an app that listens on :%d cannot bind it", port, l.Addr(), port)
			}
		})
	}
}
