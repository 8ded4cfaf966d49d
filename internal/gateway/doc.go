// Package gateway owns the middle of the request path: routing by host and
// path prefix, forwarding with retries of the attempts the app never saw
// and holds while no instance is ready, affinity (a client kept on its
// instance by a cookie, affinity.go), classifying every failure into its
// cause, the answer gatehouse writes when it must answer instead of the
// app, and the access log entry of every request.
//
// A request arrives from one of two engines, both front-line HTTP/1.1 of
// package front: its own connection loop (ServeFront), or net/http for
// upgrades and other unusual requests (ServeHTTP, with
// httputil.ReverseProxy). Both reach the app through the same retry loop
// (forward.go) over package upstream's connection pools. Read a request's
// path top to bottom: servefront.go or servehttp.go, route.go,
// forward.go, body.go, then errorpage.go and finish in gateway.go.
//
// The gateway only reads pools: it picks members and counts its requests
// on them, and reports connection failures (passive ejection); the
// supervisor decides every state.
package gateway
