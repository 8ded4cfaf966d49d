//go:build linux

package front

import (
	"bytes"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2cHello returns what an h2c client sends to be served one request
// (hello: the preface, its SETTINGS and a GET of path on stream 1) and
// how the server's bytes end once it has answered (answered: echoStub's
// body in the DATA frame that ends stream 1).
func h2cHello(path string) (hello, answered []byte) {
	var b, block bytes.Buffer
	b.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&b, nil)
	fr.WriteSettings()
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
	var a bytes.Buffer
	http2.NewFramer(&a, nil).WriteData(1, true, []byte("GET "+path))
	return b.Bytes(), a.Bytes()
}

// An idle HTTP/2 connection with prior knowledge (h2c), after one
// stream, costs the server the HPACK tables and the connection's state:
// at most 8 KiB of live heap and stacks (about 6 here). It holds neither
// the HTTP/1.1 buffers and request state its preface was read with
// (about 11 KiB more), nor a write buffer between answers, nor, once
// idle a moment, its read buffer (4 KiB more) and its reader goroutine
// (4 KiB more: it is parked).
func TestIdleH2CConnCost(t *testing.T) {
	if raceEnabled {
		t.Skip("a memory budget of the production build; -race's stacks are larger")
	}
	n := idleCostConns(t, 1000)
	needFiles(t, 2*n+100)
	const budget = 8 << 10
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(echoStub{}, Options{H2C: true})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	// One connection first, for what the server makes once.
	hello, answered := h2cHello("/idle")
	cs := openIdleWith(t, ln.Addr().String(), 1, string(hello), string(answered))
	before := memInUse()
	openIdleWith(t, ln.Addr().String(), n, string(hello), string(answered))
	// Each gives its read buffer back once idle for a moment (50 ms).
	var perConn float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		perConn = float64(int64(memInUse())-int64(before)) / float64(n)
		if perConn <= budget || time.Now().After(deadline) {
			break
		}
	}
	runtime.KeepAlive(cs)
	t.Logf("%d idle h2c connections: %.0f bytes each (heap objects + goroutine stacks)", n, perConn)
	if perConn > budget {
		t.Errorf("an idle h2c connection costs %.0f bytes; the budget is %d", perConn, budget)
	}
}
