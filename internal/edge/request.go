package edge

import (
	"context"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/http1"
)

// Ask is what the rules read of one request, and what they found.
type Ask struct {
	Req *http.Request
	// ClientIP is the client as trusted_proxies establishes it.
	ClientIP string
	// Scheme is "https" or "http", as the app is told it: a trusted
	// proxy's X-Forwarded-Proto, else the connection's.
	Scheme string
	// Host is the host the client asked for, as the app is told it in
	// X-Forwarded-Host: a trusted proxy's, else the request's.
	Host      string
	RequestID string
	// RawPath is the path as it will be sent on (escaped, cleaned of dot
	// segments), Query the query without its "?".
	RawPath, Query string

	// User is who basic_auth or forward_auth established.
	User string
	// Rule names the rule that answered the request or changed it, for
	// the access log.
	Rule string
	// target is the path after strip_prefix, rewrite and add_prefix, for
	// a redirect's {path}.
	target string
	// decision is forward_auth's answer that let the request through.
	decision *auth.Decision
}

// Admit applies the rules that may answer instead of the app, in order:
// access, redirect, authentication, rate limit. answered: a redirect or
// the auth service's own answer was written to w. fail: gatehouse
// answers with it (the header fields it needs, WWW-Authenticate or
// Retry-After, are already on w). Neither: the request goes on.
func (rt *Route) Admit(ctx context.Context, w http.ResponseWriter, q *Ask) (answered bool, fail *cause.Error) {
	if rt.access != nil {
		ip, err := netip.ParseAddr(q.ClientIP)
		if ok, matched := rt.access.Check(ip.Unmap()); err != nil || !ok {
			q.Rule = matched
			if err != nil {
				q.Rule = "unknown client address"
			}
			return false, cause.New(cause.AccessDenied, "", "client "+q.ClientIP+": "+q.Rule, nil)
		}
	}
	if rt.redirect != nil {
		q.Rule = "redirect"
		q.target, _ = rt.Target(q)
		w.Header().Set("Location", rt.location(q))
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(rt.redirStat)
		return true, nil
	}
	// A limit by client or header comes before authentication, so that
	// a flood of guesses is held to the rate before a bcrypt or an
	// auth service's answer is spent on it; a limit by user can only
	// come after.
	byUser := rt.limitKey == config.RateKeyUser
	if !byUser {
		if fail := rt.limit(w, q); fail != nil {
			return false, fail
		}
	}
	if rt.basic != nil {
		if fail := rt.checkBasic(ctx, w, q); fail != nil {
			return false, fail
		}
	}
	if rt.forward != nil {
		if answered, fail := rt.checkForward(ctx, w, q); answered || fail != nil {
			return answered, fail
		}
	}
	if byUser {
		return false, rt.limit(w, q)
	}
	return false, nil
}

// limit takes a token from the request's bucket: rate_limited, with
// Retry-After, when there is none.
func (rt *Route) limit(w http.ResponseWriter, q *Ask) *cause.Error {
	if rt.limiter == nil {
		return nil
	}
	key := rt.rateKey(q)
	if ok, after := rt.limiter.Allow(key, time.Now()); !ok {
		q.Rule = "rate_limit"
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(after.Seconds(), 1)))))
		return cause.Errorf(cause.RateLimited, "", nil, "client %s is over the route's rate_limit", key)
	}
	return nil
}

// location is the redirect's Location for q. One that begins with the
// client's path is kept on the site: "//evil.example" or
// "/\evil.example" (browsers read both as another host) becomes
// "/evil.example". A configured "//host" is the config's own.
func (rt *Route) location(q *Ask) string {
	loc := rt.redirect.expand(q)
	if p := rt.redirect.parts; len(p) > 0 && p[0].ph != phNone && len(loc) > 1 && loc[0] == '/' && (loc[1] == '/' || loc[1] == '\\') {
		loc = "/" + strings.TrimLeft(loc, "/\\")
	}
	return loc
}

// checkBasic checks the request's basic credentials. A failure waits
// (auth.Basic.Fail), unless too many already do.
func (rt *Route) checkBasic(ctx context.Context, w http.ResponseWriter, q *Ask) *cause.Error {
	user, ok := rt.basic.Check(q.Req)
	if ok {
		q.User = user
		return nil
	}
	q.Rule = "basic_auth"
	if rt.basic.HasCredentials(q.Req) && !rt.basic.Fail(ctx) {
		w.Header().Set("Retry-After", "1")
		return cause.New(cause.RateLimited, "", "too many failed sign-ins at once", nil)
	}
	w.Header().Set("WWW-Authenticate", rt.basic.Challenge())
	detail := "no credentials sent"
	if rt.basic.HasCredentials(q.Req) {
		detail = "wrong user name or password"
	}
	return cause.New(cause.AuthRequired, "", detail, nil)
}

// checkForward asks the auth service. Its denial is written to w as it
// came; its failure to answer is auth_unavailable.
func (rt *Route) checkForward(ctx context.Context, w http.ResponseWriter, q *Ask) (bool, *cause.Error) {
	d, err := rt.forward.Check(ctx, q.Req, auth.Origin{ClientIP: q.ClientIP, Scheme: q.Scheme, Host: q.Host})
	if err != nil {
		q.Rule = "forward_auth"
		var ue *auth.UnavailableError
		if errors.As(err, &ue) {
			return false, cause.New(cause.AuthUnavailable, "", ue.Error(), err)
		}
		return false, cause.New(cause.AuthUnavailable, "", err.Error(), err)
	}
	if !d.Allowed {
		q.Rule = "forward_auth"
		h := w.Header()
		for k, v := range d.Header {
			h[k] = v
		}
		h.Set("Content-Length", strconv.Itoa(len(d.Body)))
		w.WriteHeader(d.Status)
		if q.Req.Method != http.MethodHead {
			w.Write(d.Body)
		}
		return true, nil
	}
	if d.User != "" {
		q.User = d.User
	}
	q.decision = &d
	return false, nil
}

func (rt *Route) rateKey(q *Ask) string {
	switch {
	case rt.limitKey == config.RateKeyUser && q.User != "":
		return "user:" + q.User
	case strings.HasPrefix(rt.limitKey, config.RateKeyHeader):
		return q.Req.Header.Get(rt.limitKey[len(config.RateKeyHeader):])
	}
	return clientKey(q.ClientIP, rt.v6Bits)
}

// clientKey names the bucket of the client at addr: an IPv4 address
// itself, written as IPv4 or inside IPv6 (IPv4-mapped, or NAT64's
// well-known prefix); an IPv6 one by its first v6Bits bits
// ("2001:db8:1:2::/64"), since a line is given a whole prefix and its
// host may take any address in it, a new one for every request if it
// likes.
func clientKey(addr string, v6Bits int) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Is4() {
		return addr
	}
	ip = ip.Unmap().WithZone("")
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(v6Bits)
	if err != nil {
		return addr
	}
	return p.String()
}

// nat64 is the well-known prefix (RFC 6052) under which a NAT64 or SIIT
// translator in front of an IPv6-only gatehouse writes each IPv4 client,
// its address in the last 32 bits: every IPv4 client shares its /64, so
// keyed by that they would all share one bucket.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Target is the escaped path the app is sent: the client's after
// strip_prefix, rewrite and add_prefix. changed is false when it is the
// client's.
func (rt *Route) Target(q *Ask) (path string, changed bool) {
	path = q.RawPath
	if rt.strip != "" {
		path = stripPrefix(path, rt.strip)
	}
	if rt.rewrite != nil {
		if dec, err := url.PathUnescape(path); err == nil {
			if out, ok := rt.rewritten(dec); ok {
				path = (&url.URL{Path: out}).EscapedPath()
			}
		}
	}
	if rt.addPrefix != "" {
		path = rt.addPrefix + path
	}
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	return path, path != q.RawPath
}

// rewritten is the decoded path dec after the rewrite; ok is false when
// the rewrite leaves it as it is. The route was matched on dec as routes
// read it (http1.RoutePath: slashes merged, parameters left out), and
// the rewrite holds for that path too: "/old;x/page" is "/old/page" to a
// servlet container, so a rewrite of "^/old/" must not pass it on as it
// came. Of the spellings that rewrite to what the app reads as that
// path's rewrite, the one closest to dec is sent: dec itself, then dec
// with its slashes merged, then without the parameters of all but its
// last segment, so that a parameter the pattern takes in
// ("//old/page;jsessionid=1", "/;x/old/page;jsessionid=1": a servlet
// container's session) is kept as it is for "/old/page;jsessionid=1".
// dec's own rewrite stands too when that path's does not match.
func (rt *Route) rewritten(dec string) (out string, ok bool) {
	out, ok = rt.rewriteOne(dec)
	read := http1.RoutePath(dec)
	if read == dec {
		return out, ok
	}
	readOut, readOK := rt.rewriteOne(read)
	if !readOK {
		return out, ok
	}
	want := http1.RoutePath(readOut)
	if http1.RoutePath(out) == want {
		return out, ok
	}
	merged := http1.MergeSlashes(dec)
	for _, p := range [...]string{merged, lastParamsKept(merged)} {
		if p == dec || p == read {
			continue
		}
		if o, hit := rt.rewriteOne(p); hit && http1.RoutePath(o) == want {
			return o, true
		}
	}
	return readOut, true
}

// lastParamsKept is p, a path with its slashes merged, without the
// parameters of its segments but the last: where a servlet container's
// URL carries its session (";jsessionid=").
func lastParamsKept(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return p
	}
	return strings.TrimSuffix(http1.RoutePath(p[:i]), "/") + p[i:]
}

// rewriteOne applies the rewrite to p; ok is false when it does not
// match.
func (rt *Route) rewriteOne(p string) (string, bool) {
	if !rt.rewrite.MatchString(p) {
		return p, false
	}
	return rt.rewrite.ReplaceAllString(p, rt.rewriteTo), true
}

// stripPrefix takes prefix off the escaped path p. The route matched the
// decoded path with its slashes merged, so p is walked as it was
// matched: escapes decoded ("/%61pi" is "/api") and a run of slashes
// taken as one ("//api"), path parameters left out ("/api;v=1/items"
// and "/api%3Bv=1/items" are "/items"). The slash after the prefix is
// the path's first; one escaped ("/api%2Fitems", "/api/items" to the route) is
// sent as "/", as nginx sends the part after a location's prefix, so the
// app is not sent "/%2Fitems" for it. A p that does not begin with
// prefix so read is returned as it is.
func stripPrefix(p, prefix string) string {
	if strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/') {
		return p[len(prefix):]
	}
	i, j := 0, 0 // in p, in prefix
	for j < len(prefix) {
		c, n := decodedAt(p, i)
		switch {
		case n == 0:
			return p
		case c == ';':
			// a segment's parameters, which the route was matched
			// without (routing.Match), the escaped ";" too: the
			// route was matched on the decoded path
			n = paramsLen(p[i:])
		case c == '/' && j > 0 && prefix[j-1] == '/':
			// a slash merged into the one before
		case c != prefix[j]:
			return p
		default:
			j++
		}
		i += n
	}
	rest := p[i:]
	if c, _ := decodedAt(rest, 0); c == ';' {
		rest = rest[paramsLen(rest):] // the prefix's last segment's
	}
	if c, n := decodedAt(rest, 0); c == '/' && n == 3 {
		return "/" + rest[n:]
	}
	return rest
}

// paramsLen is how long the parameters p begins with are: to the
// segment's end, at a slash raw or escaped, as the route read them in
// the decoded path (CleanPath refuses an escaped slash in parameters
// begun by a raw ";", so the two ends are one there).
func paramsLen(p string) int {
	for i := 0; i < len(p); {
		c, n := decodedAt(p, i)
		if c == '/' {
			return i
		}
		i += n
	}
	return len(p)
}

// decodedAt is the byte p's escaped text has at i, decoded, and how many
// bytes of p it takes; n is 0 at the end of p.
func decodedAt(p string, i int) (c byte, n int) {
	if i >= len(p) {
		return 0, 0
	}
	if p[i] == '%' && i+2 < len(p) {
		if b, err := hex.DecodeString(p[i+1 : i+3]); err == nil {
			return b[0], 3
		}
	}
	return p[i], 1
}

// EditRequest applies X-Forwarded-Prefix (what strip_prefix took off),
// forward_auth's copied fields and request_headers to the header map
// sent to the app.
func (rt *Route) EditRequest(h http.Header, q *Ask) {
	if rt.prefixField != nil {
		h["X-Forwarded-Prefix"] = rt.prefixField
	}
	if q.decision != nil {
		q.decision.Apply(h)
	}
	rt.reqHeaders.apply(h, q)
}
