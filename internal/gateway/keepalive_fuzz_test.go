package gateway_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

// FuzzKeepAliveSequence is the differential test of the front's keep-alive
// loop and the upstream client's reuse (the house rule for any change to
// how gatehouse parses, frames or reuses connections, here peek.SendWait):
// a short sequence of HTTP/1.1 requests on one client connection, sent in
// the fuzzed segments with the fuzzed pauses, goes (a) through the gateway
// (HTTP/1.1 on a plain listener) to a net/http app and (b) as the same
// bytes in the same segments straight to an oracle net/http server with
// the same handler. The answers the client reads (status, Content-Length,
// the body, whether the connection closes after it) and the requests the
// app saw (method, path, body length and checksum) must be the same; what
// gatehouse adds or strips on purpose (X-Request-Id, Via, Forwarded...)
// is in headers, which are not compared. Every exchange is bounded by a
// 5 s deadline on the client connection: a hang is a failure.
//
// The seeds run in every go test; go test -fuzz=FuzzKeepAliveSequence
// explores further. FuzzPipelinedBodies runs the same sequences with
// chunked bodies, HTTP/1.0 and Expect: 100-continue among them.
func FuzzKeepAliveSequence(f *testing.F) {
	fuzzSequences(f, keepAliveSeeds, keepAliveForm, nil)
}

// FuzzKeepAliveSequenceTLS is FuzzKeepAliveSequence over TLS, the
// gateway's listener and the oracle's alike: each write of the client a
// TLS record, and requests sent in one write (pipelined) records of
// their own that go out in one segment, so that the server's read takes
// several records at once and TLS keeps some undecrypted.
func FuzzKeepAliveSequenceTLS(f *testing.F) {
	fuzzSequences(f, keepAliveSeeds, keepAliveForm, http11TLS())
}

// http11TLS is a client config that trusts h2TLS's certificate and asks
// for HTTP/1.1.
func http11TLS() *tls.Config {
	_, cli := h2TLS()
	cli = cli.Clone()
	cli.NextProtos = []string{"http/1.1"}
	return cli
}

// fuzzSequences runs the fuzz target: each input, decoded into a sequence
// of requests, goes through the gateway and to the oracle, and what the
// client read and the app saw must be the same; over TLS when cli, the
// client's config, is set. The seeds, encoded, are the corpus; each must
// decode to itself.
func fuzzSequences(f *testing.F, seeds [][]fuzzReq, form sequenceForm, cli *tls.Config) {
	for _, s := range seeds {
		b := form.encode(s)
		if diff := cmp.Diff(s, form.decode(b)); diff != "" {
			f.Fatalf("a seed does not decode to itself (-seed +decoded):\n%s", diff)
		}
		f.Add(b)
	}
	app := newKAServer(f, nil)
	proto := "h1"
	var oracleTLS *tls.Config
	if cli != nil {
		proto = "h2" // TLS offering h2 and http/1.1; the client asks for http/1.1
		oracleTLS, _ = h2TLS()
		oracleTLS = oracleTLS.Clone()
		oracleTLS.NextProtos = []string{"http/1.1"}
	}
	oracle := newKAServer(f, oracleTLS)
	d := directWith(f, app.addr, protoOptions(f, proto), nil)
	var conns atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs := form.decode(data)
		// The id is in every request, the same in both runs, so that each
		// server keeps this connection's requests apart from earlier
		// inputs' (the gateway's app connections are pooled across them).
		id := fmt.Sprintf("%010d", conns.Add(1))
		raws := make([][]byte, len(reqs))
		for i, q := range reqs {
			raws[i] = q.raw(id, i)
		}
		got := runKeepAlive(d.addr, cli, reqs, raws)
		want := runKeepAlive(oracle.addr, cli, reqs, raws)
		quiesce(d, 3*time.Second, app.conns.quiet, 0)
		gotApp, wantApp := app.take(id), oracle.take(id)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers the client read (-net/http +gateway):\n%s\nsequence:\n%s", diff, describeKeepAlive(reqs))
		}
		if diff := cmp.Diff(wantApp, gotApp); diff != "" {
			t.Errorf("requests the app saw (-net/http +gateway):\n%s\nsequence:\n%s", diff, describeKeepAlive(reqs))
		}
		for _, a := range got {
			if a.Err == errHang {
				t.Errorf("the gateway hung: no answer within the exchange's 5 s\nsequence:\n%s", describeKeepAlive(reqs))
				break
			}
		}
		if d.m.Inflight() != 0 {
			t.Errorf("member in-flight count stays %d after the sequence ended", d.m.Inflight())
		}
	})
}

// sendMode is how a request goes on the wire, relative to the one before.
type sendMode int

const (
	// sendPipelined: in the same write as what went before it.
	sendPipelined sendMode = iota
	// sendAfter: in a write of its own, once every answer before it was
	// read.
	sendAfter
	// sendSplitAfter: once every answer before it was read, in two
	// writes, split at Split, Pause apart.
	sendSplitAfter
	// sendEarly: Pause after what went before it, in a write of its own,
	// without waiting for any answer (while the one before is served).
	sendEarly
	// sendSplitEarly: at once, without waiting for any answer, in two
	// writes split at Split, Pause apart.
	sendSplitEarly
	numSendModes
)

var sendModeNames = [...]string{"pipelined", "after", "split-after", "early", "split-early"}

func (m sendMode) String() string { return sendModeNames[m] }

var keepAliveMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE"}

// keepAlivePathChars are what a path is made of: nothing the gateway
// cleans or escapes.
const keepAlivePathChars = "abcdefghijklmnopqrstuvwxyz0123456789-"

// maxFuzzLen bounds bodies and answers: more than 4 KiB (a read buffer),
// two writes' worth on the app's side.
const maxFuzzLen = 9000

// fuzzReq is one request of a sequence, as decoded from the fuzz input.
// The fields after Delay are FuzzPipelinedBodies'; their zero values are
// an HTTP/1.1 request with a Content-Length body, as FuzzKeepAliveSequence
// sends.
type fuzzReq struct {
	Method    string
	Path      string
	BodyLen   int // POST and PUT only
	Close     bool
	Send      sendMode
	Split     int // the offset of the split (modulo the request's length, never 0)
	Pause     int // ms, 0-20
	AnswerLen int // bytes of padding after the echo
	Delay     int // ms the app waits before answering, 0-20

	// HTTP10: an HTTP/1.0 request, which never asks for keep-alive: the
	// connection ends with its answer.
	HTTP10 bool
	// Chunked: the body goes chunked (HTTP/1.1 only), in chunks of Chunks
	// bytes (the last chunk takes what they leave, none is empty), each
	// size line as ChunkForm says, with Trailer's fields after the last.
	Chunked   bool
	Chunks    []int
	ChunkForm chunkForm
	Trailer   bool
	// Expect: the request says Expect: 100-continue.
	Expect bool
	// CRLF: an empty line before the request line (RFC 9112 §2.2).
	CRLF bool
	// Stream: the app answers without Content-Length, in two flushes.
	Stream bool
}

// chunkForm is how a chunk-size line is written: every form is valid,
// and read alike by net/http (RFC 9112 §7.1).
type chunkForm struct {
	Upper bool // upper-case hex digits
	Zeros int  // leading zeros, 0-7
	Ext   int  // the extension: an index into chunkExts
}

// chunkExts are chunk extensions net/http's reader skips.
var chunkExts = []string{"", ";a", ";a=b", ";name=\"quoted value\"", ";a=1;b=2", ";x=\"\\\"\""}

// chunkSizes splits n bytes of body into the chunk sizes q.Chunks asks
// for: in order, each at most what is left, none empty; the last takes
// the rest.
func (q fuzzReq) chunkSizes(n int) []int {
	var sizes []int
	for _, c := range q.Chunks {
		if c = min(c, n); c > 0 && n > 0 {
			sizes = append(sizes, c)
			n -= c
		}
	}
	if n > 0 {
		sizes = append(sizes, n)
	}
	return sizes
}

func (f chunkForm) sizeLine(n int) string {
	digits := fmt.Sprintf("%x", n)
	if f.Upper {
		digits = strings.ToUpper(digits)
	}
	return strings.Repeat("0", f.Zeros) + digits + chunkExts[f.Ext%len(chunkExts)] + "\r\n"
}

func hasBody(method string) bool { return method == "POST" || method == "PUT" }

// raw is the request's bytes on connection id, the i-th of its sequence.
func (q fuzzReq) raw(id string, i int) []byte {
	var b strings.Builder
	version := "HTTP/1.1"
	if q.HTTP10 {
		version = "HTTP/1.0"
	}
	if q.CRLF {
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "%s %s %s\r\nHost: fuzz\r\nX-Fuzz-Conn: %s\r\nX-Answer-Len: %d\r\nX-Answer-Delay: %d\r\n",
		q.Method, q.Path, version, id, q.AnswerLen, q.Delay)
	if q.Stream {
		b.WriteString("X-Answer-Stream: 1\r\n")
	}
	chunked := q.chunked()
	switch {
	case chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case hasBody(q.Method):
		fmt.Fprintf(&b, "Content-Length: %d\r\n", q.BodyLen)
	}
	if q.Expect {
		b.WriteString("Expect: 100-continue\r\n")
	}
	if q.Close {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	body := make([]byte, q.BodyLen)
	for j := range body {
		body[j] = 'a' + byte((j*7+i)%26)
	}
	if !chunked {
		b.Write(body)
		return []byte(b.String())
	}
	for _, n := range q.chunkSizes(len(body)) {
		b.WriteString(q.ChunkForm.sizeLine(n))
		b.Write(body[:n])
		b.WriteString("\r\n")
		body = body[n:]
	}
	b.WriteString(q.ChunkForm.sizeLine(0))
	if q.Trailer {
		b.WriteString("X-Trailer: t\r\nX-Sum: 1, 2\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// chunked: the request's body goes chunked.
func (q fuzzReq) chunked() bool { return q.Chunked && !q.HTTP10 && hasBody(q.Method) }

// splitAt is where the request's two writes meet: inside it, never at
// its ends.
func (q fuzzReq) splitAt(n int) int { return 1 + q.Split%(n-1) }

// fuzzBytes hands out the fuzz input a byte at a time, zeros past its
// end, so that every input decodes, deterministically.
type fuzzBytes struct{ b []byte }

func (s *fuzzBytes) byte() int {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return int(c)
}

func (s *fuzzBytes) u16() int { return s.byte()<<8 | s.byte() }

// sequenceForm is how a fuzz target's input spells a sequence: 1-6
// requests, a count, then per request a method, a send mode, a flags
// byte (read by flags, written by flagsOf), what rest reads, then what
// more reads (appendMore writes), if set. encode is decode's inverse, for
// the seeds.
type sequenceForm struct {
	flags      func(q *fuzzReq, flags byte, reqs []fuzzReq, i int)
	flagsOf    func(q fuzzReq) byte
	more       func(s *fuzzBytes, q *fuzzReq)
	appendMore func(b []byte, q fuzzReq) []byte
}

func (f sequenceForm) decode(data []byte) []fuzzReq {
	s := &fuzzBytes{data}
	reqs := make([]fuzzReq, 1+s.byte()%6)
	for i := range reqs {
		q := &reqs[i]
		q.Method = keepAliveMethods[s.byte()%len(keepAliveMethods)]
		q.Send = sendMode(s.byte() % int(numSendModes))
		f.flags(q, byte(s.byte()), reqs, i)
		s.rest(q)
		if f.more != nil {
			f.more(s, q)
		}
	}
	return reqs
}

func (f sequenceForm) encode(reqs []fuzzReq) []byte {
	if len(reqs) < 1 || len(reqs) > 6 {
		panic("a sequence is 1-6 requests")
	}
	b := []byte{byte(len(reqs) - 1)}
	for _, q := range reqs {
		b = append(b, byte(slices.Index(keepAliveMethods, q.Method)), byte(q.Send), f.flagsOf(q))
		b = appendRest(b, q)
		if f.appendMore != nil {
			b = f.appendMore(b, q)
		}
	}
	return b
}

// keepAliveForm is FuzzKeepAliveSequence's: the flags byte is a close
// flag (3 closes).
var keepAliveForm = sequenceForm{
	flags: func(q *fuzzReq, flags byte, _ []fuzzReq, _ int) { q.Close = flags%4 == 3 },
	flagsOf: func(q fuzzReq) byte {
		if q.Close {
			return 3
		}
		return 0
	},
}

// rest reads what the two fuzz targets' requests share after the method,
// send mode and flags: a path length (0-7) and its characters, a body
// length and a split offset (2 bytes each), a pause, an answer length (2
// bytes) and a delay (d ms is 7+8d). appendRest writes them.
func (s *fuzzBytes) rest(q *fuzzReq) {
	path := []byte{'/'}
	for range s.byte() % 8 {
		path = append(path, keepAlivePathChars[s.byte()%len(keepAlivePathChars)])
	}
	q.Path = string(path)
	if n := s.u16() % (maxFuzzLen + 1); hasBody(q.Method) {
		q.BodyLen = n
	}
	q.Split = s.u16()
	q.Pause = s.byte() % 21
	q.AnswerLen = s.u16() % (maxFuzzLen + 1)
	if b := s.byte(); b%8 == 7 {
		q.Delay = (b / 8) % 21
	}
}

func appendRest(b []byte, q fuzzReq) []byte {
	u16 := func(v int) { b = append(b, byte(v>>8), byte(v)) }
	p := strings.TrimPrefix(q.Path, "/")
	b = append(b, byte(len(p)))
	for _, c := range []byte(p) {
		b = append(b, byte(strings.IndexByte(keepAlivePathChars, c)))
	}
	u16(q.BodyLen)
	u16(q.Split)
	b = append(b, byte(q.Pause))
	u16(q.AnswerLen)
	if q.Delay > 0 {
		return append(b, byte(7+8*q.Delay))
	}
	return append(b, 0)
}

// keepAliveAnswer is what the client read of one answer: what the echo
// put in the body and the framing around it, or how reading it failed.
type keepAliveAnswer struct {
	Status        int
	ContentLength int64
	Echo          string // the body's first line
	Len           int    // the body's length
	Sum           uint32 // the body's CRC-32
	Chunked       bool   // the body came chunked
	Continues     int    // 100 Continue answers read before it
	Close         bool   // the answer closes the connection (or, to HTTP/1.0, the connection ended after it)
	Err           string // "closed", errHang, or another read error
}

const errHang = "no answer within the deadline"

// runKeepAlive sends reqs (their bytes raws) on one connection to addr,
// over TLS when cli is set, as their send modes say, reads the answers,
// and returns them; it stops at an answer that closes the connection, and
// sends nothing after it.
func runKeepAlive(addr string, cli *tls.Config, reqs []fuzzReq, raws [][]byte) []keepAliveAnswer {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return []keepAliveAnswer{{Err: "dial: " + err.Error()}}
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	var conn net.Conn = raw
	held := &testutil.HeldConn{Conn: raw}
	if cli != nil {
		tc := tls.Client(held, cli)
		if err := tc.Handshake(); err != nil {
			return []keepAliveAnswer{{Err: "handshake: " + err.Error()}}
		}
		conn = tc
	}
	br := bufio.NewReader(conn)
	var answers []keepAliveAnswer
	closed, broken := false, false
	// readTo reads the answers to the requests before the n-th.
	readTo := func(n int) {
		for len(answers) < n && !closed {
			q := reqs[len(answers)]
			a := readKeepAliveAnswer(br, q.Method)
			if q.HTTP10 && !a.Close && a.Err == "" {
				// An HTTP/1.0 request without keep-alive is the
				// connection's last: the server ends it, and need not say
				// so (net/http does not).
				a.Close = endsAfter(br)
			}
			answers = append(answers, a)
			closed = a.Close || a.Err != ""
		}
	}
	// A write that fails (the server closed, as it may after a close)
	// ends the sending; the answers already sent for are still read.
	// pending are the requests to go in the next write: over TLS a
	// record each, all in one segment.
	var pending [][]byte
	write := func(ps ...[]byte) {
		if broken {
			return
		}
		if cli == nil {
			_, err := conn.Write(slices.Concat(ps...))
			broken = err != nil
			return
		}
		held.Hold()
		for _, p := range ps {
			if _, err := conn.Write(p); err != nil {
				broken = true
			}
		}
		broken = held.Flush() != nil || broken
	}
	flush := func() {
		if len(pending) > 0 {
			write(pending...)
		}
		pending = nil
	}
	for i, q := range reqs {
		raw := raws[i]
		switch q.Send {
		case sendPipelined:
			pending = append(pending, raw)
			continue
		case sendAfter, sendSplitAfter:
			flush()
			readTo(i)
		case sendEarly:
			flush()
			pause(q.Pause)
		case sendSplitEarly:
			flush()
		}
		if closed || broken {
			break
		}
		if q.Send == sendSplitAfter || q.Send == sendSplitEarly {
			at := q.splitAt(len(raw))
			write(raw[:at])
			pause(q.Pause)
			raw = raw[at:]
		}
		pending = [][]byte{raw}
	}
	if !closed {
		flush()
	}
	readTo(len(reqs))
	return answers
}

func readKeepAliveAnswer(br *bufio.Reader, method string) keepAliveAnswer {
	var continues int
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	for err == nil && resp.StatusCode == http.StatusContinue && continues < 3 {
		continues++
		resp, err = http.ReadResponse(br, &http.Request{Method: method})
	}
	if err != nil {
		return keepAliveAnswer{Continues: continues, Err: readErr(err)}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := keepAliveAnswer{Status: resp.StatusCode, ContentLength: resp.ContentLength, Len: len(body),
		Sum: crc32.ChecksumIEEE(body), Chunked: slices.Contains(resp.TransferEncoding, "chunked"), Continues: continues, Close: resp.Close}
	a.Echo, _, _ = strings.Cut(string(body), "\n")
	if err != nil {
		a.Err = readErr(err)
	}
	return a
}

// endsAfter reports whether the connection br reads ends (a close or a
// reset) before anything more comes, within the connection's deadline.
func endsAfter(br *bufio.Reader) bool {
	_, err := br.Peek(1)
	return err != nil && !isTimeout(err)
}

// readErr names the ways reading an answer fails that the two servers
// may differ in only by timing: the connection's end (an EOF or a reset)
// is "closed".
func readErr(err error) string {
	switch {
	case isTimeout(err):
		return errHang
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "closed"
	}
	return err.Error()
}

// kaServer is a net/http server on loopback whose handler reads the
// body, records the request under its X-Fuzz-Conn, waits X-Answer-Delay
// ms, and answers 200 with a known length: a line naming the method, the
// path, the body's length and checksum and the request's number on its
// X-Fuzz-Conn, then X-Answer-Len bytes of padding. With X-Answer-Stream
// it sends no length, and flushes after the line: the answer goes chunked
// (to an HTTP/1.0 client, to the connection's end). The number counts per
// client connection, not per app connection, as the gateway pools those.
type kaServer struct {
	addr  string
	conns appConns
	mu    sync.Mutex
	seq   map[string]int
	seen  map[string][]kaSeen
}

// kaSeen is what the handler was handed of a request.
type kaSeen struct {
	Method, Path string
	BodyLen      int
	BodySum      uint32
	BodyErr      string
}

// newKAServer starts a kaServer, serving TLS with cfg when it is set.
func newKAServer(t testing.TB, cfg *tls.Config) *kaServer {
	e := &kaServer{seq: map[string]int{}, seen: map[string][]kaSeen{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	srv := &http.Server{Handler: e, ErrorLog: quietLog(), ConnState: e.conns.state}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	e.addr = ln.Addr().String()
	return e
}

// fuzzPad is where the answers' padding is cut from.
var fuzzPad = strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz\n", maxFuzzLen/37+1)[:maxFuzzLen]

func (e *kaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	s := kaSeen{Method: r.Method, Path: r.RequestURI, BodyLen: len(body), BodySum: crc32.ChecksumIEEE(body)}
	if err != nil {
		s.BodyErr = err.Error()
	}
	id := r.Header.Get("X-Fuzz-Conn")
	e.mu.Lock()
	n := e.seq[id]
	e.seq[id]++
	e.seen[id] = append(e.seen[id], s)
	e.mu.Unlock()
	if err != nil {
		return
	}
	if ms, _ := strconv.Atoi(r.Header.Get("X-Answer-Delay")); ms > 0 {
		pause(ms)
	}
	pad, _ := strconv.Atoi(r.Header.Get("X-Answer-Len"))
	line := fmt.Sprintf("%s %s body=%d sum=%08x seq=%d\n", s.Method, s.Path, s.BodyLen, s.BodySum, n)
	out := line + fuzzPad[:min(max(pad, 0), maxFuzzLen)]
	if r.Header.Get("X-Answer-Stream") != "" {
		io.WriteString(w, line)
		w.(http.Flusher).Flush()
		io.WriteString(w, out[len(line):])
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	io.WriteString(w, out)
}

// pause waits ms milliseconds, as a fuzz input says: time must pass
// between the writes it splits, or before the app answers.
func pause(ms int) { time.Sleep(time.Duration(ms) * time.Millisecond) }

// take returns and forgets what the handler saw on connection id.
func (e *kaServer) take(id string) []kaSeen {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.seen[id]
	delete(e.seen, id)
	delete(e.seq, id)
	return s
}

func describeKeepAlive(reqs []fuzzReq) string {
	var b strings.Builder
	for i, q := range reqs {
		fmt.Fprintf(&b, "  %d: %s %s body=%d close=%v send=%v split=%d pause=%dms answer=%d delay=%dms",
			i, q.Method, q.Path, q.BodyLen, q.Close, q.Send, q.Split, q.Pause, q.AnswerLen, q.Delay)
		if q.HTTP10 {
			b.WriteString(" HTTP/1.0")
		}
		if q.chunked() {
			fmt.Fprintf(&b, " chunked=%v form=%+v trailer=%v", q.chunkSizes(q.BodyLen), q.ChunkForm, q.Trailer)
		}
		if q.Expect {
			b.WriteString(" expect=100-continue")
		}
		if q.CRLF {
			b.WriteString(" crlf-before")
		}
		if q.Stream {
			b.WriteString(" stream")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// keepAliveSeeds are FuzzKeepAliveSequence's seed corpus.
var keepAliveSeeds = [][]fuzzReq{
	// A plain keep-alive sequence, each request after the answer before.
	{
		{Method: "GET", Path: "/a", Send: sendAfter, AnswerLen: 10},
		{Method: "POST", Path: "/b", BodyLen: 20, Send: sendAfter, AnswerLen: 100},
		{Method: "GET", Path: "/c", Send: sendAfter},
	},
	// A pipelined pair.
	{
		{Method: "GET", Path: "/one", Send: sendAfter, AnswerLen: 50},
		{Method: "GET", Path: "/two", Send: sendPipelined, AnswerLen: 60},
	},
	// A request split mid-head, a pause between its halves, after a
	// kept-alive answer (the front's wait must wake on the first half).
	{
		{Method: "GET", Path: "/first", Send: sendAfter},
		{Method: "POST", Path: "/split", BodyLen: 30, Send: sendSplitAfter, Split: 9, Pause: 15},
		{Method: "GET", Path: "/after", Send: sendAfter},
	},
	// Requests sent while the answer before is still being produced: in
	// a write of its own, and split with its first half sent at once.
	{
		{Method: "GET", Path: "/slow", Send: sendAfter, Delay: 20, AnswerLen: 200},
		{Method: "GET", Path: "/early", Send: sendEarly, Pause: 5, Delay: 10},
		{Method: "PUT", Path: "/early2", BodyLen: 10, Send: sendSplitEarly, Split: 40, Pause: 5},
	},
	// HEAD among GETs: its answer names a length but has no body.
	{
		{Method: "GET", Path: "/g", Send: sendAfter, AnswerLen: 10},
		{Method: "HEAD", Path: "/h", Send: sendAfter, AnswerLen: 5000},
		{Method: "HEAD", Path: "/h2", Send: sendPipelined, AnswerLen: 3},
		{Method: "GET", Path: "/g2", Send: sendPipelined, AnswerLen: 20},
	},
	// Connection: close in the middle: the request pipelined after it and
	// the one meant to follow its answer are never served.
	{
		{Method: "GET", Path: "/x", Send: sendAfter},
		{Method: "POST", Path: "/bye", BodyLen: 5, Close: true, Send: sendAfter},
		{Method: "GET", Path: "/never", Send: sendPipelined},
		{Method: "GET", Path: "/never2", Send: sendAfter},
	},
	// Bodies and answers larger than 4 KiB, pipelined and split inside a
	// body.
	{
		{Method: "POST", Path: "/big", BodyLen: 9000, Send: sendAfter, AnswerLen: 9000},
		{Method: "PUT", Path: "/big2", BodyLen: 6000, Send: sendPipelined, AnswerLen: 4097},
		{Method: "POST", Path: "/big3", BodyLen: 8000, Send: sendSplitAfter, Split: 5000, Pause: 10, AnswerLen: 8192},
		{Method: "DELETE", Path: "/d", Send: sendSplitEarly, Split: 3, Pause: 2, AnswerLen: 4096},
	},
	// Six, every way of sending, a slow answer and a close at the end.
	{
		{Method: "GET", Path: "/s1", Send: sendSplitAfter, Split: 2, Pause: 3, AnswerLen: 5000},
		{Method: "POST", Path: "/s2", BodyLen: 4500, Send: sendEarly, Pause: 1, Delay: 8},
		{Method: "HEAD", Path: "/s3", Send: sendPipelined, AnswerLen: 7000},
		{Method: "PUT", Path: "/s4", BodyLen: 1, Send: sendSplitEarly, Split: 100, Pause: 4},
		{Method: "DELETE", Path: "/s5", Send: sendAfter, Delay: 3},
		{Method: "GET", Path: "/s6", Close: true, Send: sendPipelined, AnswerLen: 9000},
	},
}
