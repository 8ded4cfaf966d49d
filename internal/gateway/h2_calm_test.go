package gateway_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// An HTTP/2 client that floods frames asking for no request, and never
// reads what it is sent, is told to calm down (GOAWAY
// ENHANCE_YOUR_CALM) and its connection closed within calmBound of the
// flood's start, over h2c and over TLS, for each kind of frame; a client
// on another connection is served meanwhile.
func TestH2FloodThatNeverReadsIsToldToCalmDown(t *testing.T) {
	parallelUnlessRace(t)
	cases := []struct {
		name string
		// open writes what comes before the flood; frame one frame of
		// it (the i-th).
		open  func(w *http2.Framer)
		frame func(w *http2.Framer, i int)
	}{
		{name: "SETTINGS", frame: func(w *http2.Framer, _ int) {
			w.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
		}},
		{name: "PING", frame: func(w *http2.Framer, _ int) { w.WritePing(false, [8]byte{'f', 'l', 'o', 'o', 'd'}) }},
		{name: "WINDOW_UPDATE", frame: func(w *http2.Framer, _ int) { w.WriteWindowUpdate(0, 1) }},
		{name: "PRIORITY", frame: func(w *http2.Framer, _ int) {
			w.WritePriority(3, http2.PriorityParam{Weight: 15})
		}},
		{name: "empty DATA", open: func(w *http2.Framer) { requestOn1(w, "POST", false) },
			frame: func(w *http2.Framer, _ int) { w.WriteData(1, false, nil) }},
		{name: "empty HEADERS", frame: func(w *http2.Framer, i int) {
			w.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), EndHeaders: true, EndStream: true})
		}},
		{name: "empty CONTINUATION", open: func(w *http2.Framer) { requestOn1(w, "GET", true) },
			frame: func(w *http2.Framer, _ int) { w.WriteContinuation(1, false, nil) }},
	}
	for _, secure := range []bool{false, true} {
		t.Run(schemeOf(secure), func(t *testing.T) {
			parallelUnlessRace(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					parallelUnlessRace(t)
					f, addr := calmFront(t, secure)
					good := goodClient(t, addr, secure)
					got := floodNeverReading(t, addr, secure, c.open, c.frame)
					served := good.stop()
					t.Logf("%s; the other client: %s", got, served)
					if !got.goAway || got.code != http2.ErrCodeEnhanceYourCalm {
						t.Errorf("the flooding connection: %s; want GOAWAY ENHANCE_YOUR_CALM", got)
					}
					if !got.closed || got.closedAfter > calmBound {
						t.Errorf("the flooding connection: %s; want it closed within %v of the flood's start", got, calmBound)
					}
					served.check(t)
					if n := f.H2FloodsEnded(); n != 1 {
						t.Errorf("H2FloodsEnded = %d, want 1", n)
					}
				})
			}
		})
	}
}

// A client that reads what it is sent, so that the answers to its flood
// never pile up, is told to calm down all the same: SETTINGS and PING
// each make the server answer.
func TestH2FloodThatReadsIsToldToCalmDown(t *testing.T) {
	parallelUnlessRace(t)
	cases := []struct {
		name  string
		frame func(w *http2.Framer)
	}{
		{name: "SETTINGS", frame: func(w *http2.Framer) {
			w.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
		}},
		{name: "PING", frame: func(w *http2.Framer) { w.WritePing(false, [8]byte{'f', 'l', 'o', 'o', 'd'}) }},
	}
	for _, secure := range []bool{false, true} {
		t.Run(schemeOf(secure), func(t *testing.T) {
			parallelUnlessRace(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					parallelUnlessRace(t)
					f, addr := calmFront(t, secure)
					good := goodClient(t, addr, secure)
					h, err := dialH2(t, addr, secure)
					if err != nil {
						t.Fatal(err)
					}
					if err := h.start(); err != nil {
						t.Fatal(err)
					}
					// A stream open, so that the connection is not idle.
					h.headers(1, false, h.req("POST", "/flood")...)
					start := time.Now()
					sent := 0
					for time.Since(start) < calmBound {
						if v, _ := h.await(0, func(v *h2View) bool { return v.GoAway || v.Closed }); v.GoAway || v.Closed {
							break
						}
						if h.burst(1000, c.frame) != nil {
							break
						}
						sent += 1000
					}
					v, _ := h.await(calmBound, func(v *h2View) bool { return v.Closed })
					took := time.Since(start)
					served := good.stop()
					t.Logf("%d frames sent; %d PING and %d SETTINGS acknowledged; GOAWAY %v %v; closed %v after %v; the other client: %s",
						sent, v.PingAcks, v.SettingsAcks, v.GoAway, v.GoAwayCode, v.Closed, took.Round(time.Millisecond), served)
					if !v.GoAway || v.GoAwayCode != http2.ErrCodeEnhanceYourCalm || !v.Closed || took > calmBound {
						t.Errorf("GOAWAY %v %v, closed %v after %v; want GOAWAY ENHANCE_YOUR_CALM and closed within %v",
							v.GoAway, v.GoAwayCode, v.Closed, took, calmBound)
					}
					served.check(t)
					if n := f.H2FloodsEnded(); n != 1 {
						t.Errorf("H2FloodsEnded = %d, want 1", n)
					}
				})
			}
		})
	}
}

// calmBound bounds how long a flooding or rapidly resetting connection
// lasts: the front tells it to calm down within a few thousand frames,
// and closes it a second or two after.
const calmBound = 4 * time.Second

// requestOn1 writes a request for /flood on stream 1: a POST whose body
// is to follow, or (open) a header block to be continued.
func requestOn1(w *http2.Framer, method string, open bool) {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for _, f := range [][2]string{{":method", method}, {":scheme", "http"}, {":authority", "x"}, {":path", "/flood"}} {
		e.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.Bytes(), EndHeaders: !open, EndStream: open})
}

// calmFront is a front and gateway (h2c, or TLS) before an app that
// answers 200 "ok".
func calmFront(t *testing.T, secure bool) (*front.Server, string) {
	app := newNetApp(t, nil)
	gw, _ := oneMember(t, app.addr, nil, gateway.Options{})
	return serveWith(t, gw, h2Opts(secure))
}

// flooded is what a flooding client saw of its connection.
type flooded struct {
	frames      int // sent
	goAway      bool
	code        http2.ErrCode
	last        uint32 // the GOAWAY's last stream
	closed      bool   // the server closed the connection
	closedAfter time.Duration
	readErr     string
}

func (f flooded) String() string {
	return fmt.Sprintf("%d frames sent; GOAWAY %v %v last %d; closed %v after %v %s", f.frames, f.goAway, f.code, f.last,
		f.closed, f.closedAfter.Round(time.Millisecond), f.readErr)
}

// floodNeverReading connects to addr, writes the preface, its SETTINGS,
// open's frames and then frame's, as fast as the connection takes them
// and without reading, until a write fails or floodFor passes; then it
// reads what the server sent, until the connection closes or a second
// passes.
func floodNeverReading(t *testing.T, addr string, secure bool, open func(w *http2.Framer), frame func(w *http2.Framer, i int)) flooded {
	const floodFor = 3 * time.Second
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if secure {
		_, cfg := h2TLS()
		tc := tls.Client(c, cfg.Clone())
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		c = tc
	}
	var got flooded
	var buf bytes.Buffer
	w := http2.NewFramer(&buf, nil)
	w.AllowIllegalWrites = true
	buf.WriteString(http2.ClientPreface)
	w.WriteSettings()
	if open != nil {
		open(w)
	}
	start := time.Now()
	for time.Since(start) < floodFor {
		for buf.Len() < 32<<10 {
			frame(w, got.frames)
			got.frames++
		}
		c.SetWriteDeadline(time.Now().Add(floodFor))
		if _, err := c.Write(buf.Bytes()); err != nil {
			break
		}
		buf.Reset()
	}
	c.SetDeadline(time.Now().Add(time.Second))
	r := http2.NewFramer(nil, c)
	for {
		f, err := r.ReadFrame()
		if err != nil {
			var ne net.Error
			got.closed = !(errors.As(err, &ne) && ne.Timeout())
			if !errors.Is(err, io.EOF) {
				got.readErr = err.Error()
			}
			break
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			got.goAway, got.code, got.last = true, g.ErrCode, g.LastStreamID
		}
	}
	got.closedAfter = time.Since(start)
	return got
}

// goodRun is a well-behaved client's requests, one after the other, on
// a connection of its own.
type goodRun struct {
	quit chan struct{}
	done chan struct{}
	mu   sync.Mutex
	ok   int
	bad  []string
}

// goodClient asks addr for /good, again and again, until stop.
func goodClient(t *testing.T, addr string, secure bool) *goodRun {
	g := &goodRun{quit: make(chan struct{}), done: make(chan struct{})}
	cl := h2Client(t, secure)
	url := schemeOf(secure) + "://" + addr + "/good"
	go func() {
		defer close(g.done)
		// A request every few milliseconds, not back to back: the
		// floods, not this client, are to keep the cores busy.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-g.quit:
				return
			case <-tick.C:
			}
			resp, err := cl.Get(url)
			var out string
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(b) != "ok" {
					out = fmt.Sprintf("%d %q", resp.StatusCode, b)
				}
			} else {
				out = err.Error()
			}
			g.mu.Lock()
			if out == "" {
				g.ok++
			} else {
				g.bad = append(g.bad, out)
			}
			g.mu.Unlock()
		}
	}()
	t.Cleanup(func() { g.stop() })
	return g
}

// goodSeen is what the well-behaved client got.
type goodSeen struct {
	ok  int
	bad []string
}

func (g goodSeen) String() string {
	return fmt.Sprintf("%d answered, %d failed %q", g.ok, len(g.bad), g.bad)
}

// check: every request answered, and one at least.
func (g goodSeen) check(t *testing.T) {
	t.Helper()
	if g.ok == 0 || len(g.bad) > 0 {
		t.Errorf("a well-behaved client on another connection meanwhile: %s; want every request answered", g)
	}
}

// stop ends the client's loop after its current request.
func (g *goodRun) stop() goodSeen {
	select {
	case <-g.quit:
	default:
		close(g.quit)
	}
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	return goodSeen{g.ok, g.bad}
}

// A client that opens streams and resets each at once, reading what it
// is sent, is told to calm down before it has opened 500 streams, and its
// connection closed; few of its requests reach the app, and a client on
// another connection is served meanwhile. Without the bound its
// connection went on for as long as it kept resetting.
func TestH2RapidResetIsToldToCalmDown(t *testing.T) {
	parallelUnlessRace(t)
	for _, secure := range []bool{false, true} {
		t.Run(schemeOf(secure), func(t *testing.T) {
			parallelUnlessRace(t)
			app := newNetApp(t, nil)
			gw, m := oneMember(t, app.addr, nil, gateway.Options{})
			f, addr := serveWith(t, gw, h2Opts(secure))
			good := goodClient(t, addr, secure)
			h, err := dialH2(t, addr, secure)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.start(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			pairs, id := 0, uint32(1)
			var buf bytes.Buffer
			w := http2.NewFramer(&buf, nil)
			for time.Since(start) < calmBound {
				if v, _ := h.await(0, func(v *h2View) bool { return v.GoAway || v.Closed }); v.GoAway || v.Closed {
					break
				}
				for range 50 {
					w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(h.req("GET", "/reset")...), EndStream: true, EndHeaders: true})
					w.WriteRSTStream(id, http2.ErrCodeCancel)
					id += 2
					pairs++
				}
				if h.raw(buf.Bytes()) != nil {
					break
				}
				buf.Reset()
			}
			v, _ := h.await(calmBound, func(v *h2View) bool { return v.Closed })
			took := time.Since(start)
			served := good.stop()
			testutil.WaitFor(t, 5*time.Second, "the gateway done with the app", func() bool { return m.Inflight() == 0 })
			reached := 0
			for _, q := range app.received() {
				if q.RequestURI == "/reset" {
					reached++
				}
			}
			t.Logf("%d HEADERS+RST_STREAM pairs; GOAWAY %v %v last %d; closed %v after %v; the app got %d of them; the other client: %s",
				pairs, v.GoAway, v.GoAwayCode, v.GoAwayLast, v.Closed, took.Round(time.Millisecond), reached, served)
			if !v.GoAway || v.GoAwayCode != http2.ErrCodeEnhanceYourCalm || v.GoAwayLast >= 1000 {
				t.Errorf("GOAWAY %v %v last stream %d; want ENHANCE_YOUR_CALM before stream 1000", v.GoAway, v.GoAwayCode, v.GoAwayLast)
			}
			if !v.Closed || took > calmBound {
				t.Errorf("the connection closed %v, after %v; want closed within %v of the attack's start", v.Closed, took, calmBound)
			}
			// The connection may reset at most 300 streams as they open
			// (the front's budget), each a request the app may have been
			// sent.
			if reached > 300 {
				t.Errorf("the app got %d requests for reset streams; want at most 300", reached)
			}
			served.check(t)
			if n := f.H2RapidResetsEnded(); n != 1 {
				t.Errorf("H2RapidResetsEnded = %d, want 1", n)
			}
		})
	}
}

// received is what the app has received so far.
func (a *netApp) received() []seenReq {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

// A connection ended for a flood is counted on /metrics, where an
// operator's alert sees it.
func TestH2FloodCountedInMetrics(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts gatehouse with the fault app")
	}
	cfg, _ := harness.FaultApp(t, 1)
	cfg.H2C = true
	g := harness.Start(t, cfg)
	waitReady(t, g, 1)
	u, _ := url.Parse(g.URL)
	got := floodNeverReading(t, u.Host, false, nil, func(w *http2.Framer, _ int) {
		w.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	})
	if !got.goAway || got.code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("the flooding connection: %s; want GOAWAY ENHANCE_YOUR_CALM", got)
	}
	resp, err := http.Get(g.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`gatehouse_h2_connections_ended_total{reason="flood"} 1`, `gatehouse_h2_connections_ended_total{reason="rapid_reset"} 0`, "gatehouse_buffered_bytes 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
