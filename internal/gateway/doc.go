// Package gateway owns the public listener's request path: routing by host
// and path prefix, forwarding through httputil.ReverseProxy, the retry of
// attempts the app never saw, holding requests while no instance is ready,
// and the response gatehouse writes when it must answer instead of the app.
//
// The gateway only reads pools: it picks members and counts its requests
// on them, and reports connection failures (passive ejection); the
// supervisor decides every state.
package gateway
