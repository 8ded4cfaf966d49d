// Package trust owns what gatehouse believes about a client's address:
// which peers are trusted proxies (trusted_proxies), which client a
// trusted peer's X-Forwarded-For chain names, and the PROXY protocol
// header such a peer sends on a public listener (proxy_protocol).
//
// Nothing a client sends is believed by default: a peer that is not a
// trusted proxy is its own client, whatever its headers say.
package trust

import (
	"net/netip"
	"strings"
)

// Proxies is the set of trusted proxies. A nil *Proxies trusts no one.
type Proxies struct {
	prefixes []netip.Prefix
}

// New returns the set of the given ranges; nil when there are none, so
// that callers test for trust with one comparison.
func New(prefixes []netip.Prefix) *Proxies {
	if len(prefixes) == 0 {
		return nil
	}
	return &Proxies{prefixes: prefixes}
}

// Contains reports whether a is a trusted proxy. An IPv4 peer of a
// dual-stack listener is compared as IPv4, and a zone is ignored.
func (p *Proxies) Contains(a netip.Addr) bool {
	if p == nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, pr := range p.prefixes {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// Peer reports whether the peer at host (an address without a port, as
// net.SplitHostPort leaves it) is a trusted proxy.
func (p *Proxies) Peer(host string) bool {
	if p == nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && p.Contains(a)
}

// Client is the client address a trusted peer's X-Forwarded-For field
// lines name, read strictly from right to left: each proxy appends the
// address it got the request from, so the entries a client wrote itself
// are on the left and only entries appended by trusted proxies can be
// believed. The first entry that is not a trusted proxy is the client.
//
// When every entry is a trusted proxy, the leftmost one is the client
// (an internal caller inside the trusted range). An entry that is not an
// address ends the walk the same way: what lies to its left was written
// by someone who did not write addresses, and is not believed. With no
// usable entry at all the client is peer itself.
//
// Entries may carry a port ("192.0.2.1:5555", "[2001:db8::1]:443", as
// some proxies write them) and spaces around them. The address returned
// is in its canonical form.
func (p *Proxies) Client(xff []string, peer string) string {
	var last netip.Addr
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for {
			entry := line
			j := strings.LastIndexByte(line, ',')
			if j >= 0 {
				entry, line = line[j+1:], line[:j]
			}
			a, ok := parseEntry(entry)
			if !ok {
				return orPeer(last, peer)
			}
			a = a.Unmap().WithZone("")
			if !p.Contains(a) {
				return a.String()
			}
			last = a
			if j < 0 {
				break
			}
		}
	}
	return orPeer(last, peer)
}

func orPeer(a netip.Addr, peer string) string {
	if a.IsValid() {
		return a.String()
	}
	return peer
}

// parseEntry parses one X-Forwarded-For entry: an address, with or
// without a port, between optional spaces or tabs.
func parseEntry(s string) (netip.Addr, bool) {
	s = strings.Trim(s, " \t")
	switch {
	case strings.HasPrefix(s, "["):
		// [v6] or [v6]:port
		end := strings.IndexByte(s, ']')
		if end < 0 || end+1 < len(s) && !validPort(s[end+1:]) {
			return netip.Addr{}, false
		}
		s = s[1:end]
	case strings.Count(s, ":") == 1:
		// v4:port (a bare IPv6 address has at least two colons)
		host, port, _ := strings.Cut(s, ":")
		if !validPort(":" + port) {
			return netip.Addr{}, false
		}
		s = host
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// validPort accepts ":" followed by 1 to 5 digits.
func validPort(s string) bool {
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for _, c := range []byte(s[1:]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// AppendFor is the X-Forwarded-For value a trusted peer's request goes on
// with: the field lines it sent, joined in order, and the peer appended,
// as each proxy in a chain does. Blank lines are dropped.
func AppendFor(prior []string, peer string) string {
	var b strings.Builder
	for _, v := range prior {
		if v = strings.Trim(v, " \t"); v != "" {
			b.WriteString(v)
			b.WriteString(", ")
		}
	}
	if b.Len() == 0 {
		return peer
	}
	b.WriteString(peer)
	return b.String()
}

// ValidProto reports whether the X-Forwarded-Proto field lines a trusted
// peer sent say plainly which scheme its client used: one line, exactly
// "http" or "https". Anything else is replaced with what gatehouse sees.
func ValidProto(v []string) bool {
	return len(v) == 1 && (v[0] == "http" || v[0] == "https")
}

// ValidHost reports whether the X-Forwarded-Host field lines a trusted
// peer sent name one host: one line, a host or host:port made of the
// characters RFC 3986 allows in a host (no list, no spaces, no path).
func ValidHost(v []string) bool {
	if len(v) != 1 || v[0] == "" || len(v[0]) > 261 {
		return false
	}
	for _, c := range []byte(v[0]) {
		if !hostByte(c) {
			return false
		}
	}
	return true
}

// hostByte: unreserved, sub-delims but the comma (a list separator in
// forwarded headers), percent for pct-encoding, colon and brackets for
// ports and IPv6 literals.
func hostByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+;=%:[]", c) >= 0
}
