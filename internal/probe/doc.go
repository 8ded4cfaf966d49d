// Package probe owns startup and health checks of one address: an HTTP GET
// of the app's health path, or a TCP connect when it has none; over TLS
// (HTTPS, or a handshake) for an external pool with upstream_tls:. Every
// result carries a detail string a person can act on ("403 Forbidden from
// GET /", "timeout after 2s", "connection refused on port 41873",
// "certificate expired on 2026-11-30"); the supervisor decides what
// results mean for an instance's state.
package probe
