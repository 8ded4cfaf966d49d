package gateway_test

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestH2Floods is TestH2Hostile's floods, one at a time: each keeps a
// core busy, and run beside the other cases they would hold those past
// the idle timeout. A load test, serial and in the full suite only.
func TestH2Floods(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test: the full suite (without -short) runs it")
	}
	runH2Cases(t, h2Floods, 1, false)
}

var h2Floods = []h2Case{
	{name: "CONTINUATION flood", send: func(h *h2Raw) {
		blk := h.block(h.req("GET", "/flood")...)
		h.frame(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk})
		})
		field := h.block("x-flood", strings.Repeat("f", 1000))
		for range 10000 { // 10 MB, against a 64 KiB head limit
			if h.frame(func(w *http2.Framer) error { return w.WriteContinuation(1, false, field) }) != nil {
				return // the server closed
			}
		}
	}, want: connError(http2.ErrCodeProtocol)},
	// Control-frame floods, with a stream open (an idle connection is
	// closed after IdleTimeout whatever control frames it gets), then a
	// PING whose acknowledgement says the flood was read.
	{name: "SETTINGS flood", send: flood(func(w *http2.Framer) {
		w.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	}), settle: floodRead, result: survived,
		// Acknowledged, or, when the guard's budget is spent first,
		// closed or told to calm down.
		want: floodOutcomes, appFor: floodApp},
	{name: "PING flood", send: flood(func(w *http2.Framer) { w.WritePing(false, [8]byte{'f', 'l', 'o', 'o', 'd'}) }),
		settle: floodRead, result: survived,
		want: floodOutcomes, appFor: floodApp},
}

// floodN is how many frames a control-frame flood sends.
const floodN = 20000

// flood opens a POST on stream 1, sends floodN frames made by f and a
// PING saying "last", then ends the POST.
func flood(f func(w *http2.Framer)) func(h *h2Raw) {
	return func(h *h2Raw) {
		h.headers(1, false, h.req("POST", "/flood")...)
		h.burst(floodN, f)
		h.frame(func(w *http2.Framer) error { return w.WritePing(false, lastPing) })
		h.data(1, true, []byte("x"))
	}
}

var lastPing = [8]byte{'l', 'a', 's', 't'}

// floodOutcomes: the flood was read and answered, and the POST served;
// or the guard's budget was spent first and the connection closed, told
// to calm down or not.
var floodOutcomes = []string{"200 survived; next 200", "closed", "GOAWAY ENHANCE_YOUR_CALM"}

// floodApp: the app has the POST when the connection survived the flood,
// and nothing otherwise: the POST's body, after the flood, was never read.
func floodApp(outcome string) []string {
	if strings.Contains(outcome, "survived") {
		return []string{"POST /flood"}
	}
	return nil
}

// floodRead: the server acknowledged the flood's last PING and answered
// the POST, or the connection is going.
func floodRead(v *h2View) bool {
	return v.LastPingAck == lastPing && settled(1)(v) || v.Closed || v.GoAway
}

// survived: the POST's outcome and "survived" when the server read the
// whole flood and kept the connection; otherwise the connection's fate.
func survived(v *h2View) string {
	if v.Closed || v.GoAway {
		return v.outcome(0)
	}
	return v.outcome(1) + " survived"
}

// Rapid reset (CVE-2023-44487): a client that opens streams and resets
// each at once, never waiting for an answer, costs itself nothing. x/net
// runs at most MaxConcurrentStreams (250) handlers on a connection and
// ends one that queues more than four times that; the gateway must not
// forward thousands of requests for it to the app, nor keep goroutines
// once the connection is gone. net/http's server, given the same bytes,
// is measured beside it.
//
// A load test that counts the process's goroutines: serial, and in the
// full suite only.
func TestH2RapidReset(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test: the full suite (without -short) runs it")
	}
	const n = 3000
	for _, secure := range []bool{false, true} {
		t.Run(schemeOf(secure), func(t *testing.T) {
			app := newNetApp(t, nil)
			d := directWith(t, app.addr, h2Opts(secure), nil)
			base := runtime.NumGoroutine()
			peak := sampleGoroutines()
			got, took := rapidReset(t, d.addr, secure, n)
			maxG := peak()
			forwarded := len(app.settle(d))
			o := newOracle(t, h2Opts(false))
			oracleGot, _ := rapidReset(t, o.addr, false, n)
			t.Logf("%d HEADERS+RST_STREAM pairs in %v: %s; the app got %d requests; goroutines %d at the peak, %d before; net/http: %s, %d handled",
				n, took.Round(time.Millisecond), got, forwarded, maxG, base, oracleGot, len(o.seen()))
			if !slices.Contains([]string{"survived; next 200", "GOAWAY ENHANCE_YOUR_CALM"}, got) {
				t.Errorf("the connection: %q, want it to survive (and serve) or to be told to calm down", got)
			}
			// A stream's handler races x/net's serve loop, which cancels
			// it when the RST_STREAM right behind its HEADERS is read; the
			// gateway asks the app only while it has not (forward). The
			// race detector slows the handler's side more than x/net's
			// reading, and lets about twice as many through; the plain
			// run holds the tenth.
			limit := n / 10
			if raceEnabled {
				limit = n / 5
			}
			if forwarded > limit {
				t.Errorf("the app got %d of %d requests reset as they were sent; want no more than %d", forwarded, n, limit)
			}
			if grew := maxG - base; grew > 3*250 {
				t.Errorf("goroutines grew by %d during the attack; want at most 3 per stream the connection may run (750)", grew)
			}
			// Back to where they were, but for the app's goroutine on each
			// connection the gateway keeps to it, and the oracle's server.
			testutil.WaitFor(t, 5*time.Second, "goroutines back to where they were", func() bool {
				return runtime.NumGoroutine() <= base+int(app.conns.Load())+5
			})
			if after := afterwards(t, d.url, secure); after != "HTTP/2.0 200 ok" {
				t.Errorf("a well-formed request on a fresh connection afterwards: %q", after)
			}
		})
	}
}

// rapidReset opens n streams on a new connection to addr, resetting each
// right after its HEADERS, then asks whether the connection survived:
// "survived" and a request's outcome on it, or the connection's fate.
// The connection is closed before it returns.
func rapidReset(t *testing.T, addr string, secure bool, n int) (string, time.Duration) {
	h, err := dialH2(t, addr, secure)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	h.start()
	start := time.Now()
	var buf bytes.Buffer
	w := http2.NewFramer(&buf, nil)
	id := uint32(1)
	for i := range n {
		w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(h.req("GET", "/reset")...), EndStream: true, EndHeaders: true})
		w.WriteRSTStream(id, http2.ErrCodeCancel)
		id += 2
		if buf.Len() >= 32<<10 || i == n-1 {
			if h.raw(buf.Bytes()) != nil {
				break
			}
			buf.Reset()
		}
	}
	h.frame(func(w *http2.Framer) error { return w.WritePing(false, lastPing) })
	v, _ := h.await(h2Patience, func(v *h2View) bool { return v.LastPingAck == lastPing || v.Closed || v.GoAway })
	took := time.Since(start)
	if v.Closed || v.GoAway {
		return v.outcome(0), took
	}
	h.get(id, "/next")
	v, _ = h.await(h2Patience, settled(id))
	return "survived; next " + v.outcome(id), took
}

// sampleGoroutines samples the number of goroutines until the function
// it returns is called, which returns the largest number seen.
func sampleGoroutines() func() int {
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		peak := runtime.NumGoroutine()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
				peak = max(peak, runtime.NumGoroutine())
			}
		}
	}()
	return func() int { close(stop); return <-done }
}
