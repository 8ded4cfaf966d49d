package gateway_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/gateway"
)

// The engines a gateway is served with: "front", the public server
// gatehouse runs (its own loop for plain requests, net/http for the rest),
// and "net/http", an http.Server running the Gateway's ServeHTTP, which is
// the front's fallback. Tests of request semantics run on both.
var engines = []string{"front", "net/http"}

func forEachEngine(t *testing.T, f func(t *testing.T, engine string)) {
	for _, e := range engines {
		t.Run(e, func(t *testing.T) { f(t, e) })
	}
}

// serve serves gw on a loopback listener with engine until the test ends,
// and returns the address.
func serve(t testing.TB, engine string, gw *gateway.Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	switch engine {
	case "front":
		f := gateway.NewFront(gw, gateway.FrontOptions{})
		go func() { defer close(done); f.Serve(ln) }()
		t.Cleanup(func() { f.Close(); <-done })
	case "net/http":
		srv := &http.Server{Handler: gw}
		go func() { defer close(done); srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close(); <-done })
	default:
		t.Fatalf("no engine %q", engine)
	}
	return ln.Addr().String()
}
