package config

import (
	"slices"
	"strings"
)

// Protocols of an app's upgrades key.
const (
	// UpgradeWebSocket is RFC 6455's protocol name, the default and
	// usually the only entry.
	UpgradeWebSocket = "websocket"
	// upgradeH2C is HTTP/2 over cleartext (RFC 7540 §3.2, removed in RFC
	// 9113), which is never forwarded: the app would then be spoken to in
	// HTTP/2 on a connection whose requests gatehouse no longer sees.
	upgradeH2C = "h2c"
)

// AllowsUpgrade reports whether a client may switch to proto on this app:
// one protocol of a request's Upgrade header ("websocket", "WebSocket",
// "websocket/13"), trimmed of white space. The name before any '/' is
// compared with each of Upgrades, ASCII case-insensitively; the version
// after it is not looked at. h2c is never allowed, even when Upgrades
// (set in code and not validated) lists it, and an App with nil Upgrades
// (not made by NewApp or a config file) allows nothing. It does not
// allocate: the gateway asks it once per Upgrade request.
func (a *App) AllowsUpgrade(proto string) bool {
	name := proto
	if i := strings.IndexByte(proto, '/'); i >= 0 {
		name = proto[:i]
	}
	if name == "" || asciiEqualFold(name, upgradeH2C) {
		return false
	}
	for _, p := range a.Upgrades {
		if asciiEqualFold(p, name) {
			return true
		}
	}
	return false
}

// upgrades checks an app's upgrades list: protocol names, each an HTTP
// token, without h2c and without repeats. An empty list is valid (no
// upgrade is forwarded).
func (v *validator) upgrades(protos []string, path string) {
	for i, p := range protos {
		ip := indexPath(path, i)
		name, version, versioned := strings.Cut(p, "/")
		switch {
		case asciiEqualFold(name, upgradeH2C):
			v.errorf(ip, "%q is never forwarded: a client could then speak HTTP/2 to the app past every route and limit (for HTTP/2 to gatehouse itself without TLS, set the top-level h2c: true)", p)
		case versioned && validToken(name) && validToken(version):
			v.errorf(ip, "%q: write the protocol name without its version, e.g. %q", p, name)
		case !validToken(p):
			v.errorf(ip, "%q is not a protocol name: use letters, digits and !#$%%&'*+-.^_`|~ only (an HTTP token), e.g. %q", p, UpgradeWebSocket)
		case slices.ContainsFunc(protos[:i], func(q string) bool { return asciiEqualFold(p, q) }):
			v.errorf(ip, "duplicate protocol %q", p)
		}
	}
}

// validToken reports whether s is an RFC 9110 token (1*tchar), as a
// protocol name must be. internal/http1 has the same check, but importing
// it would bring net/http into every reader of the config.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// asciiEqualFold is strings.EqualFold for protocol names: only A-Z fold,
// so that a name with a non-ASCII letter that Unicode folds to an ASCII
// one ("webſocket", with a long s) is not taken for an allowed protocol.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
