// Package discovery owns finding an external pool's members in DNS: it
// asks the configured servers for the A/AAAA or SRV records of a dns:// or
// dns+srv:// upstream and turns the answer into host:port addresses and
// the time to wait before asking again. It keeps no state between
// lookups; the supervisor decides what a failure or a change means for
// the members.
package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/gatehouse/gatehouse/internal/config"
)

// ResolvConf is where the servers come from when dns.resolvers is empty.
const ResolvConf = "/etc/resolv.conf"

// Resolver looks up DNS upstreams with one dns: block's settings.
type Resolver struct {
	servers  []string
	timeout  time.Duration
	min, max time.Duration
	udp, tcp *dns.Client
}

// New returns a resolver for d, asking d.Resolvers, or the nameservers of
// /etc/resolv.conf when it names none.
func New(d *config.DNS) (*Resolver, error) {
	servers := slices.Clone(d.Resolvers)
	if len(servers) == 0 {
		cc, err := dns.ClientConfigFromFile(ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("no dns.resolvers, and %s: %w", ResolvConf, err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cmp.Or(cc.Port, "53")))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("no dns.resolvers, and %s names no nameserver", ResolvConf)
		}
	}
	t := d.Timeout.D()
	return &Resolver{
		servers: servers, timeout: t, min: d.MinRefresh.D(), max: d.MaxRefresh.D(),
		udp: &dns.Client{Net: "udp", Timeout: t},
		tcp: &dns.Client{Net: "tcp", Timeout: t},
	}, nil
}

// Servers are the DNS servers asked, in order.
func (r *Resolver) Servers() []string { return slices.Clone(r.servers) }

// Answer is what one lookup found.
type Answer struct {
	// Addrs are the members' host:port addresses, sorted, without
	// duplicates. Empty is a valid answer: the name has no members now
	// (NXDOMAIN, or no records), as a Kubernetes headless Service with no
	// ready pod answers.
	Addrs []string
	// TTL is how long the answer holds: the smallest TTL of the records
	// used, clamped to [min_refresh, max_refresh].
	TTL time.Duration
}

// Error is a lookup that got no answer: every server failed (timed out,
// was unreachable, or answered SERVFAIL, REFUSED or another error code).
// It is not the same as an empty answer, which is an Answer.
type Error struct {
	// Name is the name looked up, Server the last server asked.
	Name, Server string
	Err          error
}

func (e *Error) Error() string { return fmt.Sprintf("lookup %s at %s: %v", e.Name, e.Server, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// RcodeError is a server's answer with an error code.
type RcodeError struct{ Rcode int }

func (e *RcodeError) Error() string {
	return "server answered " + cmp.Or(dns.RcodeToString[e.Rcode], strconv.Itoa(e.Rcode))
}

// QuestionError is a server's answer to another question than the one
// asked.
type QuestionError struct{ Got []dns.Question }

func (e *QuestionError) Error() string {
	if len(e.Got) == 0 {
		return "server answered without the question"
	}
	return fmt.Sprintf("server answered another question (%s %s)", e.Got[0].Name, dns.TypeToString[e.Got[0].Qtype])
}

// Lookup resolves one DNS upstream.
func (r *Resolver) Lookup(ctx context.Context, u config.DNSUpstream) (Answer, error) {
	var ttl uint32
	var addrs []string
	var err error
	if u.SRV {
		addrs, ttl, err = r.srv(ctx, u.Name)
	} else {
		var ips []string
		ips, ttl, err = r.hosts(ctx, u.Name, nil)
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, strconv.Itoa(u.Port)))
		}
	}
	if err != nil {
		return Answer{}, err
	}
	slices.Sort(addrs)
	return Answer{Addrs: slices.Compact(addrs), TTL: r.clamp(ttl)}, nil
}

// noTTL stands for "no record said": the answer is re-asked at
// min_refresh, so that members appear soon after the name gets some.
const noTTL = 0

func (r *Resolver) clamp(ttl uint32) time.Duration {
	return min(max(time.Duration(ttl)*time.Second, r.min), r.max)
}

// minTTL is the smaller of two TTLs where noTTL means none yet.
func minTTL(a, b uint32) uint32 {
	if a == noTTL {
		return b
	}
	if b == noTTL {
		return a
	}
	return min(a, b)
}

// hosts is the A and AAAA addresses of name, from extra (an SRV answer's
// additional section) when it has any for name, else asked.
func (r *Resolver) hosts(ctx context.Context, name string, extra []dns.RR) ([]string, uint32, error) {
	if ips, ttl := addrsOf(extra, name); len(ips) > 0 {
		return ips, ttl, nil
	}
	var ips []string
	var ttl uint32
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		msg, err := r.ask(ctx, name, qt)
		if err != nil {
			return nil, 0, err
		}
		got, t := addrsOf(msg.Answer, name)
		ips = append(ips, got...)
		ttl = minTTL(ttl, cmp.Or(t, negativeTTL(msg)))
	}
	return ips, ttl, nil
}

// addrsOf is the A and AAAA addresses in rrs of name and of the names
// its CNAME chain in rrs leads to (a headless Service's name may be an
// alias), with the smallest TTL of the records used. Records of any other
// name are not the answer to this question, whatever a server added.
// Addresses no member can be dialed at are left out.
func addrsOf(rrs []dns.RR, name string) ([]string, uint32) {
	names := chain(rrs, name)
	var ips []string
	var ttl uint32
	for _, rr := range rrs {
		if !names[strings.ToLower(rr.Header().Name)] {
			continue
		}
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		case *dns.CNAME:
			// The alias holds no longer than its own TTL.
		default:
			continue
		}
		ttl = minTTL(ttl, max(rr.Header().Ttl, 1)) // 0 is "do not cache": as soon as allowed
		if ip != nil && dialable(ip) {
			ips = append(ips, ip.String())
		}
	}
	if len(ips) == 0 {
		return nil, noTTL
	}
	return ips, ttl
}

// chain is name and every name its CNAME records in rrs lead to, in
// lower case.
func chain(rrs []dns.RR, name string) map[string]bool {
	names := map[string]bool{strings.ToLower(name): true}
	for grew := true; grew; {
		grew = false
		for _, rr := range rrs {
			c, ok := rr.(*dns.CNAME)
			if ok && names[strings.ToLower(c.Hdr.Name)] && !names[strings.ToLower(c.Target)] {
				names[strings.ToLower(c.Target)] = true
				grew = true
			}
		}
	}
	return names
}

// dialable reports whether ip can be a member's address. 0.0.0.0 (what
// some DNS filters answer for a blocked name) would dial this host;
// multicast and broadcast addresses take no TCP connection; an IPv6
// link-local address needs a zone that DNS cannot give.
func dialable(ip net.IP) bool {
	return !ip.IsUnspecified() && !ip.IsMulticast() && !ip.Equal(net.IPv4bcast) &&
		!(ip.To4() == nil && ip.IsLinkLocalUnicast())
}

// negativeTTL is how long an empty answer holds (RFC 2308 §5: the SOA's
// TTL, at most its minimum field); noTTL without an SOA.
func negativeTTL(msg *dns.Msg) uint32 {
	for _, rr := range msg.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return max(min(soa.Hdr.Ttl, soa.Minttl), 1)
		}
	}
	return noTTL
}

// srv is the host:port of every SRV record of name (or of its CNAME
// chain); a target "." (no service) or port 0 is none.
func (r *Resolver) srv(ctx context.Context, name string) ([]string, uint32, error) {
	msg, err := r.ask(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	var addrs []string
	ttl := negativeTTL(msg)
	names := chain(msg.Answer, name)
	for _, rr := range msg.Answer {
		s, ok := rr.(*dns.SRV)
		if !ok || !names[strings.ToLower(s.Hdr.Name)] || s.Target == "." || s.Port == 0 {
			continue // no service there, or none on a port one can dial
		}
		ttl = minTTL(ttl, max(s.Hdr.Ttl, 1))
		ips, t, err := r.hosts(ctx, s.Target, msg.Extra)
		if err != nil {
			return nil, 0, err
		}
		ttl = minTTL(ttl, t)
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, strconv.Itoa(int(s.Port))))
		}
	}
	return addrs, ttl, nil
}

// udpSize is the largest UDP answer asked for (EDNS0), DNS Flag Day
// 2020's: a larger one would be fragmented, and fragments are often
// dropped (overlay networks, firewalls); the server truncates instead,
// and the question is asked again over TCP.
const udpSize = 1232

// ask sends one question to each server in turn until one answers
// NOERROR or NXDOMAIN, over UDP and again over TCP when the UDP answer
// was truncated.
func (r *Resolver) ask(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(udpSize, false)
	var err error
	for i, server := range r.servers {
		var msg *dns.Msg
		msg, err = r.exchange(ctx, q, server)
		if err == nil {
			return msg, nil
		}
		if ctx.Err() != nil {
			break
		}
		if i > 0 {
			// The last server's error stands for all; say there were others.
			var e *Error
			if errors.As(err, &e) {
				e.Err = fmt.Errorf("%w (the %d servers before it failed too)", e.Err, i)
			}
		}
	}
	return nil, err
}

func (r *Resolver) exchange(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	fail := func(err error) (*dns.Msg, error) {
		return nil, &Error{Name: q.Question[0].Name + " " + dns.TypeToString[q.Question[0].Qtype], Server: server, Err: err}
	}
	msg, err := exchangeOn(ctx, r.udp, q, server)
	if err == nil && msg.Truncated {
		msg, err = exchangeOn(ctx, r.tcp, q, server)
	}
	if err != nil {
		return fail(err)
	}
	switch msg.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return fail(&RcodeError{Rcode: msg.Rcode})
	}
	// miekg/dns matches the reply's id only: an answer to another
	// question (a stale or spoofed reply, a broken middlebox) is not
	// this one's.
	if want := q.Question[0]; len(msg.Question) != 1 || !strings.EqualFold(msg.Question[0].Name, want.Name) ||
		msg.Question[0].Qtype != want.Qtype || msg.Question[0].Qclass != want.Qclass {
		return fail(&QuestionError{Got: msg.Question})
	}
	return msg, nil
}

// exchangeOn asks q over c. miekg/dns bounds a read by c's timeout and
// ctx's deadline but not by ctx's cancellation: closing the connection
// ends the wait when the lookups are stopped (a reload, a stop), rather
// than dns.timeout later.
func exchangeOn(ctx context.Context, c *dns.Client, q *dns.Msg, server string) (*dns.Msg, error) {
	co, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	stop := context.AfterFunc(ctx, func() { co.Close() })
	defer stop()
	msg, _, err := c.ExchangeWithConnContext(ctx, q, co)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return msg, err
}
