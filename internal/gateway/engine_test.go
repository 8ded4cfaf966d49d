package gateway_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// The protocols a client speaks to the gateway's front: HTTP/1.1 on a
// plain listener, HTTP/2 over TLS, and h2c (HTTP/2 with prior knowledge
// on a plain listener). Every request takes the one path, whatever its
// protocol, and tests of request semantics run on each.
var frontProtocols = []string{"h1", "h2", "h2c"}

func forEachFrontProtocol(t *testing.T, f func(t *testing.T, proto string)) {
	for _, p := range frontProtocols {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}

// forEachFrontProtocolInParallel is forEachFrontProtocol with the
// protocols' runs at once: for tests that mostly wait, each protocol's
// run with a gateway of its own.
func forEachFrontProtocolInParallel(t *testing.T, f func(t *testing.T, proto string)) {
	for _, p := range frontProtocols {
		t.Run(p, func(t *testing.T) { t.Parallel(); f(t, p) })
	}
}

// eachWireInParallel is eachWire with the wires' runs at once.
func eachWireInParallel(t *testing.T, wires []wire, f func(t *testing.T, w wire)) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) { t.Parallel(); f(t, w) })
	}
}

// serve serves gw on a loopback listener for proto until the test ends,
// and returns the address.
func serve(t testing.TB, proto string, gw *gateway.Gateway) string {
	t.Helper()
	_, addr := serveWith(t, gw, protoOptions(t, proto))
	return addr
}

// protoOptions are the front's options for a listener clients speak
// proto to.
func protoOptions(t testing.TB, proto string) front.Options {
	var opts front.Options
	switch proto {
	case "h1":
	case "h2":
		opts.TLS, _ = h2TLS()
	case "h2c":
		opts.H2C = true
	default:
		t.Fatalf("no protocol %q", proto)
	}
	return opts
}

// protoClient is a client speaking proto to a listener served with
// protoOptions; protoURL is the URL of addr for it.
func protoClient(t testing.TB, proto string) *http.Client {
	switch proto {
	case "h2":
		return h2Client(t, true)
	case "h2c":
		return h2Client(t, false)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func protoURL(proto, addr string) string {
	if proto == "h2" {
		return "https://" + addr
	}
	return "http://" + addr
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
