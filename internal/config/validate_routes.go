package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// routes checks each route's shape and its blocks. Several apps share
// one listener, so each must say which requests are its own.
func (v *validator) routes(routes []Route, path string, napps int) {
	if len(routes) == 0 && napps > 1 {
		v.errorf(path, "required when there are several apps, e.g. routes: [\"/api/\"] or [\"api.example.com/\"]")
	}
	seen := map[string]string{} // route key: the first match written for it
	for i := range routes {
		r := &routes[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		mp := p
		if v.has(p + ".match") {
			mp = p + ".match"
		}
		host, _, ok := strings.Cut(r.Match, "/")
		first, dup := seen[r.key()]
		shaped := false // a match of the right shape, which routes requests
		switch {
		case r.Match == "":
			v.errorf(mp, "required: \"/prefix\" or \"host/prefix\", e.g. match: \"/api/\"")
		case strings.Contains(r.Match, "://"):
			v.errorf(mp, "%q: leave out the scheme, e.g. \"api.example.com/\"", r.Match)
		case !ok || strings.ContainsAny(host, " \t"):
			v.errorf(mp, "%q must be \"/prefix\" or \"host/prefix\", e.g. \"/api/\" or \"api.example.com/\"", r.Match)
		case strings.Contains(host, "*"):
			// The gateway compares hosts whole: "*.example.com" would
			// match no request.
			v.errorf(mp, "%q: a route's host is one host name, without wildcards; list each host", r.Match)
		case hasPort(host):
			// The gateway compares the request's host without its port,
			// so a host with one would match no request.
			v.errorf(mp, "%q: leave out the port, e.g. \"api.example.com/\": a route takes its host's requests on every listener", r.Match)
		case strings.Contains(r.Match[len(host):], ";"):
			// The gateway matches paths without their parameters, as
			// servlet containers read them: a prefix with one would
			// match no request.
			v.errorf(mp, "%q: leave out the path parameter (from \";\"): routes match paths without them", r.Match)
		case dup && first == r.Match:
			v.errorf(mp, "duplicate route %q", r.Match)
		case dup:
			v.errorf(mp, "duplicate route %q: the same as %q (a host matches in any case, with or without a trailing dot; repeated slashes are one)", r.Match, first)
		default:
			shaped = true
		}
		if shaped {
			seen[r.key()] = r.Match
		}
		v.route(r, p)
	}
}

// hasPort reports whether a route's host names a port: "example.com:8080"
// or "[::1]:8080" (an IPv6 address alone, "::1" or "[::1]", has none).
func hasPort(host string) bool {
	_, _, err := net.SplitHostPort(host)
	return err == nil
}

// route checks a route block's own keys.
func (v *validator) route(r *Route, path string) {
	if r.AddPrefix != "" && (!strings.HasPrefix(r.AddPrefix, "/") || strings.HasSuffix(r.AddPrefix, "/") || strings.ContainsAny(r.AddPrefix, "?#% \t")) {
		v.errorf(path+".add_prefix", "%q must be a plain path such as \"/v1\": starting with \"/\", not ending with one, no query or escapes", r.AddPrefix)
	}
	if rw := r.Rewrite; rw != nil {
		if rw.From == "" {
			v.errorf(path+".rewrite.from", "required: a regular expression, e.g. \"^/old/(.*)$\"")
		} else if _, err := regexp.Compile(rw.From); err != nil {
			v.errorf(path+".rewrite.from", "%v", err)
		}
		if !strings.HasPrefix(rw.To, "/") && !strings.HasPrefix(rw.To, "$") {
			v.errorf(path+".rewrite.to", "%q must be a path starting with \"/\", e.g. \"/new/$1\"", rw.To)
		}
	}
	if rd := r.Redirect; rd != nil {
		if rd.To == "" {
			v.errorf(path+".redirect.to", "required, e.g. \"https://www.example.com{uri}\"")
		}
		switch rd.Status {
		case 0:
			rd.Status = 308
		case 301, 302, 303, 307, 308:
		default:
			v.errorf(path+".redirect.status", "must be one of 301, 302, 303, 307, 308, got %d", rd.Status)
		}
		if r.Static != nil {
			v.errorf(path+".redirect", "a route either redirects or serves static files, not both")
		}
	}
	if s := r.Static; s != nil {
		if s.Root == "" {
			v.errorf(path+".static.root", "required: the directory to serve, e.g. \"./public\"")
		}
		if len(s.Index) == 0 {
			s.Index = []string{"index.html"}
		}
		for i, ix := range s.Index {
			if ix == "" || strings.ContainsAny(ix, "/\\\x00") {
				v.errorf(fmt.Sprintf("%s.static.index[%d]", path, i), "%q must be a file name, e.g. \"index.html\"", ix)
			}
		}
		for i, t := range s.TryFiles {
			if !strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "$path") {
				v.errorf(fmt.Sprintf("%s.static.try_files[%d]", path, i), "%q must be \"$path\", \"$path/\" or a path starting with \"/\"", t)
			}
		}
		v.encodings(s.Precompressed, path+".static.precompressed")
	}
	v.edge(edgeKeys(r.RequestHeaders, r.ResponseHeaders, r.SecurityHeaders, r.Allow, r.Deny, r.RateLimit, r.BasicAuth, r.ForwardAuth, r.Compress), path)
}

// edgeKeys gathers the edge keys of an app or a route, for edge.
func edgeKeys(req, resp *HeaderOps, sec string, allow, deny []string, rl *RequestRateLimit, ba *BasicAuth, fa *ForwardAuth, c *Compress) Edge {
	return Edge{RequestHeaders: req, ResponseHeaders: resp, SecurityHeaders: sec, Allow: allow, Deny: deny,
		RateLimit: rl, BasicAuth: ba, ForwardAuth: fa, Compress: c}
}

// appEdge checks an app's edge keys.
func (v *validator) appEdge(a *App, path string) {
	v.edge(edgeKeys(a.RequestHeaders, a.ResponseHeaders, a.SecurityHeaders, a.Allow, a.Deny, a.RateLimit, a.BasicAuth, a.ForwardAuth, a.Compress), path)
}

// edge checks the edge keys of an app or a route (path), as written.
func (v *validator) edge(e Edge, path string) {
	v.headerOps(e.RequestHeaders, path+".request_headers")
	v.headerOps(e.ResponseHeaders, path+".response_headers")
	switch e.SecurityHeaders {
	case "", SecurityOn, SecurityOff, SecurityForce:
	default:
		v.errorf(path+".security_headers", "must be true, false or \"force\", got %q", e.SecurityHeaders)
	}
	v.cidrs(e.Allow, path+".allow")
	v.cidrs(e.Deny, path+".deny")
	if rl := e.RateLimit; rl != nil && !rl.Off {
		v.rateLimit(rl, path+".rate_limit")
	}
	if ba := e.BasicAuth; ba != nil && !ba.Off {
		if len(ba.Users) == 0 {
			v.errorf(path+".basic_auth.users", "required: user: bcrypt hash (make one with `gatehouse hash-password`)")
		}
		for u, h := range ba.Users {
			if u == "" || strings.Contains(u, ":") {
				v.errorf(path+".basic_auth.users", "user name %q must not be empty or contain \":\"", u)
			}
			if _, err := bcrypt.Cost([]byte(h)); err != nil {
				v.errorf(path+".basic_auth.users."+u, "not a bcrypt hash (make one with `gatehouse hash-password`)")
			}
		}
		if ba.Realm == "" {
			ba.Realm = "restricted"
		}
		if strings.ContainsAny(ba.Realm, "\"\\\r\n") {
			v.errorf(path+".basic_auth.realm", "must not contain quotes, backslashes or line breaks")
		}
	}
	if fa := e.ForwardAuth; fa != nil && !fa.Off {
		if !strings.HasPrefix(fa.URL, "http://") && !strings.HasPrefix(fa.URL, "https://") {
			v.errorf(path+".forward_auth.url", "%q must be an http:// or https:// URL, e.g. \"http://127.0.0.1:4180/oauth2/auth\"", fa.URL)
		}
		if fa.Timeout == 0 {
			fa.Timeout = Duration(5e9)
		}
		v.positive(path+".forward_auth.timeout", fa.Timeout)
		for i, h := range fa.CopyHeaders {
			if !validFieldName(h) {
				v.errorf(fmt.Sprintf("%s.forward_auth.copy_headers[%d]", path, i), "%q is not a header field name", h)
			}
		}
	}
	if c := e.Compress; c != nil && !c.Off {
		if len(c.Encodings) == 0 {
			c.Encodings = []string{"zstd", "gzip", "br"}
		}
		v.encodings(c.Encodings, path+".compress.encodings")
		if c.MinSize == 0 && !v.has(path+".compress.min_size") {
			c.MinSize = 1 << 10
		}
		if c.Level < 0 || c.Level > 9 {
			v.errorf(path+".compress.level", "must be between 0 (a level fit for compressing on the fly) and 9, got %d", c.Level)
		}
	}
}

func (v *validator) headerOps(h *HeaderOps, path string) {
	if h == nil {
		return
	}
	for k := range h.Set {
		if !validFieldName(k) {
			v.errorf(path+".set."+k, "%q is not a header field name", k)
		}
	}
	for _, m := range []map[string]string{h.Set, h.Add} {
		for k := range m {
			if framing[strings.ToLower(k)] {
				v.errorf(path+"."+k, "%s is the connection's or the message's framing, which gatehouse writes itself; it cannot be set here", k)
			}
		}
	}
	for k := range h.Add {
		if !validFieldName(k) {
			v.errorf(path+".add."+k, "%q is not a header field name", k)
		}
	}
	for i, k := range h.Remove {
		if !validFieldName(strings.TrimSuffix(k, "*")) {
			v.errorf(fmt.Sprintf("%s.remove[%d]", path, i), "%q is not a header field name (or a prefix ending in \"*\")", k)
		}
	}
	for _, m := range []map[string]string{h.Set, h.Add} {
		for k, val := range m {
			if strings.ContainsAny(val, "\r\n\x00") {
				v.errorf(path+"."+k, "a header value must not contain line breaks or NUL")
			}
		}
	}
}

// framing are the fields gatehouse writes itself on each side (the
// request's Host and framing, the answer's framing and hop-by-hop
// fields): a value set for them would be dropped or would break the
// message.
var framing = map[string]bool{"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"keep-alive": true, "upgrade": true, "te": true, "trailer": true, "proxy-connection": true}

// validFieldName reports whether s is an HTTP token (RFC 9110 §5.1).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func (v *validator) cidrs(list []string, path string) {
	for i, s := range list {
		if _, err := ParseAddrOrPrefix(s); err != nil {
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%q must be a CIDR (\"10.0.0.0/8\") or an address (\"192.0.2.7\"): %v", s, err)
		}
	}
}

// errNotAddress is netip's failure in words of our own: its wording
// changes between Go releases.
var errNotAddress = errors.New("not an address or a CIDR range")

// ParseAddrOrPrefix reads a CIDR or a single address (as a /32 or /128).
func ParseAddrOrPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errNotAddress
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("host bits set: the range is %s, the address alone %s/%d", p.Masked(), p.Addr(), p.Addr().BitLen())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errNotAddress
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (v *validator) rateLimit(rl *RequestRateLimit, path string) {
	r, err := ParseRate(rl.Rate)
	switch {
	case err != nil:
		v.errorf(path+".rate", "%v", err)
	case r < ratelimit.MinRate || r > ratelimit.MaxRate:
		v.errorf(path+".rate", "%q must be between one a year and one a nanosecond", rl.Rate)
	}
	if rl.Burst < 0 {
		v.errorf(path+".burst", "must be ≥ 1, got %d", rl.Burst)
	} else if rl.Burst == 0 && err == nil {
		rl.Burst = max(1, int(math.Ceil(r)))
	}
	switch {
	case rl.Key == "":
		rl.Key = RateKeyClient
	case rl.Key == RateKeyClient, rl.Key == RateKeyUser:
	case strings.HasPrefix(rl.Key, RateKeyHeader) && strings.Contains(rl.Key, "_"):
		// The front drops such fields (one could pass for a field
		// gatehouse sets), so every request would share the bucket of
		// requests without it.
		v.errorf(path+".key", "%q names a field with \"_\", which gatehouse drops from every request (as nginx does): every request would share one bucket", rl.Key)
	case strings.HasPrefix(rl.Key, RateKeyHeader) && validFieldName(rl.Key[len(RateKeyHeader):]):
	default:
		v.errorf(path+".key", "%q must be \"client_ip\", \"user\" or \"header:NAME\"", rl.Key)
	}
	if rl.MaxKeys < 0 {
		v.errorf(path+".max_keys", "must be ≥ 1, got %d", rl.MaxKeys)
	} else if rl.MaxKeys == 0 {
		rl.MaxKeys = 100000
	}
	// A limit keyed by a field takes no default: Validate again (a
	// caller may) would find one and refuse it. A 0 written is no
	// length, not a request for the default.
	written := v.has(path + ".ipv6_prefix")
	switch {
	case strings.HasPrefix(rl.Key, RateKeyHeader):
		if rl.IPv6Prefix != 0 || written {
			v.errorf(path+".ipv6_prefix", "only used with key: client_ip or user, not %q", rl.Key)
		}
	case rl.IPv6Prefix < 0 || rl.IPv6Prefix > 128 || rl.IPv6Prefix == 0 && written:
		v.errorf(path+".ipv6_prefix", "must be between 1 and 128 (bits of an IPv6 address), got %d", rl.IPv6Prefix)
	case rl.IPv6Prefix == 0:
		rl.IPv6Prefix = DefaultIPv6Prefix
	}
}

// DefaultIPv6Prefix is rate_limit's ipv6_prefix when none is written: the
// /64 a line is given.
const DefaultIPv6Prefix = 64

// Rate limit keys.
const (
	RateKeyClient = "client_ip"
	RateKeyUser   = "user"
	RateKeyHeader = "header:"
)

// ParseRate reads "10/s", "600/m", "1000/h" or "0.5/s" as requests per
// second.
func ParseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("%q must be a count per unit, e.g. \"10/s\", \"600/m\" or \"1000/h\"", s)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q: the count must be a number > 0", s)
	}
	switch strings.TrimSpace(unit) {
	case "s":
		return f, nil
	case "m":
		return f / 60, nil
	case "h":
		return f / 3600, nil
	}
	return 0, fmt.Errorf("%q: the unit must be s, m or h", s)
}

// encodings checks a list of content encodings gatehouse knows.
func (v *validator) encodings(list []string, path string) {
	seen := map[string]bool{}
	for i, e := range list {
		switch e {
		case "zstd", "br", "gzip":
		default:
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%q must be one of zstd, br, gzip", e)
		}
		if seen[e] {
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%q is listed twice", e)
		}
		seen[e] = true
	}
}

// staticRoots checks that every static root is a directory gatehouse can
// read (see Preflight).
func (v *validator) staticRoots(c *Config) {
	for _, name := range c.appNames() {
		v.appStaticRoots(c.Apps[name], name)
	}
}

// appStaticRoots checks the static roots of app a, named name.
func (v *validator) appStaticRoots(a *App, name string) {
	if a == nil {
		return
	}
	for i, r := range a.Routes {
		if r.Static == nil || r.Static.Root == "" {
			continue
		}
		p := fmt.Sprintf("apps.%s.routes[%d].static.root", name, i)
		fi, err := os.Stat(r.Static.Root)
		switch {
		case err != nil:
			v.errorf(p, "%v", err)
		case !fi.IsDir():
			v.errorf(p, "%s is not a directory", r.Static.Root)
		}
	}
}
