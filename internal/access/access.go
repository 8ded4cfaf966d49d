package access

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
)

// Rules are compiled allow and deny lists. A nil *Rules has no entries and
// allows everything. Rules are read-only after New, so safe for
// concurrent use.
type Rules struct {
	allow, deny list
	hasAllow    bool
}

// NotInAllow is the matched entry of an address refused because the allow
// list is not empty and names no range of it.
const NotInAllow = "not in allow"

// InvalidAddress is the matched entry of an invalid address (the zero
// netip.Addr) checked against rules that are not empty: with nothing to
// compare, it is refused.
const InvalidAddress = "invalid address"

// EntryError is an allow or deny entry that is not an address or a CIDR
// range.
type EntryError struct {
	List  string // "allow" or "deny"
	Index int    // from 0, as in the list given
	Value string
	Err   error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("%s[%d] %q: %v", e.List, e.Index, e.Value, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// New compiles the allow and deny lists. An entry is a CIDR range
// ("10.0.0.0/8", "2001:db8::/32") or a single address ("192.168.1.5",
// "::1"). A range with host bits set ("10.0.0.1/8") is refused rather
// than guessed at: it is as likely a mistyped /32 as a sloppy /8. An
// error is an *EntryError naming the first bad entry.
func New(allow, deny []string) (*Rules, error) {
	r := &Rules{hasAllow: len(allow) > 0}
	var err error
	if r.allow, err = compile("allow", allow); err != nil {
		return nil, err
	}
	if r.deny, err = compile("deny", deny); err != nil {
		return nil, err
	}
	return r, nil
}

// Empty reports whether there are no entries: every address is allowed.
func (r *Rules) Empty() bool {
	return r == nil || (!r.hasAllow && r.deny.empty())
}

// Check decides for ip. It is refused when a deny entry contains it; else,
// when the allow list is not empty, unless an allow entry contains it.
// matched is what decided, for the access log: "deny 10.0.0.0/8", "allow
// 192.168.1.5", NotInAllow, InvalidAddress; or "" when the address is
// allowed with no allow list. An IPv4-mapped IPv6 address is checked as
// IPv4, and a zone is ignored.
func (r *Rules) Check(ip netip.Addr) (ok bool, matched string) {
	if r.Empty() {
		return true, ""
	}
	if !ip.IsValid() {
		return false, InvalidAddress
	}
	ip = ip.Unmap()
	a, is6 := key(ip)
	if name, found := r.deny.find(a, is6); found {
		return false, name
	}
	if !r.hasAllow {
		return true, ""
	}
	if name, found := r.allow.find(a, is6); found {
		return true, name
	}
	return false, NotInAllow
}

// u128 is an address as a number; IPv4 addresses fill only the low 32
// bits, and each family has its own table.
type u128 struct{ hi, lo uint64 }

func (a u128) compare(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) next() u128 {
	if a.lo == math.MaxUint64 {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func key(ip netip.Addr) (a u128, is6 bool) {
	if ip.Is4() {
		b := ip.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}, false
	}
	b := ip.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, true
}

// list is one list's entries, per family.
type list struct {
	v4, v6 table
	names  []string // "deny 10.0.0.0/8", by entry; tables hold indexes
}

func (l *list) empty() bool { return len(l.names) == 0 }

func (l *list) find(a u128, is6 bool) (string, bool) {
	t := &l.v4
	if is6 {
		t = &l.v6
	}
	if i := t.find(a); i >= 0 {
		return l.names[i], true
	}
	return "", false
}

// table is a family's ranges flattened: from starts[i] up to starts[i+1]
// (or the end of the family), the most specific entry is entries[i], or
// none when it is -1.
type table struct {
	starts  []u128
	entries []int32
}

func (t *table) find(a u128) int32 {
	lo, hi := 0, len(t.starts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.starts[m].compare(a) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return -1
	}
	return t.entries[lo-1]
}

// span is one entry's range.
type span struct {
	start, end u128
	bits       int
	entry      int32
}

func compile(name string, entries []string) (list, error) {
	var l list
	var v4, v6 []span
	for i, s := range entries {
		p, err := parse(s)
		if err != nil {
			return list{}, &EntryError{List: name, Index: i, Value: s, Err: err}
		}
		sp := spanOf(p)
		sp.entry = int32(len(l.names))
		l.names = append(l.names, name+" "+canonical(p))
		if p.Addr().Is4() {
			v4 = append(v4, sp)
		} else {
			v6 = append(v6, sp)
		}
	}
	l.v4 = flatten(v4, u128{0, math.MaxUint32})
	l.v6 = flatten(v6, u128{math.MaxUint64, math.MaxUint64})
	return l, nil
}

var (
	errHostBits = errors.New("host bits set")
	errZone     = errors.New("an address with a zone: rules ignore zones")
)

func parse(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, fmt.Errorf("not a CIDR range: %w", err)
		}
		if m := p.Masked(); m != p {
			return p, fmt.Errorf("%w: the range is %s, the address alone %s", errHostBits, m, p.Addr())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, fmt.Errorf("not an address or a CIDR range: %w", err)
		}
		if a.Zone() != "" {
			return p, errZone
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	// Checked addresses are unmapped, so a mapped entry stands for the
	// IPv4 range it maps.
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// canonical names an entry as the log shows it: a single address without
// its /32 or /128.
func canonical(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func spanOf(p netip.Prefix) span {
	start, _ := key(p.Addr())
	host := p.Addr().BitLen() - p.Bits()
	// Shifts by 64 or more give 0 in Go, so these masks hold at the ends.
	var mask u128
	if host >= 64 {
		mask = u128{1<<(host-64) - 1, math.MaxUint64}
	} else {
		mask = u128{0, 1<<host - 1}
	}
	return span{
		start: start,
		end:   u128{start.hi | mask.hi, start.lo | mask.lo},
		bits:  p.Bits(),
	}
}

// flatten turns ranges that nest or are apart (CIDR ranges do nothing
// else) into sorted breakpoints, each naming the most specific range over
// it. Ranges come in order of start, enclosing before enclosed; a stack
// holds the chain of those open at the current start, innermost on top.
func flatten(spans []span, last u128) table {
	slices.SortStableFunc(spans, func(a, b span) int {
		if c := a.start.compare(b.start); c != 0 {
			return c
		}
		return cmp.Compare(a.bits, b.bits)
	})
	var t table
	emit := func(at u128, entry int32) {
		n := len(t.starts)
		switch {
		case n > 0 && t.starts[n-1] == at:
			t.entries[n-1] = entry
		case n > 0 && t.entries[n-1] == entry, n == 0 && entry == -1:
		default:
			t.starts = append(t.starts, at)
			t.entries = append(t.entries, entry)
		}
	}
	var stack []span
	pop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if top.end == last {
			return
		}
		outer := int32(-1)
		if len(stack) > 0 {
			outer = stack[len(stack)-1].entry
		}
		emit(top.end.next(), outer)
	}
	for i, s := range spans {
		// A range listed twice is the same range under the same name.
		if i > 0 && s.start == spans[i-1].start && s.bits == spans[i-1].bits {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].end.compare(s.start) < 0 {
			pop()
		}
		stack = append(stack, s)
		emit(s.start, s.entry)
	}
	for len(stack) > 0 {
		pop()
	}
	return t
}
