package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate fills in the defaults that depend on the whole config (a lone
// app with no routes serves "/") and reports every semantic problem as
// Errors. Parse and Load call it; a caller that builds or changes a Config
// in code (flags overriding listen, say) calls it again.
func (c *Config) Validate() error {
	return c.validate(nil, nil, nil).err()
}

// validator collects semantic problems, placing each on the line its key
// path was written on, or on its parent's line for a missing key.
type validator struct {
	file   string
	pos    positions
	failed map[string]bool // paths the decoder already reported
	nulls  map[string]bool // paths written with no value (see decoder.nulls)
	errs   Errors
}

func (v *validator) errorf(path, format string, args ...any) {
	if v.decodeFailed(path) {
		return
	}
	v.errs = append(v.errs, &FieldError{File: v.file, Line: v.pos.line(path), Path: path, Msg: HideURLPasswords(fmt.Sprintf(format, args...))})
}

// decodeFailed reports whether path, or a key it lies under, was already
// reported by the decoder, whose message is then the one that helps.
func (v *validator) decodeFailed(path string) bool {
	for p := path; len(v.failed) > 0; p = parentPath(p) {
		if v.failed[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
	return false
}

// has reports whether path was written in the file with a value (as
// opposed to being a default), which decides between "missing" and "must
// not be empty".
func (v *validator) has(path string) bool {
	_, ok := v.pos[path]
	return ok && !v.nulls[path]
}

func (c *Config) validate(pos positions, failed, nulls map[string]bool) Errors {
	v := &validator{file: c.File, pos: pos, failed: failed, nulls: nulls}
	c.implicitRoutes()
	v.address("listen", c.Listen)
	v.address("admin", c.Admin)
	if c.DataDir == "" {
		v.errorf("data_dir", "must not be empty")
	}
	if c.SampleInterval < Duration(100*time.Millisecond) {
		v.errorf("sample_interval", "must be at least 100ms")
	}
	v.limits(&c.Limits, "limits")
	v.tls(c.TLS, "tls")
	v.listenerClash(c)
	v.trustedProxies(c, "trusted_proxies")
	if c.ShutdownDelay < 0 {
		v.errorf("shutdown_delay", "must be ≥ 0")
	}
	v.healthPrefix(c.HealthPrefix)
	v.logging(c)
	if len(c.Apps) == 0 {
		v.errorf("apps", "at least one app is required, e.g. apps: {web: {command: \"node server.js\"}}")
	}
	for _, name := range c.appNames() {
		v.app(c.Apps[name], "apps."+name, len(c.Apps), &c.Limits)
	}
	v.routeClaims(c)
	v.affinityCookies(c)
	v.alerts(c.Alerts, "alerts")
	v.tracing(c.Tracing, "tracing")
	v.dumps(&c.Dumps, "dumps")
	return v.errs
}

// appNames is Order when it lists every app, else the names sorted, so that
// problems are reported in a stable order either way.
func (c *Config) appNames() []string {
	if len(c.Order) == len(c.Apps) {
		return c.Order
	}
	names := make([]string, 0, len(c.Apps))
	for name := range c.Apps {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// implicitRoutes gives a lone app the whole URL space: with one app there
// is nothing to choose between, so requiring routes would be ceremony.
func (c *Config) implicitRoutes() {
	if len(c.Apps) != 1 {
		return
	}
	for _, app := range c.Apps {
		if app != nil && len(app.Routes) == 0 {
			app.Routes = PlainRoutes("/")
		}
	}
}

func (v *validator) address(path, addr string) {
	if _, port, err := net.SplitHostPort(addr); err != nil || !validPort(port) {
		v.errorf(path, "%q must be host:port, e.g. \":8080\" or \"127.0.0.1:9901\"", addr)
	}
}

// listenerClash reports two of gatehouse's own listeners (listen, admin,
// tls.listen) on one address: the second could not be bound, and
// gatehouse run would stop with "address already in use", held by
// itself. Port 0 (the kernel chooses) never clashes.
func (v *validator) listenerClash(c *Config) {
	type listener struct{ key, addr string }
	ls := []listener{{"listen", c.Listen}, {"admin", c.Admin}}
	if c.TLS != nil {
		ls = append(ls, listener{"tls.listen", c.TLS.Listen})
	}
	for i, b := range ls {
		for _, a := range ls[:i] {
			if !sameAddress(a.addr, b.addr) {
				continue
			}
			if !v.has(b.key) {
				// b is a default: the error is at what the user wrote.
				a, b = b, a
			}
			v.errorf(b.key, "%q is also %s's address (%q): each listener needs a port of its own", b.addr, a.key, a.addr)
			break
		}
	}
}

// sameAddress reports whether listening on a and on b would take the
// same port on an address both cover: same port, and the same host or
// one of them every address ("", "0.0.0.0" for IPv4, "::"). Ports and
// IP addresses are compared as numbers, as the kernel binds them:
// "08080" is 8080, and "0:0::0" is "::".
func sameAddress(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return false
	}
	na, err1 := strconv.Atoi(pa)
	nb, err2 := strconv.Atoi(pb)
	if err1 != nil || err2 != nil || na != nb || na == 0 {
		return false // a service name is not compared; 0 is a new port each time
	}
	ipa, erra := netip.ParseAddr(ha)
	ipb, errb := netip.ParseAddr(hb)
	ipa, ipb = ipa.Unmap(), ipb.Unmap() // "::ffff:10.0.0.1" is bound as 10.0.0.1
	everyV4 := func(ip netip.Addr, err error) bool { return err == nil && ip.Is4() && ip.IsUnspecified() }
	everyV6 := func(h string, ip netip.Addr, err error) bool {
		return h == "" || err == nil && ip.Is6() && ip.IsUnspecified()
	}
	switch {
	case erra == nil && errb == nil && ipa == ipb, strings.EqualFold(ha, hb):
		return true
	case everyV6(ha, ipa, erra), everyV6(hb, ipb, errb):
		return true
	case everyV4(ipa, erra):
		return errb != nil || ipb.Is4()
	case everyV4(ipb, errb):
		return erra != nil || ipa.Is4()
	}
	return false
}

// validPort accepts a numeric port, including 0 (let the kernel choose),
// or a service name, which net.Listen resolves.
func validPort(port string) bool {
	if port == "" {
		return false
	}
	if n, err := strconv.Atoi(port); err == nil {
		return n >= 0 && n <= 65535
	}
	return !strings.ContainsAny(port, " /")
}

// appName is what an app may be called: it prefixes instance ids (web-1),
// log file paths and metric labels, so it stays plain.
var appName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (v *validator) app(a *App, path string, napps int, top *Limits) {
	if a == nil {
		v.errorf(path, "app has no settings")
		return
	}
	if !appName.MatchString(a.Name) {
		v.errorf(path, "invalid app name %q: use lowercase letters, digits, \"-\" and \"_\", starting with a letter or digit", a.Name)
	}
	v.upstreamSchemes(a, path+".upstreams")
	v.source(a, path)
	if a.Instances < 1 || a.Instances > MaxInstances {
		v.errorf(path+".instances", "must be between 1 and %d, got %d", MaxInstances, a.Instances)
	}
	if n := a.MinReady; n != nil && (*n < 0 || *n > a.Instances && !a.External()) {
		v.errorf(path+".min_ready", "must be between 0 and instances (%d), got %d", a.Instances, *n)
	}
	v.health(&a.Health, path+".health")
	if a.External() && a.Health.RecycleAfter > 0 && v.has(path+".health.recycle_after") {
		v.errorf(path+".health.recycle_after", "only for an app with a command: an external pool's upstreams (upstreams:) have no process to recycle; leave it out")
	}
	v.positive(path+".start_timeout", a.StartTimeout)
	v.positive(path+".stop_timeout", a.StopTimeout)
	v.positive(path+".request_timeout", a.RequestTimeout)
	if a.QueueSize < 1 {
		v.errorf(path+".queue_size", "must be ≥ 1, got %d", a.QueueSize)
	}
	if a.MaxInflight < 0 {
		v.errorf(path+".max_inflight", "must be ≥ 0 (0: no limit), got %d", a.MaxInflight)
	}
	if a.MaxAttempts < 1 || a.MaxAttempts > 10 {
		v.errorf(path+".max_attempts", "must be between 1 and 10, got %d", a.MaxAttempts)
	}
	for k := range a.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			v.errorf(path+".env."+k, "invalid environment variable name %q", k)
		}
	}
	v.routes(a.Routes, path+".routes", napps)
	v.appEdge(a, path)
	v.appLimits(&a.Limits, top, path+".limits")
	v.upgrades(a.Upgrades, path+".upgrades")
	if a.AutoHeal != nil {
		v.autoHeal(a.AutoHeal, path+".auto_heal")
	}
	v.autoscale(a, path+".autoscale")
	v.upstreamTLS(a, path+".upstream_tls")
	v.dns(a, path+".dns")
	v.affinity(a, path)
}

// source checks that the app says where its instances come from: exactly
// one of a command to run or upstreams to proxy to.
func (v *validator) source(a *App, path string) {
	switch {
	case len(a.Command) > 0 && len(a.Upstreams) > 0:
		v.errorf(path+".upstreams", "command and upstreams are exclusive")
	case len(a.Upstreams) > 0:
		for i, u := range a.Upstreams {
			if IsDNSUpstream(u) {
				v.dnsUpstream(fmt.Sprintf("%s.upstreams[%d]", path, i), u)
				continue
			}
			v.upstream(fmt.Sprintf("%s.upstreams[%d]", path, i), u)
		}
		v.repeatedUpstreams(a.Upstreams, path+".upstreams")
	case len(a.Command) > 0:
		v.command(path+".command", a.Command)
	case v.has(path + ".command"):
		v.errorf(path+".command", "must not be empty")
	case v.has(path + ".upstreams"):
		v.errorf(path+".upstreams", "must not be empty")
	default:
		v.errorf(path, "missing command (or upstreams)")
	}
}

func (v *validator) command(path string, cmd Command) {
	if len(cmd) == 0 {
		v.errorf(path, "must not be empty")
		return
	}
	if strings.TrimSpace(cmd[0]) == "" {
		v.errorf(path+"[0]", "program name must not be empty")
	}
}

func (v *validator) upstream(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		v.errorf(path, "%q must be host:port, e.g. \"10.0.0.5:8080\"", addr)
	}
}

// repeatedUpstreams refuses an upstream listed twice: each entry is a
// member of its own, probed and balanced over, so a repeat would double
// its share of the requests unasked. Entries are compared as dialed:
// host names and schemes in any case, ports as numbers.
func (v *validator) repeatedUpstreams(ups []string, path string) {
	first := map[string]int{}
	for i, u := range ups {
		k, ok := upstreamKey(u)
		if !ok {
			continue // refused already as malformed
		}
		if j, seen := first[k]; seen {
			v.errorf(indexPath(path, i), "%q is upstreams[%d] again: list each upstream once", u, j)
			continue
		}
		first[k] = i
	}
}

// upstreamKey is what an upstreams: entry dials or looks up, for
// comparing entries written differently.
func upstreamKey(u string) (string, bool) {
	if IsDNSUpstream(u) {
		d, err := ParseDNSUpstream(u)
		if err != nil {
			return "", false
		}
		return fmt.Sprintf("dns srv=%t %s %d", d.SRV, strings.ToLower(d.Name), d.Port), true
	}
	host, port, err := net.SplitHostPort(u)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		return "", false
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return strings.ToLower(host) + " " + strconv.Itoa(n), true
}

func (v *validator) health(h *Health, path string) {
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		v.errorf(path+".path", "%q must start with \"/\"", h.Path)
	}
	v.positive(path+".interval", h.Interval)
	v.positive(path+".timeout", h.Timeout)
	v.atLeastOne(path+".unhealthy_threshold", h.UnhealthyThreshold)
	v.atLeastOne(path+".healthy_threshold", h.HealthyThreshold)
	if err := h.Status.check(); err != nil {
		v.errorf(path+".status", "%v", err)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.errorf(path, "must be > 0")
	}
}

func (v *validator) atLeastOne(path string, n int) {
	if n < 1 {
		v.errorf(path, "must be ≥ 1, got %d", n)
	}
}

// routeClaims reports a route claimed by two apps: the gateway could not
// tell which one a request is for.
func (v *validator) routeClaims(c *Config) {
	// By the route's key: "API.example.com/" and "api.example.com/" take
	// the same requests, which only the first app would get.
	owner := map[string]string{}
	for _, name := range c.appNames() {
		a := c.Apps[name]
		if a == nil {
			continue
		}
		for i, r := range a.Routes {
			if first, ok := owner[r.key()]; ok && first != name {
				v.errorf(fmt.Sprintf("apps.%s.routes[%d]", name, i), "route %q is already claimed by app %q", r.Match, first)
				continue
			}
			owner[r.key()] = name
		}
	}
}

func (v *validator) autoHeal(h *AutoHeal, path string) {
	switch h.Action {
	case ActionRecycle, ActionLogEvent, ActionDump:
		if len(h.Custom) > 0 {
			v.errorf(path+".custom", "only used with action: custom (action is %q)", h.Action)
		}
	case ActionCustom:
		if len(h.Custom) == 0 {
			v.errorf(path+".custom", "required with action: custom, e.g. [\"sh\", \"-c\", \"kill -USR2 {pid}\"]")
		} else {
			v.command(path+".custom", h.Custom)
		}
	default:
		v.errorf(path+".action", "%q must be one of recycle, log_event, custom, dump", h.Action)
	}
	switch {
	case h.Action != ActionDump && h.DumpKind != "":
		v.errorf(path+".dump_kind", "only used with action: dump (action is %q)", h.Action)
	case h.Action == ActionDump && h.DumpKind != "" && !slices.Contains(DumpKinds(), h.DumpKind):
		v.errorf(path+".dump_kind", "%q must be one of core, stacks, heap", h.DumpKind)
	}
	if m := h.MaxRecycles; m != nil {
		v.atLeastOne(path+".max_recycles.count", m.Count)
		v.positive(path+".max_recycles.per", m.Per)
	}
	v.triggers(&h.Triggers, path+".triggers")
}

func (v *validator) triggers(t *Triggers, path string) {
	if t.Memory != nil && t.Memory.PrivateBytes <= 0 {
		v.errorf(path+".memory.private_bytes", "must be > 0")
	}
	if t.Requests != nil {
		v.atLeastOne(path+".requests.count", t.Requests.Count)
		v.positive(path+".requests.interval", t.Requests.Interval)
	}
	for i, s := range t.SlowRequests {
		p := fmt.Sprintf("%s.slow_requests[%d]", path, i)
		v.positive(p+".time_taken", s.TimeTaken)
		v.atLeastOne(p+".count", s.Count)
		v.positive(p+".interval", s.Interval)
		v.pathPrefix(p+".path", s.Path)
	}
	for i, s := range t.StatusCodes {
		p := fmt.Sprintf("%s.status_codes[%d]", path, i)
		if s.Status == (StatusRange{}) {
			v.errorf(p+".status", "required, e.g. \"500-599\"")
		} else if err := s.Status.check(); err != nil {
			v.errorf(p+".status", "%v", err)
		}
		v.atLeastOne(p+".count", s.Count)
		v.positive(p+".interval", s.Interval)
		v.pathPrefix(p+".path", s.Path)
	}
}

// healthPrefix checks the path /livez and /readyz are served under on
// the public listeners: a path of its own, which no app can then have.
func (v *validator) healthPrefix(p string) {
	switch {
	case p == "":
	case !strings.HasPrefix(p, "/") || p == "/" || strings.HasSuffix(p, "/"):
		v.errorf("health_prefix", "%q must be a path such as \"/.gatehouse\": starting with \"/\", not ending with one", p)
	case strings.ContainsAny(p, "?#% \t"):
		v.errorf("health_prefix", "%q must be a plain path (no query, fragment, escapes or spaces)", p)
	}
}

func (v *validator) pathPrefix(path, prefix string) {
	switch {
	case prefix != "" && !strings.HasPrefix(prefix, "/"):
		v.errorf(path, "%q must start with \"/\"", prefix)
	case strings.Contains(prefix, ";"):
		// Matched as routes match, against paths without their
		// parameters: a prefix with one would match no request.
		v.errorf(path, "%q: leave out the path parameter (from \";\"): triggers match paths without them", prefix)
	}
}
