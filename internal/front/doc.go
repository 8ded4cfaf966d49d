// Package front owns gatehouse's client side of HTTP/1.1: the public
// listener's connections, reading and checking each request head before
// anything of it is forwarded, the limits on what a client may send and
// how slowly, answering on the connection, and watching whether the client
// is still there.
//
// Every HTTP/1.x request is served by the package's own connection loop
// (conn.go): chunked bodies, Expect: 100-continue, HTTP/1.0, absolute-form
// targets and upgrades (whose connection it hands over, Exchange.Tunnel)
// included. HTTP/2, over TLS or h2c, is served by package h2, and each
// stream is checked as a head is (stream.go); a guard on the
// connection ends a client that floods it with frames asking for nothing
// or resets its streams as it opens them (h2guard.go). Either way the
// Handler gets one Exchange type; what to do with a request is the
// Handler's: the package routes nothing and imports nothing of the
// gateway.
package front
