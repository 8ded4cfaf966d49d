// Package gateway owns the public listener's request path: the HTTP/1.1
// front (Front: its own loop for plain keep-alive requests, net/http with
// httputil.ReverseProxy for upgrades and everything unusual), routing by
// host and path prefix, the retry of attempts the app never saw, holding
// requests while no instance is ready, the upstream connection pools, and
// the response gatehouse writes when it must answer instead of the app.
//
// The gateway only reads pools: it picks members and counts its requests
// on them, and reports connection failures (passive ejection); the
// supervisor decides every state.
package gateway
