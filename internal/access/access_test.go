package access

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type decision struct {
	OK      bool
	Matched string
}

func TestCheck(t *testing.T) {
	type probe struct {
		ip   string
		want decision
	}
	tests := []struct {
		name        string
		allow, deny []string
		probes      []probe
	}{
		{"no rules allow everything", nil, nil, []probe{
			{"10.0.0.1", decision{true, ""}},
			{"::1", decision{true, ""}},
		}},
		{"deny only", nil, []string{"10.0.0.0/8", "192.168.1.5"}, []probe{
			{"10.1.2.3", decision{false, "deny 10.0.0.0/8"}},
			{"9.255.255.255", decision{true, ""}},
			{"11.0.0.0", decision{true, ""}},
			{"192.168.1.5", decision{false, "deny 192.168.1.5"}},
			{"192.168.1.4", decision{true, ""}},
			{"192.168.1.6", decision{true, ""}},
		}},
		{"allow only", []string{"10.0.0.0/8", "2001:db8::/32"}, nil, []probe{
			{"10.255.255.255", decision{true, "allow 10.0.0.0/8"}},
			{"172.16.0.1", decision{false, NotInAllow}},
			{"2001:db8:1::5", decision{true, "allow 2001:db8::/32"}},
			{"2001:db9::", decision{false, NotInAllow}},
		}},
		{"deny wins over a more specific allow", []string{"10.1.0.0/16"}, []string{"10.0.0.0/8"}, []probe{
			{"10.1.2.3", decision{false, "deny 10.0.0.0/8"}},
			{"10.2.0.0", decision{false, "deny 10.0.0.0/8"}},
			{"11.0.0.0", decision{false, NotInAllow}},
		}},
		{"deny carves a hole in an allow", []string{"10.0.0.0/8"}, []string{"10.6.0.0/16"}, []probe{
			{"10.5.255.255", decision{true, "allow 10.0.0.0/8"}},
			{"10.6.0.0", decision{false, "deny 10.6.0.0/16"}},
			{"10.6.255.255", decision{false, "deny 10.6.0.0/16"}},
			{"10.7.0.0", decision{true, "allow 10.0.0.0/8"}},
		}},
		{"the same entry in both lists denies", []string{"::1"}, []string{"::1"}, []probe{
			{"::1", decision{false, "deny ::1"}},
		}},
		{"overlapping entries name the most specific", []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "10.200.0.0/16"}, nil, []probe{
			{"10.0.0.0", decision{true, "allow 10.0.0.0/8"}},
			{"10.1.0.0", decision{true, "allow 10.1.0.0/16"}},
			{"10.1.2.2", decision{true, "allow 10.1.2.0/24"}},
			{"10.1.2.3", decision{true, "allow 10.1.2.3"}},
			{"10.1.2.4", decision{true, "allow 10.1.2.0/24"}},
			{"10.1.3.0", decision{true, "allow 10.1.0.0/16"}},
			{"10.2.0.0", decision{true, "allow 10.0.0.0/8"}},
			{"10.200.255.255", decision{true, "allow 10.200.0.0/16"}},
			{"10.201.0.0", decision{true, "allow 10.0.0.0/8"}},
			{"10.255.255.255", decision{true, "allow 10.0.0.0/8"}},
			{"11.0.0.0", decision{false, NotInAllow}},
		}},
		{"order of entries does not matter", []string{"10.1.2.3", "10.0.0.0/8", "10.1.0.0/16"}, nil, []probe{
			{"10.1.2.3", decision{true, "allow 10.1.2.3"}},
			{"10.1.2.4", decision{true, "allow 10.1.0.0/16"}},
			{"10.0.0.1", decision{true, "allow 10.0.0.0/8"}},
		}},
		{"nested ranges ending together", []string{"10.0.0.0/8", "10.255.0.0/16", "10.255.255.255"}, nil, []probe{
			{"10.254.255.255", decision{true, "allow 10.0.0.0/8"}},
			{"10.255.255.254", decision{true, "allow 10.255.0.0/16"}},
			{"10.255.255.255", decision{true, "allow 10.255.255.255"}},
			{"11.0.0.0", decision{false, NotInAllow}},
		}},
		{"a range listed twice is named by its first listing", []string{"10.0.0.0/8", "::ffff:10.0.0.0/104"}, nil, []probe{
			{"10.0.0.1", decision{true, "allow 10.0.0.0/8"}},
		}},
		{"/0 of each family", []string{"0.0.0.0/0"}, []string{"::/0"}, []probe{
			{"0.0.0.0", decision{true, "allow 0.0.0.0/0"}},
			{"255.255.255.255", decision{true, "allow 0.0.0.0/0"}},
			{"::", decision{false, "deny ::/0"}},
			{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", decision{false, "deny ::/0"}},
			{"::ffff:1.2.3.4", decision{true, "allow 0.0.0.0/0"}},
		}},
		{"single addresses at the ends of a family", []string{"0.0.0.0", "255.255.255.255/32", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"}, nil, []probe{
			{"0.0.0.0", decision{true, "allow 0.0.0.0"}},
			{"0.0.0.1", decision{false, NotInAllow}},
			{"255.255.255.255", decision{true, "allow 255.255.255.255"}},
			{"255.255.255.254", decision{false, NotInAllow}},
			{"::", decision{true, "allow ::"}},
			{"::1", decision{false, NotInAllow}},
			{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", decision{true, "allow ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
			{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", decision{false, NotInAllow}},
		}},
		{"IPv6 ranges across the 64-bit halves", []string{"2001:db8::/63", "2001:db8:0:1:8000::/65"}, nil, []probe{
			{"2001:db8::", decision{true, "allow 2001:db8::/63"}},
			{"2001:db8:0:1:7fff:ffff:ffff:ffff", decision{true, "allow 2001:db8::/63"}},
			{"2001:db8:0:1:8000::", decision{true, "allow 2001:db8:0:1:8000::/65"}},
			{"2001:db8:0:1:ffff:ffff:ffff:ffff", decision{true, "allow 2001:db8:0:1:8000::/65"}},
			{"2001:db8:0:2::", decision{false, NotInAllow}},
		}},
		{"mapped addresses are checked as IPv4", []string{"192.168.0.0/16"}, []string{"192.168.1.5"}, []probe{
			{"::ffff:192.168.2.1", decision{true, "allow 192.168.0.0/16"}},
			{"::ffff:192.168.1.5", decision{false, "deny 192.168.1.5"}},
			{"::ffff:10.0.0.1", decision{false, NotInAllow}},
		}},
		{"mapped entries are IPv4 ranges", []string{"::ffff:192.168.0.0/112", "::ffff:10.0.0.1"}, nil, []probe{
			{"192.168.3.4", decision{true, "allow 192.168.0.0/16"}},
			{"10.0.0.1", decision{true, "allow 10.0.0.1"}},
			{"::ffff:10.0.0.1", decision{true, "allow 10.0.0.1"}},
		}},
		{"zones are ignored", []string{"fe80::/10"}, nil, []probe{
			{"fe80::1%eth0", decision{true, "allow fe80::/10"}},
		}},
		{"IPv4 rules do not cover IPv6", nil, []string{"0.0.0.0/0"}, []probe{
			{"::1", decision{true, ""}},
			{"64:ff9b::102:304", decision{true, ""}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.allow, tt.deny)
			if err != nil {
				t.Fatal(err)
			}
			var ips []string
			var want, got []decision
			for _, p := range tt.probes {
				ok, matched := r.Check(netip.MustParseAddr(p.ip))
				ips = append(ips, p.ip)
				want = append(want, p.want)
				got = append(got, decision{ok, matched})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decisions for %v (-want +got):\n%s", ips, diff)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		want        bool
	}{
		{"nil lists", nil, nil, true},
		{"empty lists", []string{}, []string{}, true},
		{"allow", []string{"::1"}, nil, false},
		{"deny", nil, []string{"::1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.allow, tt.deny)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Empty(); got != tt.want {
				t.Errorf("Empty = %v, want %v", got, tt.want)
			}
		})
	}
	var none *Rules
	if ok, matched := none.Check(netip.MustParseAddr("10.0.0.1")); !none.Empty() || !ok || matched != "" {
		t.Errorf("nil Rules: Empty %v, Check = %v, %q; want everything allowed", none.Empty(), ok, matched)
	}
}

func TestInvalidAddress(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		want        decision
	}{
		{"no rules", nil, nil, decision{true, ""}},
		{"deny only", nil, []string{"10.0.0.0/8"}, decision{false, InvalidAddress}},
		{"allow", []string{"0.0.0.0/0", "::/0"}, nil, decision{false, InvalidAddress}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.allow, tt.deny)
			if err != nil {
				t.Fatal(err)
			}
			ok, matched := r.Check(netip.Addr{})
			if diff := cmp.Diff(tt.want, decision{ok, matched}); diff != "" {
				t.Errorf("Check(zero Addr) (-want +got):\n%s", diff)
			}
		})
	}
}

// The error names the list, the index and the value; what follows the
// reason of gatehouse's own is the standard library's, and not pinned.
func TestNewNamesTheBadEntry(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		want        EntryError // Err aside
		wantPrefix  string
	}{
		{"not an address", []string{"10.0.0.0/8", "example.com"}, nil,
			EntryError{List: "allow", Index: 1, Value: "example.com"},
			`allow[1] "example.com": not an address or a CIDR range: `},
		{"octet out of range", nil, []string{"10.0.0.256"},
			EntryError{List: "deny", Index: 0, Value: "10.0.0.256"},
			`deny[0] "10.0.0.256": not an address or a CIDR range: `},
		{"prefix too long", nil, []string{"::1", "10.0.0.0/33"},
			EntryError{List: "deny", Index: 1, Value: "10.0.0.0/33"},
			`deny[1] "10.0.0.0/33": not a CIDR range: `},
		{"host bits set", []string{"10.0.0.1/8"}, nil,
			EntryError{List: "allow", Index: 0, Value: "10.0.0.1/8"},
			`allow[0] "10.0.0.1/8": host bits set: the range is 10.0.0.0/8, the address alone 10.0.0.1`},
		{"zone", []string{"fe80::1%eth0"}, nil,
			EntryError{List: "allow", Index: 0, Value: "fe80::1%eth0"},
			`allow[0] "fe80::1%eth0": an address with a zone: rules ignore zones`},
		{"zone in a range", []string{"fe80::%eth0/64"}, nil,
			EntryError{List: "allow", Index: 0, Value: "fe80::%eth0/64"},
			`allow[0] "fe80::%eth0/64": not a CIDR range: `},
		{"empty", nil, []string{""},
			EntryError{List: "deny", Index: 0, Value: ""},
			`deny[0] "": not an address or a CIDR range: `},
		{"spaces", []string{" 10.0.0.1"}, nil,
			EntryError{List: "allow", Index: 0, Value: " 10.0.0.1"},
			`allow[0] " 10.0.0.1": not an address or a CIDR range: `},
		{"allow is read before deny", []string{"x"}, []string{"y"},
			EntryError{List: "allow", Index: 0, Value: "x"},
			`allow[0] "x": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.allow, tt.deny)
			if err == nil {
				t.Fatalf("New = %v, want an error", r)
			}
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("error %T is not an *EntryError", err)
			}
			if diff := cmp.Diff(tt.want, *ee, cmpopts.IgnoreFields(EntryError{}, "Err")); diff != "" {
				t.Errorf("EntryError (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Errorf("error %q, want it to start %q", err, tt.wantPrefix)
			}
		})
	}
}

// naive is the reference the compiled rules are held to: every entry
// looked at, the longest match named, a tie (the same range twice) going
// to the first listed.
type naive struct {
	allow, deny []netip.Prefix
}

func (n naive) check(ip netip.Addr) (bool, string) {
	if len(n.allow) == 0 && len(n.deny) == 0 {
		return true, ""
	}
	if !ip.IsValid() {
		return false, InvalidAddress
	}
	ip = ip.Unmap().WithZone("")
	longest := func(ps []netip.Prefix) (netip.Prefix, bool) {
		var best netip.Prefix
		found := false
		for _, p := range ps {
			if p.Contains(ip) && (!found || p.Bits() > best.Bits()) {
				best, found = p, true
			}
		}
		return best, found
	}
	if p, ok := longest(n.deny); ok {
		return false, "deny " + canonical(p)
	}
	if len(n.allow) == 0 {
		return true, ""
	}
	if p, ok := longest(n.allow); ok {
		return true, "allow " + canonical(p)
	}
	return false, NotInAllow
}

// differ compiles the entries both ways and reports where they disagree.
func differ(t *testing.T, allow, deny []string, ips []netip.Addr) {
	t.Helper()
	r, err := New(allow, deny)
	if err != nil {
		t.Fatalf("New(%q, %q): %v", allow, deny, err)
	}
	var ref naive
	for _, s := range allow {
		p, _ := parse(s)
		ref.allow = append(ref.allow, p)
	}
	for _, s := range deny {
		p, _ := parse(s)
		ref.deny = append(ref.deny, p)
	}
	for _, ip := range ips {
		ok, matched := r.Check(ip)
		wantOK, wantMatched := ref.check(ip)
		if ok != wantOK || matched != wantMatched {
			t.Fatalf("allow %q deny %q: Check(%v) = %v, %q; the reference says %v, %q",
				allow, deny, ip, ok, matched, wantOK, wantMatched)
		}
	}
}

// entryOf makes a rule entry from a few bytes, in a small corner of each
// family so that ranges overlap often.
func entryOf(flags, bits, a, b, c byte) string {
	var addr netip.Addr
	if flags&2 == 0 {
		addr = netip.AddrFrom4([4]byte{10, a & 7, b, c})
		bits %= 33
	} else {
		addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: a & 7, 8: b, 15: c})
		bits = byte(int(bits) % 129)
	}
	p := netip.PrefixFrom(addr, int(bits)).Masked()
	switch {
	case flags&4 != 0 && p.IsSingleIP():
		return p.Addr().String()
	case flags&8 != 0 && p.Addr().Is4():
		return "::ffff:" + p.Addr().String() + fmt.Sprint("/", p.Bits()+96)
	}
	return p.String()
}

func addrOf(flags, a, b, c byte) netip.Addr {
	if flags&2 == 0 {
		ip := netip.AddrFrom4([4]byte{10, a & 7, b, c})
		if flags&8 != 0 {
			return netip.AddrFrom16(ip.As16())
		}
		return ip
	}
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: a & 7, 8: b, 15: c})
}

// rulesOf reads entries and addresses from bytes: five bytes an entry
// while the first says "entry" (bit 0), four an address after.
func rulesOf(data []byte) (allow, deny []string, ips []netip.Addr) {
	for len(data) >= 5 && data[0]&1 != 0 {
		e := entryOf(data[0]>>1, data[1], data[2], data[3], data[4])
		if data[0]&0x40 != 0 {
			deny = append(deny, e)
		} else {
			allow = append(allow, e)
		}
		data = data[5:]
	}
	for len(data) >= 4 {
		ips = append(ips, addrOf(data[0], data[1], data[2], data[3]))
		data = data[4:]
	}
	return allow, deny, ips
}

// Random lists of overlapping ranges, against the reference, with every
// boundary of every range among the addresses checked.
func TestMatchesNaiveReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		var allow, deny []string
		var ips []netip.Addr
		for range rng.IntN(40) {
			e := entryOf(byte(rng.IntN(16)), byte(rng.IntN(256)), byte(rng.IntN(8)), byte(rng.IntN(4)), byte(rng.IntN(256)))
			if rng.IntN(3) == 0 {
				deny = append(deny, e)
			} else {
				allow = append(allow, e)
			}
			p, _ := parse(e)
			first := p.Addr()
			lastAddr := lastOf(p)
			ips = append(ips, first, lastAddr)
			if n := lastAddr.Next(); n.IsValid() {
				ips = append(ips, n)
			}
			if pr := first.Prev(); pr.IsValid() {
				ips = append(ips, pr)
			}
		}
		for range 20 {
			ips = append(ips, addrOf(byte(rng.IntN(16)), byte(rng.IntN(8)), byte(rng.IntN(4)), byte(rng.IntN(256))))
		}
		t.Run(fmt.Sprint(round), func(t *testing.T) { differ(t, allow, deny, ips) })
	}
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func FuzzMatchesNaiveReference(f *testing.F) {
	f.Add([]byte{1, 8, 0, 0, 0, 0x41, 16, 1, 0, 0, 0, 1, 2, 3})
	f.Add([]byte{3, 0, 0, 0, 0, 0x45, 32, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 1})
	f.Add([]byte{5, 64, 1, 1, 1, 5, 127, 1, 1, 1, 0x45, 128, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 0})
	f.Add([]byte{0x11, 104, 2, 2, 2, 8, 2, 2, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		allow, deny, ips := rulesOf(data)
		differ(t, allow, deny, ips)
	})
}

// prefixes returns n distinct ranges, IPv4 /24s and IPv6 /48s, spread
// over each family, and addresses half in them and half not.
func prefixes(n int) ([]string, []netip.Addr) {
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[string]bool{}
	var entries []string
	var ips []netip.Addr
	for len(entries) < n {
		var p netip.Prefix
		if rng.IntN(2) == 0 {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0}), 24)
		} else {
			var b [16]byte
			b[0], b[1] = 0x20, byte(rng.IntN(256))
			b[2], b[3], b[4], b[5] = byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))
			p = netip.PrefixFrom(netip.AddrFrom16(b), 48)
		}
		if seen[p.String()] {
			continue
		}
		seen[p.String()] = true
		entries = append(entries, p.String())
		ips = append(ips, lastOf(p), lastOf(p).Next())
	}
	return entries, ips
}

func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		entries, ips := prefixes(n)
		r, err := New(entries, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n, " prefixes"), func(b *testing.B) {
			i := 0
			for b.Loop() {
				r.Check(ips[i%len(ips)])
				i++
			}
		})
		ref := naive{}
		for _, s := range entries {
			ref.allow = append(ref.allow, netip.MustParsePrefix(s))
		}
		b.Run(fmt.Sprint(n, " prefixes, every entry looked at"), func(b *testing.B) {
			i := 0
			for b.Loop() {
				ref.check(ips[i%len(ips)])
				i++
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	entries, _ := prefixes(10_000)
	for b.Loop() {
		if _, err := New(entries, nil); err != nil {
			b.Fatal(err)
		}
	}
}
