package gateway_test

import (
	"net"
	"testing"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// The engines a gateway is served with, both behind the front's checks:
// "front", the public server as gatehouse runs it (its own loop for plain
// requests, net/http for the rest), and "net/http", the same server
// handing every request to net/http and the Gateway's ServeHTTP, which is
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
	_, addr := serveWith(t, gw, engineOptions(t, engine))
	return addr
}

// engineOptions are the front's options for engine.
func engineOptions(t testing.TB, engine string) front.Options {
	var opts front.Options
	switch engine {
	case "front":
	case "net/http":
		opts.Fallback = true
	default:
		t.Fatalf("no engine %q", engine)
	}
	return opts
}

// serveWith serves h with a front of opts on a loopback listener until the
// test ends, and returns the front and its address.
func serveWith(t testing.TB, h front.Handler, opts front.Options) (*front.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := front.New(h, opts)
	done := make(chan struct{})
	go func() { defer close(done); f.Serve(ln) }()
	t.Cleanup(func() { f.Close(); <-done })
	return f, ln.Addr().String()
}
