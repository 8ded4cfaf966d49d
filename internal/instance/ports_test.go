package instance

import (
	"net"
	"strconv"
	"testing"
	"time"
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
