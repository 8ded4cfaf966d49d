package trust

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func proxies(t *testing.T, ranges ...string) *Proxies {
	t.Helper()
	var ps []netip.Prefix
	for _, r := range ranges {
		ps = append(ps, netip.MustParsePrefix(r))
	}
	return New(ps)
}

func TestPeer(t *testing.T) {
	p := proxies(t, "10.0.0.0/8", "192.0.2.10/32", "2001:db8::/32")
	tests := []struct {
		host string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"192.0.2.10", true},
		{"192.0.2.11", false},
		{"::ffff:10.0.0.1", true}, // an IPv4 peer of a dual-stack listener
		{"2001:db8::5", true},
		{"2001:db8::5%eth0", true},
		{"2001:db9::5", false},
		{"", false},
		{"10.0.0.1:80", false}, // a port is the caller's to remove
		{"garbage", false},
	}
	for _, tt := range tests {
		if got := p.Peer(tt.host); got != tt.want {
			t.Errorf("Peer(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	var none *Proxies
	if none.Peer("10.0.0.1") || New(nil) != nil {
		t.Error("no trusted_proxies trusts someone")
	}
}

// Client reads the chain right to left and stops at the first address
// that is not a trusted proxy; what lies to its left, or to the left of
// anything that is not an address, is the client's own writing.
func TestClient(t *testing.T) {
	p := proxies(t, "10.0.0.0/8", "2001:db8::/32")
	const peer = "10.0.0.1"
	tests := []struct {
		name string
		xff  []string
		want string
	}{
		{"no header", nil, peer},
		{"one client", []string{"203.0.113.7"}, "203.0.113.7"},
		{"forged entries on the left", []string{"1.1.1.1, 2.2.2.2, 203.0.113.7"}, "203.0.113.7"},
		{"trusted hops skipped", []string{"203.0.113.7, 10.0.0.9, 10.0.0.8"}, "203.0.113.7"},
		{"field lines read as one list, in order", []string{"6.6.6.6, 203.0.113.7", "10.0.0.9"}, "203.0.113.7"},
		{"a later line's client wins", []string{"203.0.113.7", "198.51.100.2"}, "198.51.100.2"},
		{"every entry trusted: the leftmost", []string{"10.0.0.5, 10.0.0.9"}, "10.0.0.5"},
		{"garbage stops the walk", []string{"203.0.113.7, unknown, 10.0.0.9"}, "10.0.0.9"},
		{"garbage first", []string{"unknown"}, peer},
		{"empty entry stops the walk", []string{"203.0.113.7,,10.0.0.9"}, "10.0.0.9"},
		{"blank line", []string{""}, peer},
		{"ports", []string{"203.0.113.7:5555, 10.0.0.9:80"}, "203.0.113.7"},
		{"bracketed IPv6 with port", []string{"[2001:db9::1]:443"}, "2001:db9::1"},
		{"bracketed IPv6", []string{"[2001:db9::1]"}, "2001:db9::1"},
		{"bare IPv6", []string{"2001:db9::1, 2001:db8::2"}, "2001:db9::1"},
		{"canonical form", []string{"2001:DB9:0::1"}, "2001:db9::1"},
		{"IPv4-mapped", []string{"::ffff:203.0.113.7, ::ffff:10.0.0.9"}, "203.0.113.7"},
		{"tabs and spaces", []string{" \t203.0.113.7\t , 10.0.0.9 "}, "203.0.113.7"},
		{"bad port", []string{"203.0.113.7:http"}, peer},
		{"unclosed bracket", []string{"[2001:db9::1"}, peer},
		{"junk after bracket", []string{"[2001:db9::1]x"}, peer},
		{"zone dropped", []string{"fe80::1%eth0"}, "fe80::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Client(tt.xff, peer); got != tt.want {
				t.Errorf("Client(%q) = %q, want %q", tt.xff, got, tt.want)
			}
		})
	}
}

func TestAppendFor(t *testing.T) {
	tests := []struct {
		prior []string
		want  string
	}{
		{nil, "10.0.0.1"},
		{[]string{"203.0.113.7"}, "203.0.113.7, 10.0.0.1"},
		{[]string{"1.1.1.1, 2.2.2.2", "3.3.3.3"}, "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1"},
		{[]string{"", " ", "3.3.3.3 "}, "3.3.3.3, 10.0.0.1"},
	}
	for _, tt := range tests {
		if got := AppendFor(tt.prior, "10.0.0.1"); got != tt.want {
			t.Errorf("AppendFor(%q) = %q, want %q", tt.prior, got, tt.want)
		}
	}
}

func TestValidProtoAndHost(t *testing.T) {
	protos := map[string]bool{"http": true, "https": true, "HTTPS": false, "https, http": false, "": false, "ftp": false, " https": false}
	got := map[string]bool{}
	for v := range protos {
		got[v] = ValidProto([]string{v})
	}
	if diff := cmp.Diff(protos, got); diff != "" {
		t.Errorf("ValidProto (-want +got):\n%s", diff)
	}
	if ValidProto(nil) || ValidProto([]string{"https", "https"}) {
		t.Error("ValidProto accepts no line or two lines")
	}
	hosts := map[string]bool{"example.com": true, "example.com:8443": true, "[2001:db8::1]:443": true, "10.0.0.1": true,
		"xn--bcher-kva.example": true, "a.example, b.example": false, "a b": false, "a/b": false, "a@b": false, "": false,
		"a\x00": false}
	got = map[string]bool{}
	for v := range hosts {
		got[v] = ValidHost([]string{v})
	}
	if diff := cmp.Diff(hosts, got); diff != "" {
		t.Errorf("ValidHost (-want +got):\n%s", diff)
	}
	if ValidHost([]string{"a", "b"}) {
		t.Error("ValidHost accepts two lines")
	}
}

// The checks of every request allocate nothing when the peer is not a
// trusted proxy.
func TestPeerAllocs(t *testing.T) {
	p := proxies(t, "10.0.0.0/8")
	if n := testing.AllocsPerRun(100, func() { p.Peer("203.0.113.7") }); n != 0 {
		t.Errorf("Peer allocates %v times", n)
	}
}
