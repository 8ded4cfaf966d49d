package config

import (
	"fmt"
	"strings"
)

// HeaderOps is a request_headers: or response_headers: block: fields
// set, added or removed. Values may name {client_ip} (the client as
// trusted_proxies establishes it), {request_id}, {scheme}, {host},
// {method}, {path}, {uri} and {user} (the user basic_auth or
// forward_auth established, else empty). Removal comes first, then set,
// then add.
type HeaderOps struct {
	// Set replaces each named field with the value. No default.
	Set map[string]string `yaml:"set" secret:"env"`
	// Add appends the value to each named field, keeping what is there.
	// No default.
	Add map[string]string `yaml:"add" secret:"env"`
	// Remove deletes the named fields. A name ending in "*" removes every
	// field it is the prefix of ("X-Debug-*"). No default.
	Remove []string `yaml:"remove" secret:"false"`
}

// SecurityHeaders values.
const (
	SecurityOff   = "false"
	SecurityOn    = "true"
	SecurityForce = "force"
)

// RequestRateLimit is a rate_limit: block: a token bucket per client. Written
// "off" on a route, it turns the app's off there.
type RequestRateLimit struct {
	// Rate is how many requests a client may make, on average: "10/s",
	// "600/m", "1000/h" (decimals allowed). Required.
	Rate string `yaml:"rate" secret:"false"`
	// Burst is how many requests a client may make at once, above the
	// rate, before it is held to it. Default: the rate per second,
	// rounded up, and at least 1.
	Burst int `yaml:"burst" secret:"false"`
	// Key is who a bucket belongs to: "client_ip" (the client as
	// trusted_proxies establishes it), "header:NAME" (the value of a
	// request field; requests without it share one bucket; a NAME with
	// "_" is refused, as gatehouse drops such fields), or "user"
	// (the user basic_auth or forward_auth established; the client's
	// address when none). Default "client_ip".
	Key string `yaml:"key" secret:"false"`
	// MaxKeys bounds the table of buckets; past it the bucket used least
	// recently is forgotten (its client starts again with a full bucket).
	// Default 100000 (about 10 MiB).
	MaxKeys int `yaml:"max_keys" secret:"false"`
	// IPv6Prefix is how many leading bits of an IPv6 client's address
	// name its bucket (1 to 128), with key "client_ip" and with "user"
	// for a request without a user. A home or cloud line is given a
	// whole /64 and its host may take any address in it: keyed by
	// address, a client would escape its limit by changing address. 128
	// keys each address apart. An IPv4 client is keyed by its address,
	// also one written as IPv6 (IPv4-mapped, or by a NAT64 translator
	// under 64:ff9b::/96). Default 64.
	IPv6Prefix int `yaml:"ipv6_prefix" secret:"false"`

	// Off: written "off", the block turns the feature off where it is.
	Off bool `yaml:"-" secret:"false"`
}

func (r *RequestRateLimit) decodeScalar(s string) error { return decodeOff(s, &r.Off) }

// BasicAuth is a basic_auth: block: HTTP Basic authentication against
// bcrypt hashes (make one with `gatehouse hash-password`). A request
// without the right user name and password gets 401 auth_required (a
// wrong password after a second). Written "off" on a route, it turns the
// app's off there.
type BasicAuth struct {
	// Users maps each user name to its bcrypt hash ("$2a$…"). Required.
	Users map[string]string `yaml:"users" secret:"true"`
	// Realm is named in the browser's password prompt. Default
	// "restricted".
	Realm string `yaml:"realm" secret:"false"`

	// Off: written "off", the block turns the feature off where it is.
	Off bool `yaml:"-" secret:"false"`
}

func (b *BasicAuth) decodeScalar(s string) error { return decodeOff(s, &b.Off) }

// ForwardAuth is a forward_auth: block: each request is first asked
// about at an auth service (as Traefik's ForwardAuth, nginx's
// auth_request, Caddy's forward_auth), with the client's header fields
// but never its body. A 2xx answer lets the request through, with
// copy_headers copied from that answer; any other answer is sent to the
// client as it is (so a sign-in redirect works). Written "off" on a
// route, it turns the app's off there.
type ForwardAuth struct {
	// URL is the auth service's address, http:// or https://. Required.
	URL string `yaml:"url" secret:"false"`
	// Timeout bounds the auth service's answer; past it, or when it
	// cannot be reached, the client gets 503 auth_unavailable. Default 5s.
	Timeout Duration `yaml:"timeout" secret:"false"`
	// CopyHeaders are the fields of the auth service's 2xx answer set on
	// the request to the app (e.g. X-Auth-User, Remote-Groups). A field
	// the answer lacks is removed from the request, so that a client
	// cannot send its own. The first names the user (for {user}, the
	// access log and rate_limit key: user). No default.
	CopyHeaders []string `yaml:"copy_headers" secret:"false"`

	// Off: written "off", the block turns the feature off where it is.
	Off bool `yaml:"-" secret:"false"`
}

func (f *ForwardAuth) decodeScalar(s string) error { return decodeOff(s, &f.Off) }

// Compress is a compress: block: answers compressed on their way to the
// client, by Accept-Encoding. Written true, it is on with its defaults;
// false turns an app's off on a route.
type Compress struct {
	// Encodings are offered in this order of preference when the client
	// accepts several equally: any of "zstd", "br", "gzip". Default
	// ["zstd", "gzip", "br"]: brotli compresses on the fly at about
	// three times gzip's CPU for answers a few per cent smaller.
	Encodings []string `yaml:"encodings" secret:"false"`
	// Level is the compression level, 1 (fastest) to 9 (smallest), as
	// gzip's level, brotli's quality and zstd's four speeds; 0 means a
	// level fit for compressing on the fly (gzip 5, brotli 4, zstd's
	// default). Default 0.
	Level int `yaml:"level" secret:"false"`
	// MinSize is the smallest answer of known length compressed. Default
	// 1KiB.
	MinSize Size `yaml:"min_size" secret:"false"`
	// Types are the content types compressed: exact ("application/json")
	// or a family ("text/*"). Default: text, JSON, JavaScript, XML, SVG,
	// WebAssembly and the other common textual types.
	Types []string `yaml:"types" secret:"false"`

	// Off: written false, the block turns compression off where it is.
	Off bool `yaml:"-" secret:"false"`
}

func (c *Compress) decodeScalar(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "yes":
		*c = Compress{}
		return nil
	}
	if err := decodeOff(s, &c.Off); err != nil {
		return fmt.Errorf("must be true, false or a block, got %q", s)
	}
	return nil
}

func decodeOff(s string, off *bool) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "false", "no":
		*off = true
		return nil
	}
	return fmt.Errorf("must be \"off\" or a block, got %q", s)
}

// Edge is the edge keys in effect for a route: the route's own, else the
// app's.
type Edge struct {
	RequestHeaders  *HeaderOps
	ResponseHeaders *HeaderOps
	SecurityHeaders string
	Allow, Deny     []string
	RateLimit       *RequestRateLimit
	BasicAuth       *BasicAuth
	ForwardAuth     *ForwardAuth
	Compress        *Compress
}

// EdgeOf is the edge keys in effect for route r of app a. A block
// written "off" is nil here.
func EdgeOf(a *App, r *Route) Edge {
	e := Edge{
		RequestHeaders:  either(r.RequestHeaders, a.RequestHeaders),
		ResponseHeaders: either(r.ResponseHeaders, a.ResponseHeaders),
		SecurityHeaders: a.SecurityHeaders,
		Allow:           eitherList(r.Allow, a.Allow),
		Deny:            eitherList(r.Deny, a.Deny),
		RateLimit:       either(r.RateLimit, a.RateLimit),
		BasicAuth:       either(r.BasicAuth, a.BasicAuth),
		ForwardAuth:     either(r.ForwardAuth, a.ForwardAuth),
		Compress:        either(r.Compress, a.Compress),
	}
	if r.SecurityHeaders != "" {
		e.SecurityHeaders = r.SecurityHeaders
	}
	if e.SecurityHeaders == SecurityOff {
		e.SecurityHeaders = ""
	}
	if e.RateLimit != nil && e.RateLimit.Off {
		e.RateLimit = nil
	}
	if e.BasicAuth != nil && e.BasicAuth.Off {
		e.BasicAuth = nil
	}
	if e.ForwardAuth != nil && e.ForwardAuth.Off {
		e.ForwardAuth = nil
	}
	if e.Compress != nil && e.Compress.Off {
		e.Compress = nil
	}
	return e
}

// either is the route's block when it has one, else the app's.
func either[T any](route, app *T) *T {
	if route != nil {
		return route
	}
	return app
}

// eitherList is the route's list when it has one (an explicit [] too),
// else the app's.
func eitherList(route, app []string) []string {
	if route != nil {
		return route
	}
	return app
}
