// Package gateway owns the middle of the request path: routing by host and
// path prefix, forwarding with retries of the attempts the app never saw
// and holds while no instance is ready, affinity (a client kept on its
// instance by a cookie, affinity.go), classifying every failure into its
// cause, the answer gatehouse writes when it must answer instead of the
// app, and the access log entry of every request.
//
// Every request arrives the same way, whatever its protocol: as a
// front.Exchange, served by Serve. Read a request's path top to bottom
// in serve.go, the coordinator: admit and route, then forward and answer
// (forward.go: the attempts, the app's answer copied, or tunnel.go for an
// upgrade the app accepted; failure.go and errorpage.go when gatehouse
// answers itself), then finish: the access entry, held by lateexit.go
// when the instance's process died under the request, until the
// supervisor records the exit (the answer does not wait for it).
//
// The gateway only reads pools: it picks members and counts its requests
// on them, and reports connection failures (passive ejection); the
// supervisor decides every state.
package gateway
