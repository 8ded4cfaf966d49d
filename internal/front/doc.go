// Package front owns gatehouse's client side of HTTP/1.1: the public
// listener's connections, reading and checking each request head before
// anything of it is forwarded, the limits on what a client may send and
// how slowly, answering on the connection, and watching whether the client
// is still there.
//
// Plain keep-alive requests are served by the package's own connection
// loop; every other well-formed request (an upgrade, Expect, a chunked
// body, HTTP/1.0, an absolute-form target) is handed, with the bytes
// already read, to a net/http.Server for that one request, after the same
// checks. What to do with a request is the Handler's: the package routes
// nothing and imports nothing of the gateway.
package front
