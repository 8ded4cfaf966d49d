package diagnose

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/routing"
)

// The edge detectors name what a route's rules (rate_limit, allow and
// deny, forward_auth) did to an app's traffic. A rule refusing a client
// is the rule working; it is a finding when it refuses a share of the
// traffic that looks like a setting gone wrong, or, for forward_auth,
// when the auth service was not there to ask.

// A rule's refusals are a finding when they are at least edgeMinShare of
// the app's requests and at least edgeMinRequests: a few 429s to one
// eager client are the limit doing its job.
const (
	edgeMinShare    = 0.05
	edgeMinRequests = 20
)

// deniedFew is how many addresses "few" is: refusals that come from at
// most this many look like a proxy or a load balancer in front, not like
// clients.
const deniedFew = 3

// edgeShare groups the requests refused picks out by app, keeping the
// apps where they are a finding's worth (see edgeMinShare).
func edgeShare(ev *Evidence, refused func(a *Access) bool) map[string][]*Access {
	total := map[string]int{}
	byApp := map[string][]*Access{}
	for i := range ev.Access {
		a := &ev.Access[i]
		total[a.App]++
		if refused(a) {
			byApp[a.App] = append(byApp[a.App], a)
		}
	}
	for app, as := range byApp {
		if len(as) < edgeMinRequests || float64(len(as)) < edgeMinShare*float64(total[app]) {
			delete(byApp, app)
		}
	}
	return byApp
}

func appRequests(ev *Evidence, app string) int {
	return len(accessWhere(ev, func(a *Access) bool { return a.App == app }))
}

// rateLimited: a route's rate_limit turned away a real share of an
// app's requests. Most of them from one address, or many users behind
// one, is a proxy in front or a NAT keyed as one client. basic_auth's
// own hold on failed sign-ins (rate_limited too) is not rate_limit's.
func rateLimited(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	for app, as := range edgeShare(ev, func(a *Access) bool { return a.Cause == "rate_limited" && a.Rule != "basic_auth" }) {
		total := appRequests(ev, app)
		evd := []string{fmt.Sprintf("%d of %d requests (%s) got 429 rate_limited", len(as), total, percent(len(as), total))}
		routes := byRoute(ev.app(app), as)
		for i, r := range routes {
			if i == 3 {
				break
			}
			if r.route {
				evd = append(evd, fmt.Sprintf("route %s (rate_limit %s): %s limited", r.k, cmp.Or(r.limit, "not set now"), plural(r.n, "request", "requests")))
			} else {
				evd = append(evd, fmt.Sprintf("%s: %s limited", cmp.Or(r.k, "a route no longer configured"), plural(r.n, "request", "requests")))
			}
		}
		clients := topClients(as)
		for i, c := range clients {
			if i == 3 {
				break
			}
			sent := len(accessWhere(ev, func(a *Access) bool { return a.App == app && cmp.Or(a.Client, "unknown") == c.k }))
			evd = append(evd, fmt.Sprintf("client %s: %d of its %d requests limited", c.k, c.n, sent))
		}
		top := clients[0]
		users := usersOf(as, top.k)
		if users > 1 {
			evd = append(evd, fmt.Sprintf("%d different users were limited as the one client %s", users, top.k))
		}
		// The keying hint is for a limit by address: one keyed by user or
		// header already tells the users behind one address apart.
		where, byClient := "the route's rate_limit", true
		if r := routes[0]; r.route {
			where = "rate_limit on route " + r.k
			byClient = r.limit == "" || strings.HasSuffix(r.limit, "key client_ip")
		}
		fix := "if these clients are legitimate, raise rate or burst in " + where + "; if not, the limit is working"
		if byClient && (2*top.n >= len(as) || users > 1) {
			fix = fmt.Sprintf("most limited requests came from %s: if it is a proxy in front of gatehouse, list it in trusted_proxies so that "+
				"each client its X-Forwarded-For names gets its own bucket; if many users share it (a NAT, an office), key %s by user or header:NAME; "+
				"otherwise raise rate or burst there", top.k, where)
		}
		f := Finding{
			ID: "rate_limited", Severity: Warning, App: app,
			Title:            fmt.Sprintf("rate_limit turned away %s of %s's requests", percent(len(as), total), app),
			Evidence:         evd,
			Fix:              fix,
			RequestsAffected: len(as), SampleRequestIDs: sampleIDs(as),
		}
		f.FirstSeen, f.LastSeen = span(as)
		out = append(out, f)
	}
	return sorted(out)
}

// authUnavailable: forward_auth's service could not be asked, so its
// requests were refused with 503: critical, however few.
func authUnavailable(ev *Evidence, found []Finding) []Finding {
	byApp := accessByApp(ev, func(a *Access) bool { return a.Cause == "auth_unavailable" })
	var out []Finding
	for app, as := range byApp {
		s := ev.app(app)
		evd := []string{fmt.Sprintf("%d × 503 auth_unavailable: the forward_auth service gave no answer", len(as))}
		var services []string
		for _, r := range byRoute(s, as) {
			rt := routeOf(s, r.k)
			if rt == nil || rt.ForwardAuthURL == "" {
				continue
			}
			evd = append(evd, fmt.Sprintf("route %s: %s, forward_auth %s (timeout %s)", r.k, plural(r.n, "request", "requests"), rt.ForwardAuthURL, rt.ForwardAuthTimeout))
			if svc := fmt.Sprintf("%s answers within its timeout %s", rt.ForwardAuthURL, rt.ForwardAuthTimeout); !slices.Contains(services, svc) {
				services = append(services, svc)
			}
		}
		var details []string
		for _, a := range as {
			if a.Detail != "" {
				details = append(details, a.Detail)
			}
		}
		for i, d := range countBy(details) {
			if i == 3 {
				break
			}
			evd = append(evd, fmt.Sprintf("%s (%s)", d.k, plural(d.n, "time", "times")))
		}
		check := "the auth service at forward_auth.url is up, reachable from gatehouse, and answers within forward_auth.timeout"
		if len(services) > 0 {
			check = "the auth service at " + strings.Join(services, ", and at ") + ": that it is up and reachable from gatehouse"
		}
		f := Finding{
			ID: "auth_unavailable", Severity: Critical, App: app,
			Title:            fmt.Sprintf("the forward_auth service gave no answer: %s refused with 503", plural(len(as), "request", "requests")),
			Evidence:         evd,
			Fix:              "check " + check + "; raise forward_auth.timeout only if the service is slow by design",
			RequestsAffected: len(as), SampleRequestIDs: sampleIDs(as),
		}
		f.FirstSeen, f.LastSeen = span(as)
		out = append(out, f)
	}
	return sorted(out)
}

// accessDenied: allow or deny refused a real share of an app's requests,
// (nearly) all from a few addresses. A proxy or load balancer in front
// that is not in trusted_proxies looks like that: every request it
// passes on is its address, not the client's. Refusals spread over many
// addresses are the rule at work.
func accessDenied(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	for app, as := range edgeShare(ev, func(a *Access) bool { return a.Cause == "access_denied" }) {
		clients := topClients(as)
		few := 0
		var addrs, private []string
		for i, c := range clients {
			if i == deniedFew {
				break
			}
			few += c.n
			addrs = append(addrs, c.k)
			if ip, err := netip.ParseAddr(c.k); err == nil && (ip.IsPrivate() || ip.IsLoopback()) {
				private = append(private, c.k)
			}
		}
		if float64(few) < 0.9*float64(len(as)) {
			continue
		}
		total := appRequests(ev, app)
		evd := []string{fmt.Sprintf("%d of %d requests (%s) got 403 access_denied", len(as), total, percent(len(as), total))}
		var rules []string
		for _, a := range as {
			rules = append(rules, cmp.Or(a.Rule, "unknown rule"))
		}
		for i, r := range countBy(rules) {
			if i == 3 {
				break
			}
			evd = append(evd, fmt.Sprintf("%s: %s", r.k, plural(r.n, "request", "requests")))
		}
		for _, c := range clients[:len(addrs)] {
			evd = append(evd, fmt.Sprintf("from %s: %s", c.k, plural(c.n, "request", "requests")))
		}
		if len(private) > 0 {
			evd = append(evd, fmt.Sprintf("%s %s private: a proxy or load balancer in front of gatehouse looks like this", list(private), verb(len(private), "is", "are")))
		}
		sev := Info
		if 2*len(as) >= total {
			sev = Warning // most of the app's traffic: a setting, not a few bad clients
		}
		from := "mostly from "
		if few == len(as) {
			from = "from "
		}
		f := Finding{
			ID: "access_denied", Severity: sev, App: app,
			Title:    fmt.Sprintf("allow/deny refused %s of %s's requests, %s%s", percent(len(as), total), app, from, plural(len(addrs), "address", "addresses")),
			Evidence: evd,
			Fix: fmt.Sprintf("if %s %s a proxy or load balancer in front of gatehouse, list %s in trusted_proxies so that allow and deny see the client "+
				"its X-Forwarded-For names; otherwise the refusals are the rule at work", list(addrs), verb(len(addrs), "is", "are each"), verb(len(addrs), "it", "them")),
			RequestsAffected: len(as), SampleRequestIDs: sampleIDs(as),
		}
		f.FirstSeen, f.LastSeen = span(as)
		out = append(out, f)
	}
	return sorted(out)
}

// topClients counts as by client address, most first.
func topClients(as []*Access) []kv {
	keys := make([]string, len(as))
	for i, a := range as {
		keys[i] = cmp.Or(a.Client, "unknown")
	}
	return countBy(keys)
}

// usersOf is how many different users the entries of client name.
func usersOf(as []*Access, client string) int {
	seen := map[string]bool{}
	for _, a := range as {
		if a.Client == client && a.User != "" {
			seen[a.User] = true
		}
	}
	return len(seen)
}

// routeStat is how many entries one route took, and its rate limit.
// Without the app's routes in the snapshot, k is a path, and route
// false.
type routeStat struct {
	kv
	route bool
	limit string
}

// byRoute counts as by the route of s that took each (as the gateway
// picks it: a route with a host first, then the longest prefix); no
// routes in the snapshot count by path.
func byRoute(s *AppSnap, as []*Access) []routeStat {
	keys := make([]string, len(as))
	var routes *routing.Table[*RouteSnap]
	if s != nil && len(s.Routes) > 0 {
		routes = routeTable(s.Routes)
	}
	for i, a := range as {
		keys[i] = a.Path
		if routes != nil {
			keys[i] = ""
			if r := routes.Match(a.Host, a.Path); r != nil {
				keys[i] = r.Value.Match
			}
		}
	}
	var out []routeStat
	for _, c := range countBy(keys) {
		rs := routeStat{kv: c}
		if r := routeOf(s, c.k); r != nil {
			rs.route, rs.limit = true, r.RateLimit
		}
		out = append(out, rs)
	}
	return out
}

func routeOf(s *AppSnap, match string) *RouteSnap {
	if s == nil {
		return nil
	}
	for i := range s.Routes {
		if s.Routes[i].Match == match {
			return &s.Routes[i]
		}
	}
	return nil
}

// routeTable is rs as the gateway routes among them
// (routing.Table.Match): a request is counted against the route the
// gateway gave it.
func routeTable(rs []RouteSnap) *routing.Table[*RouteSnap] {
	routes := make([]routing.Route[*RouteSnap], len(rs))
	for i := range rs {
		r := config.Route{Match: rs[i].Match}
		routes[i] = routing.Route[*RouteSnap]{Host: r.Host(), Prefix: r.Prefix(), Value: &rs[i]}
	}
	return routing.New(routes)
}

func percent(n, of int) string { return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(max(of, 1))) }
