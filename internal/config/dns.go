package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// DNS is an external pool's dns: block: how its dns:// and dns+srv://
// upstreams are looked up. Absent means every default.
type DNS struct {
	// Resolvers are the DNS servers asked, in order (the next one when a
	// server fails), as "ip:port"; a bare IP means port 53. Default: the
	// nameservers of /etc/resolv.conf, port 53, read when the pool starts
	// and at each reload.
	Resolvers []string `yaml:"resolvers" secret:"false"`
	// MinRefresh is the shortest time between two lookups of a name: a
	// record's TTL below it (0 included) is raised to it. It is also the
	// retry interval after a failed lookup. Default 1s; at least 100ms,
	// so that TTL-0 answers (Consul's default) are no lookup storm.
	MinRefresh Duration `yaml:"min_refresh" secret:"false"`
	// MaxRefresh is the longest time between two lookups: a TTL above it
	// is lowered to it, so that members follow a change within it.
	// Default 30s; must be ≥ min_refresh.
	MaxRefresh Duration `yaml:"max_refresh" secret:"false"`
	// Timeout bounds one query to one server. Default 2s; must be > 0.
	Timeout Duration `yaml:"timeout" secret:"false"`
}

// NewDNS returns the defaults of a dns: block, present or not.
func NewDNS() *DNS {
	return &DNS{MinRefresh: Duration(time.Second), MaxRefresh: Duration(30 * time.Second), Timeout: Duration(2 * time.Second)}
}

// Schemes of an upstream entry that is looked up in DNS.
const (
	// SchemeDNS: "dns://NAME:PORT", every A and AAAA record of NAME a
	// member on PORT.
	SchemeDNS = "dns://"
	// SchemeSRV: "dns+srv://_service._proto.NAME", every SRV record's
	// target and port a member (targets through their A/AAAA records).
	SchemeSRV = "dns+srv://"
)

// DNSUpstream is one upstreams: entry that is looked up in DNS.
type DNSUpstream struct {
	// Entry is the entry as written, e.g. "dns://web.internal:8080".
	Entry string
	// Name is the fully qualified name looked up (with its final dot): the
	// entry's name as written, without resolv.conf's search domains.
	Name string
	// SRV: Name's SRV records give the targets and ports; else its A and
	// AAAA records are the members, each on Port.
	SRV  bool
	Port int
}

// IsDNSUpstream reports whether an upstreams: entry is looked up in DNS
// (dns:// or dns+srv://) rather than dialed as written.
func IsDNSUpstream(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, SchemeDNS) || strings.HasPrefix(l, SchemeSRV)
}

// ParseDNSUpstream parses a dns:// or dns+srv:// entry.
func ParseDNSUpstream(s string) (DNSUpstream, error) {
	l := strings.ToLower(s)
	switch {
	case strings.HasPrefix(l, SchemeSRV):
		return parseSRV(s, l[len(SchemeSRV):])
	case strings.HasPrefix(l, SchemeDNS):
		return parseDNSName(s, l[len(SchemeDNS):])
	}
	return DNSUpstream{}, errors.New("must start with dns:// or dns+srv://")
}

func parseDNSName(entry, rest string) (DNSUpstream, error) {
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return DNSUpstream{}, errors.New("must be dns://NAME:PORT, e.g. \"dns://web.default.svc.cluster.local:8080\"")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return DNSUpstream{}, fmt.Errorf("has port %q: must be a number from 1 to 65535", port)
	}
	if net.ParseIP(host) != nil {
		return DNSUpstream{}, fmt.Errorf("names an IP address, which is not looked up: write it %q", net.JoinHostPort(host, port))
	}
	if err := checkDNSName(host); err != nil {
		return DNSUpstream{}, err
	}
	return DNSUpstream{Entry: entry, Name: fqdn(host), Port: n}, nil
}

func parseSRV(entry, name string) (DNSUpstream, error) {
	if strings.Contains(name, ":") {
		return DNSUpstream{}, errors.New("must not have a port: each SRV record gives its own; write dns+srv://_service._proto.NAME")
	}
	if err := checkDNSName(name); err != nil {
		return DNSUpstream{}, err
	}
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	if len(labels) < 3 || !srvLabel(labels[0]) || !srvLabel(labels[1]) {
		return DNSUpstream{}, errors.New("must be dns+srv://_service._proto.NAME, e.g. \"dns+srv://_http._tcp.web.default.svc.cluster.local\"")
	}
	return DNSUpstream{Entry: entry, Name: fqdn(name), SRV: true}, nil
}

func srvLabel(l string) bool { return len(l) > 1 && l[0] == '_' }

// checkDNSName accepts a host name: dot-separated labels of letters,
// digits, '-' and '_' (SRV and some internal names use it), each 1 to 63
// bytes, 253 in all; a final dot is allowed.
func checkDNSName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return errors.New("has an empty name")
	}
	if len(n) > 253 {
		return errors.New("has a name longer than 253 characters")
	}
	for l := range strings.SplitSeq(n, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("has a label %q: each label between dots is 1 to 63 characters", l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("has %q in its name: use letters, digits, \"-\" and \"_\"", r)
			}
		}
	}
	return nil
}

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// DNSUpstreams are the app's upstreams looked up in DNS, as Validate
// accepted them.
func (a *App) DNSUpstreams() []DNSUpstream {
	var out []DNSUpstream
	for _, u := range a.Upstreams {
		if d, err := ParseDNSUpstream(u); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// StaticUpstreams are the app's host:port upstreams, dialed as written.
func (a *App) StaticUpstreams() []string {
	var out []string
	for _, u := range a.Upstreams {
		if !IsDNSUpstream(u) {
			out = append(out, u)
		}
	}
	return out
}

// dnsUpstream checks a dns:// or dns+srv:// entry.
func (v *validator) dnsUpstream(path, entry string) {
	if _, err := ParseDNSUpstream(entry); err != nil {
		v.errorf(path, "%q %v", entry, err)
	}
}

// dns checks an app's dns: block, and gives an app with DNS entries the
// block's defaults when it has none, so that what runs sees them.
func (v *validator) dns(a *App, path string) {
	hasDNS := false
	for _, u := range a.Upstreams {
		hasDNS = hasDNS || IsDNSUpstream(u)
	}
	if a.DNS == nil {
		if hasDNS {
			a.DNS = NewDNS()
		}
		return
	}
	switch {
	case !a.External():
		v.errorf(path, "only for an external pool (upstreams:) with dns:// or dns+srv:// entries")
		return
	case !hasDNS:
		v.errorf(path, "only used with dns:// or dns+srv:// entries in upstreams, e.g. \"dns://web.internal:8080\"")
		return
	}
	d := a.DNS
	for i, r := range d.Resolvers {
		addr, err := resolverAddr(r)
		if err != nil {
			v.errorf(indexPath(path+".resolvers", i), "%q %v", r, err)
			continue
		}
		d.Resolvers[i] = addr
	}
	if d.MinRefresh < Duration(100*time.Millisecond) {
		v.errorf(path+".min_refresh", "must be at least 100ms, got %s", d.MinRefresh.D())
	}
	v.positive(path+".max_refresh", d.MaxRefresh)
	v.positive(path+".timeout", d.Timeout)
	if d.MinRefresh > 0 && d.MaxRefresh > 0 && d.MinRefresh > d.MaxRefresh {
		v.errorf(path+".max_refresh", "%s is below min_refresh %s", d.MaxRefresh.D(), d.MinRefresh.D())
	}
}

// resolverAddr is the ip:port of a resolvers: entry, port 53 when it has
// none. A server is an address: looking its name up would need DNS.
func resolverAddr(s string) (string, error) {
	if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	n, perr := strconv.Atoi(port)
	switch {
	case err != nil:
		return "", errors.New("must be an IP address with an optional port, e.g. \"10.96.0.10:53\" or \"10.96.0.10\"")
	case net.ParseIP(host) == nil:
		return "", errors.New("must be an IP address, not a name (a name would need DNS to find the DNS server), e.g. \"10.96.0.10:53\"")
	case perr != nil || n < 1 || n > 65535:
		return "", fmt.Errorf("has port %q: must be a number from 1 to 65535", port)
	}
	return s, nil
}
