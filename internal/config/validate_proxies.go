package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// trustedProxies checks trusted_proxies and proxy_protocol.
func (v *validator) trustedProxies(c *Config, path string) {
	for i, s := range c.TrustedProxies {
		if _, err := parseTrusted(s); err != nil {
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
	if c.ProxyProtocol && len(c.TrustedProxies) == 0 {
		v.errorf("proxy_protocol", "needs trusted_proxies: the load balancers allowed to send a PROXY header "+
			"(a header accepted from anyone would let any client forge its address), e.g. trusted_proxies: [\"10.0.0.0/8\"]")
	}
}

// TrustedPrefixes is trusted_proxies parsed, a bare address as a prefix of
// its full length. Entries that do not parse are left out: a validated
// config has none. It parses on each call (a Config stays a plain value
// that tests can compare); callers keep the result.
func (c *Config) TrustedPrefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parseTrusted(s); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// parseTrusted parses one trusted_proxies entry: a CIDR or an address,
// IPv4 or IPv6. A peer's address is compared unmapped (an IPv4 client of
// a dual-stack listener is 10.0.0.1, not ::ffff:10.0.0.1), so an entry
// written in the IPv4-mapped form would never match and is refused; a
// zone has no meaning in a range.
func parseTrusted(s string) (netip.Prefix, error) {
	var p netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err == nil && a.Zone() == "" {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	}
	switch {
	case err != nil || !p.IsValid():
		return netip.Prefix{}, fmt.Errorf("%q must be an IP address or a CIDR range, e.g. \"10.0.0.0/8\", \"192.0.2.10\" or \"fd00::/8\"", s)
	case p.Addr().Is4In6():
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address: write it as IPv4, e.g. %q", s, ipv4Form(p))
	}
	return p.Masked(), nil
}

// ipv4Form writes an IPv4-mapped prefix in IPv4.
func ipv4Form(p netip.Prefix) string {
	a := p.Addr().Unmap()
	if p.Bits() == 128 {
		return a.String()
	}
	return netip.PrefixFrom(a, max(p.Bits()-96, 0)).Masked().String()
}
