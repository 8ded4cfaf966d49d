package gateway_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// HTTP/2 by hand: a client that writes whatever frames a test says,
// malformed ones included, and records every frame the server sends back.
// The gateway's HTTP/2 parser is golang.org/x/net/http2's; these helpers
// are for checking what it lets through to the app, and that it answers a
// hostile client as net/http's own HTTP/2 server (the oracle) does.

// h2TLS is a server config offering h2 with net/http's test certificate
// (for 127.0.0.1), and a client config that trusts it and asks for h2.
var h2TLS = sync.OnceValues(func() (server, client *tls.Config) {
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS()
	cert, leaf := ts.TLS.Certificates[0], ts.Certificate()
	ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"h2"}}
})

// h2Client is an HTTP/2 client: h2c with prior knowledge, or over TLS
// (trusting h2TLS's certificate) when secure.
func h2Client(t testing.TB, secure bool) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), ForceAttemptHTTP2: true}
	if secure {
		_, tr.TLSClientConfig = h2TLS()
		tr.TLSClientConfig = tr.TLSClientConfig.Clone()
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func schemeOf(secure bool) string {
	if secure {
		return "https"
	}
	return "http"
}

// oracle is net/http's own HTTP/2 server (h2c with prior knowledge),
// configured as the front configures x/net's (the same header limit and
// idle timeout), whose handler records what it is handed.
type oracle struct {
	addr string
	mu   sync.Mutex
	reqs []seenReq
}

// newOracle serves recordingHandler on loopback until the test ends,
// limited as the front with opts limits x/net's server.
func newOracle(t testing.TB, opts front.Options) *oracle {
	o := &oracle{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:        recordingHandler(o.record),
		Protocols:      new(http.Protocols),
		MaxHeaderBytes: cmpOr(opts.HeadLimit, 64<<10),
		IdleTimeout:    cmpOr(opts.KeepaliveTimeout, 2*time.Minute),
		ErrorLog:       quietLog(),
	}
	srv.Protocols.SetUnencryptedHTTP2(true)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	o.addr = ln.Addr().String()
	return o
}

func cmpOr[T comparable](v, dflt T) T {
	var zero T
	if v == zero {
		return dflt
	}
	return v
}

func (o *oracle) record(q seenReq) {
	o.mu.Lock()
	o.reqs = append(o.reqs, q)
	o.mu.Unlock()
}

func (o *oracle) seen() []seenReq {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.reqs)
}

// seenReq is a request as a net/http handler was handed it: by the app's
// server (an HTTP/1.1 request from the gateway) or by the oracle's (the
// HTTP/2 request itself).
type seenReq struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	Body       string
	BodyErr    string
	Trailer    http.Header
	Proto      string
}

func (q seenReq) String() string { return q.Method + " " + q.RequestURI }

// recordingHandler reads each request's body, records the request, and
// answers 200 "ok" (400 when the body broke).
func recordingHandler(record func(seenReq)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		q := seenReq{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(),
			Body: string(body), Trailer: r.Trailer.Clone(), Proto: r.Proto}
		if err != nil {
			q.BodyErr = err.Error()
		}
		record(q)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
}

// netApp is an app served by net/http's HTTP/1.1 server, recording what
// it parsed of each request the gateway forwarded.
type netApp struct {
	addr string
	mu   sync.Mutex
	reqs []seenReq
	// conns counts the connections the app's server has open, each
	// served by a goroutine of this process.
	conns atomic.Int64
}

// newNetApp starts an app that records each request and then serves it
// with answer (nil: recordingHandler's 200 "ok").
func newNetApp(t testing.TB, answer http.HandlerFunc) *netApp {
	a := &netApp{}
	var h http.Handler = recordingHandler(a.record)
	if answer != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.record(seenReq{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Proto: r.Proto})
			answer(w, r)
		})
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = quietLog()
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			a.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			a.conns.Add(-1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	a.addr = ts.Listener.Addr().String()
	return a
}

func (a *netApp) record(q seenReq) {
	a.mu.Lock()
	a.reqs = append(a.reqs, q)
	a.mu.Unlock()
}

// settle waits (boundedly) for the gateway to be done with every request
// (quiesce), and a moment more for a forward racing the client's reset,
// then returns what the app saw.
func (a *netApp) settle(d *direct) []seenReq {
	quiesce(d, 3*time.Second, nil, 30*time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

func (a *netApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

// h2Raw is one hand-driven HTTP/2 client connection. Writes go through
// w (under wmu: the reader acknowledges the server's SETTINGS); a reader
// goroutine records every frame the server sends in view.
type h2Raw struct {
	c    net.Conn
	wmu  sync.Mutex
	w    *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	// scheme is what the requests' :scheme says.
	scheme string
	// sent counts the DATA bytes sendBody sent, by stream (0: all).
	sent map[uint32]int64

	// wrote is closed by the connection's first write. Over TLS the
	// server sends its SETTINGS as soon as the handshake is done, before
	// the client has written anything: the reader acknowledges them only
	// after the client's first write (the preface, or a raw case's bytes),
	// which must come first on the connection.
	wrote     chan struct{}
	wroteOnce sync.Once
	quit      chan struct{} // closed by close: the reader waits no more
	closeOnce sync.Once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every frame read
	view    h2View
	done    chan struct{} // the reader stopped
}

// h2View is everything the server sent on the connection.
type h2View struct {
	Streams      map[uint32]*h2Stream
	GoAway       bool
	GoAwayCode   http2.ErrCode
	GoAwayLast   uint32
	GoAwayDebug  string
	Closed       bool // the server closed the connection (or reset it)
	ReadErr      string
	PingAcks     int
	LastPingAck  [8]byte
	SettingsAcks int
	Frames       int
	// Settings are the server's last SETTINGS values.
	Settings map[http2.SettingID]uint32
	// Credit is the flow-control credit the server gave by WINDOW_UPDATE,
	// by stream (0: the connection).
	Credit map[uint32]int64
}

// h2Stream is what the server sent on one stream.
type h2Stream struct {
	Status  int
	Header  http.Header
	Body    []byte
	Trailer http.Header
	Ended   bool // END_STREAM
	Reset   bool
	Code    http2.ErrCode
}

// dialH2 opens a connection to addr (over TLS with ALPN h2 when secure)
// and starts reading it; the test's end closes it and waits for the
// reader. Nothing is written yet: start sends the preface.
func dialH2(t testing.TB, addr string, secure bool) (*h2Raw, error) {
	var cfg *tls.Config
	if secure {
		_, cfg = h2TLS()
	}
	r, err := testutil.DialH2(t, addr, cfg)
	if err != nil {
		return nil, err
	}
	h := &h2Raw{c: r.Conn, scheme: schemeOf(secure), sent: map[uint32]int64{}, changed: make(chan struct{}), done: make(chan struct{}),
		wrote: make(chan struct{}), quit: make(chan struct{})}
	h.view.Streams = map[uint32]*h2Stream{}
	h.w = r.Framer // its writing side: read reads with a framer of its own
	h.w.AllowIllegalWrites = true
	h.enc = hpack.NewEncoder(&h.hbuf)
	go h.read()
	t.Cleanup(h.close)
	return h, nil
}

func (h *h2Raw) close() {
	h.closeOnce.Do(func() { close(h.quit) })
	h.c.Close()
	<-h.done
}

// written notes a write on the connection (under wmu).
func (h *h2Raw) written() { h.wroteOnce.Do(func() { close(h.wrote) }) }

// start writes the client preface and SETTINGS, and waits for the
// server's SETTINGS, which the reader acknowledges: a test's frames then
// follow the acknowledgement, which cannot fall inside a header block the
// test leaves open. The client's receive windows are 1 GiB, never
// replenished: the server never waits for the client to read.
func (h *h2Raw) start() error {
	if err := h.raw([]byte(http2.ClientPreface)); err != nil {
		return err
	}
	err := h.frame(func(w *http2.Framer) error {
		if err := w.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30}); err != nil {
			return err
		}
		return w.WriteWindowUpdate(0, 1<<30-65535)
	})
	if err != nil {
		return err
	}
	if _, ok := h.await(h2Patience, func(v *h2View) bool { return v.Settings != nil || v.Closed }); !ok {
		return errors.New("no SETTINGS from the server")
	}
	return nil
}

// raw writes b as it is.
func (h *h2Raw) raw(b []byte) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	_, err := h.c.Write(b)
	h.written()
	return err
}

// frame writes one frame with the framer.
func (h *h2Raw) frame(f func(w *http2.Framer) error) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	defer h.written()
	return f(h.w)
}

// burst writes n frames made by f, in as few writes as it can.
func (h *h2Raw) burst(n int, f func(w *http2.Framer)) error {
	var buf bytes.Buffer
	w := http2.NewFramer(&buf, nil)
	w.AllowIllegalWrites = true
	for i := range n {
		f(w)
		if buf.Len() >= 64<<10 || i == n-1 {
			if err := h.raw(buf.Bytes()); err != nil {
				return err
			}
			buf.Reset()
		}
	}
	return nil
}

// block hpack-encodes fields, given as name, value pairs, with the
// connection's encoder: its dynamic table is the server's decoder's peer.
func (h *h2Raw) block(fields ...string) []byte {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(h.hbuf.Bytes())
}

// headers writes one HEADERS frame with END_HEADERS carrying fields.
func (h *h2Raw) headers(id uint32, endStream bool, fields ...string) error {
	blk := h.block(fields...)
	return h.frame(func(w *http2.Framer) error {
		return w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: endStream, EndHeaders: true})
	})
}

func (h *h2Raw) data(id uint32, endStream bool, b []byte) error {
	return h.frame(func(w *http2.Framer) error { return w.WriteData(id, endStream, b) })
}

// sendBody writes b as DATA frames of at most 16 KiB on stream id within
// the server's flow-control windows, waiting for its WINDOW_UPDATEs, and
// ends the stream when end is set.
func (h *h2Raw) sendBody(id uint32, end bool, b []byte) error {
	for first := true; first || len(b) > 0; first = false {
		n := min(len(b), 16<<10)
		if _, ok := h.await(h2Patience, func(v *h2View) bool { return v.Closed || h.window(v, id) >= int64(n) }); !ok {
			return errors.New("no flow-control credit from the server")
		}
		h.sent[0] += int64(n)
		h.sent[id] += int64(n)
		if err := h.data(id, end && n == len(b), b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// window is what the server lets the client send on stream id now.
func (h *h2Raw) window(v *h2View, id uint32) int64 {
	initial := int64(65535)
	if w, ok := v.Settings[http2.SettingInitialWindowSize]; ok {
		initial = int64(w)
	}
	conn := 65535 + v.Credit[0] - h.sent[0]
	return min(conn, initial+v.Credit[id]-h.sent[id])
}

// req is the fields of a request: its pseudo-header fields, then extra
// (name, value pairs).
func (h *h2Raw) req(method, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", h.scheme, ":authority", "x", ":path", path}, extra...)
}

// get writes a well-formed GET of path on stream id.
func (h *h2Raw) get(id uint32, path string) error { return h.headers(id, true, h.req("GET", path)...) }

// read records frames until the connection ends.
func (h *h2Raw) read() {
	defer close(h.done)
	r := http2.NewFramer(nil, h.c)
	r.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.MaxHeaderListSize = 16 << 20
	for {
		f, err := r.ReadFrame()
		if err != nil {
			h.update(func(v *h2View) {
				v.Closed = true
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					v.ReadErr = err.Error()
				}
			})
			return
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			select {
			case <-h.wrote:
				h.frame(func(w *http2.Framer) error { return w.WriteSettingsAck() })
			case <-h.quit:
			}
		}
		// The acknowledgement is written before the SETTINGS are seen.
		h.update(func(v *h2View) { v.record(f) })
	}
}

func (v *h2View) record(f http2.Frame) {
	v.Frames++
	id := f.Header().StreamID
	st := v.Streams[id]
	if st == nil && id != 0 {
		st = &h2Stream{}
		v.Streams[id] = st
	}
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		h := http.Header{}
		status := 0
		for _, hf := range f.Fields {
			if hf.Name == ":status" {
				fmt.Sscan(hf.Value, &status)
				continue
			}
			h.Add(hf.Name, hf.Value)
		}
		switch {
		case status == 0:
			st.Trailer = h
		case status >= 200:
			st.Status, st.Header = status, h
		}
		st.Ended = st.Ended || f.StreamEnded()
	case *http2.DataFrame:
		st.Body = append(st.Body, f.Data()...)
		st.Ended = st.Ended || f.StreamEnded()
	case *http2.WindowUpdateFrame:
		if v.Credit == nil {
			v.Credit = map[uint32]int64{}
		}
		v.Credit[id] += int64(f.Increment)
	case *http2.RSTStreamFrame:
		st.Reset, st.Code = true, f.ErrCode
	case *http2.GoAwayFrame:
		v.GoAway, v.GoAwayCode, v.GoAwayLast, v.GoAwayDebug = true, f.ErrCode, f.LastStreamID, string(f.DebugData())
	case *http2.PingFrame:
		if f.IsAck() {
			v.PingAcks++
			v.LastPingAck = f.Data
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			v.SettingsAcks++
			break
		}
		if v.Settings == nil {
			v.Settings = map[http2.SettingID]uint32{}
		}
		f.ForeachSetting(func(s http2.Setting) error { v.Settings[s.ID] = s.Val; return nil })
	}
}

func (h *h2Raw) update(f func(v *h2View)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(&h.view)
	close(h.changed)
	h.changed = make(chan struct{})
}

// await waits up to d for cond to hold of what the server sent, and
// returns a copy of it either way.
func (h *h2Raw) await(d time.Duration, cond func(v *h2View) bool) (h2View, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		h.mu.Lock()
		ok, ch := cond(&h.view), h.changed
		v := h.view.clone()
		h.mu.Unlock()
		if ok {
			return v, true
		}
		select {
		case <-ch:
		case <-timer.C:
			return v, false
		}
	}
}

func (v *h2View) clone() h2View {
	c := *v
	c.Streams = map[uint32]*h2Stream{}
	c.Settings = maps.Clone(v.Settings)
	c.Credit = maps.Clone(v.Credit)
	for id, s := range v.Streams {
		cs := *s
		cs.Body = bytes.Clone(s.Body)
		c.Streams[id] = &cs
	}
	return c
}

// settled: stream id has its answer (ended or reset), or the connection
// is going away or gone.
func settled(id uint32) func(v *h2View) bool {
	return func(v *h2View) bool {
		if st := v.Streams[id]; st != nil && (st.Ended || st.Reset) {
			return true
		}
		return v.Closed || v.GoAway && (v.GoAwayCode != http2.ErrCodeNo || v.GoAwayLast < id)
	}
}

// outcome names how stream id ended: its status ("200"), its reset
// ("RST PROTOCOL_ERROR"), the connection's error ("GOAWAY
// PROTOCOL_ERROR"), "closed" without a word, or "none" (still open).
func (v *h2View) outcome(id uint32) string {
	if st := v.Streams[id]; st != nil {
		switch {
		case st.Status != 0:
			return fmt.Sprint(st.Status)
		case st.Reset:
			return "RST " + st.Code.String()
		}
	}
	switch {
	case v.GoAway && v.GoAwayCode != http2.ErrCodeNo:
		return "GOAWAY " + v.GoAwayCode.String()
	case v.GoAway && v.GoAwayLast < id:
		return "GOAWAY NO_ERROR before the stream"
	case v.Closed:
		return "closed"
	}
	return "none"
}

func (v *h2View) String() string {
	var ids []uint32
	for id := range v.Streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		s := v.Streams[id]
		fmt.Fprintf(&b, "stream %d: status %d ended %v reset %v %v body %.80q; ", id, s.Status, s.Ended, s.Reset, s.Code, s.Body)
	}
	fmt.Fprintf(&b, "goaway %v %v last %d %q; closed %v %s; frames %d", v.GoAway, v.GoAwayCode, v.GoAwayLast, v.GoAwayDebug, v.Closed, v.ReadErr, v.Frames)
	return b.String()
}

// quietLog discards a server's error log: hostile clients fill it.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
