// Package probe owns startup and health checks of one address: an HTTP GET
// of the app's health path, or a TCP connect when it has none. Every result
// carries a detail string a person can act on ("403 Forbidden from GET /",
// "timeout after 2s", "connection refused on port 41873"); the supervisor
// decides what results mean for an instance's state.
package probe
