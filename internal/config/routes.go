package config

import "strings"

// Route is one entry of an app's routes: which requests are the app's,
// and what gatehouse does with them on the way. Written as a string it
// is Match alone ("/api/"); written as a block it adds the path changes,
// a redirect, a directory of static files, or route-level replacements
// for the app's edge keys (request_headers … compress): a key set here
// replaces the app's for requests this route takes, as a location block
// replaces a server block's directive in nginx.
type Route struct {
	// Match is "host/path-prefix", "/path-prefix" or "host/": the host
	// (without port, any case, a trailing dot ignored) and the path
	// prefix the request's path must start with; a prefix ending in "/"
	// also takes the path without it ("/admin/" takes "/admin", unless a
	// route "/admin" does), which apps serve as the same page. Required.
	Match string `yaml:"match" secret:"false"`
	// StripPrefix removes Match's path prefix (without its trailing
	// "/") from the path the app sees: with match "/api/", "/api/items"
	// reaches the app as "/items" and "/api/" as "/". Default false.
	StripPrefix bool `yaml:"strip_prefix" secret:"false"`
	// AddPrefix is put before the path the app sees (after strip_prefix
	// and rewrite), e.g. "/v1". No default.
	AddPrefix string `yaml:"add_prefix" secret:"false"`
	// Rewrite changes the path the app sees by a regular expression.
	// nil (absent) means no rewrite.
	Rewrite *Rewrite `yaml:"rewrite" secret:"false"`
	// Redirect answers every request of the route with a redirect,
	// without asking the app. nil (absent) means none.
	Redirect *Redirect `yaml:"redirect" secret:"false"`
	// Static serves the route from a directory instead of the app. nil
	// (absent) means the app answers.
	Static *Static `yaml:"static" secret:"false"`

	// RequestHeaders replaces the app's request_headers for this route.
	RequestHeaders *HeaderOps `yaml:"request_headers" secret:"false"`
	// ResponseHeaders replaces the app's response_headers for this route.
	ResponseHeaders *HeaderOps `yaml:"response_headers" secret:"false"`
	// SecurityHeaders replaces the app's security_headers for this route.
	SecurityHeaders string `yaml:"security_headers" secret:"false"`
	// Allow replaces the app's allow list for this route.
	Allow []string `yaml:"allow" secret:"false"`
	// Deny replaces the app's deny list for this route.
	Deny []string `yaml:"deny" secret:"false"`
	// RateLimit replaces the app's rate_limit for this route; "off"
	// turns it off here.
	RateLimit *RequestRateLimit `yaml:"rate_limit" secret:"false"`
	// BasicAuth replaces the app's basic_auth for this route; "off"
	// turns it off here.
	BasicAuth *BasicAuth `yaml:"basic_auth" secret:"false"`
	// ForwardAuth replaces the app's forward_auth for this route; "off"
	// turns it off here.
	ForwardAuth *ForwardAuth `yaml:"forward_auth" secret:"false"`
	// Compress replaces the app's compress for this route.
	Compress *Compress `yaml:"compress" secret:"false"`
}

// decodeScalar reads the string form of a route: its match alone.
func (r *Route) decodeScalar(s string) error {
	*r = Route{Match: s}
	return nil
}

// PlainRoutes makes routes of matches alone, as the string form does.
func PlainRoutes(matches ...string) []Route {
	out := make([]Route, len(matches))
	for i, m := range matches {
		out[i] = Route{Match: m}
	}
	return out
}

// Matches are the routes' match strings, in order.
func Matches(routes []Route) []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.Match
	}
	return out
}

// Host and Prefix split Match: "api.example.com/v1/" is host
// "api.example.com" (lower-cased) and prefix "/v1/"; "/api/" has no host.
func (r *Route) Host() string {
	h, _ := r.split()
	return h
}

// Prefix is Match's path prefix.
func (r *Route) Prefix() string {
	_, p := r.split()
	return p
}

// The host is lower-cased and loses a trailing dot, and an IPv6
// address its brackets, as the gateway does to a request's host before
// it compares the two: a route written "Example.com./" takes the
// requests for example.com, "[::1]/" those for [::1]:8080.
func (r *Route) split() (host, prefix string) {
	i := strings.IndexByte(r.Match, '/')
	if i < 0 {
		return routeHost(r.Match), "/"
	}
	return routeHost(r.Match[:i]), r.Match[i:]
}

func routeHost(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// key is what two routes that take the same requests have in common:
// their host as the gateway compares it, and their prefix with its
// repeated slashes merged, as the gateway matches it.
func (r *Route) key() string {
	host, prefix := r.split()
	return host + mergeSlashes(prefix)
}

// mergeSlashes makes each run of slashes in p one, as the gateway does
// to a route's prefix and to the paths it matches (http1.MergeSlashes;
// config imports nothing of the request path).
func mergeSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

// Rewrite is a route's rewrite: block: the path the app sees, changed by
// a regular expression.
type Rewrite struct {
	// From is a regular expression (Go's RE2 syntax) matched against the
	// decoded path after strip_prefix, and against that path as the
	// route read it (path parameters from ";" left out, slashes merged)
	// where the two differ, so that "/old;x/page" is rewritten as
	// "/old/page" is; a path it does not match is left as it is.
	// Required.
	From string `yaml:"from" secret:"false"`
	// To replaces the matched part: $1, ${name} name From's groups, as in
	// Go's Regexp.Expand. The result must start with "/". Required.
	To string `yaml:"to" secret:"false"`
}

// Redirect is a route's redirect: block.
type Redirect struct {
	// To is the Location: a URL or a path, in which {scheme}, {host},
	// {path} (the request's path after the route's prefix is taken off
	// when strip_prefix is set), {query} (with its "?", or empty) and
	// {uri} (path and query as the client sent them) are replaced.
	// Required, e.g. "https://www.example.com{uri}".
	To string `yaml:"to" secret:"false"`
	// Status is 301, 302, 303, 307 or 308. Default 308 (permanent,
	// keeping the method).
	Status int `yaml:"status" secret:"false"`
}

// Static is a route's static: block: a directory served as files, with
// conditional and range requests, precompressed siblings and no
// directory listing.
type Static struct {
	// Root is the directory, relative to the config file. Required.
	Root string `yaml:"root" secret:"false"`
	// Index are the files served for a directory's path. Default
	// ["index.html"].
	Index []string `yaml:"index" secret:"false"`
	// TryFiles are tried in order, as nginx's try_files: "$path" is the
	// request's path (after strip_prefix), "$path/" its directory; the
	// first that exists is served, and a last entry such as
	// "/index.html" is the fallback of a single-page app. Default: the
	// path alone.
	TryFiles []string `yaml:"try_files" secret:"false"`
	// CacheControl is the Cache-Control header of the files served, e.g.
	// "public, max-age=3600". No default: no header.
	CacheControl string `yaml:"cache_control" secret:"false"`
	// Precompressed serves NAME.br, NAME.zst or NAME.gz in place of NAME
	// when the client accepts that encoding, in the order listed: any of
	// "br", "zstd", "gzip". No default: none.
	Precompressed []string `yaml:"precompressed" secret:"false"`
	// AllowSymlinks follows symbolic links that lead out of root.
	// Default false: such a link is answered 404.
	AllowSymlinks bool `yaml:"allow_symlinks" secret:"false"`
}
