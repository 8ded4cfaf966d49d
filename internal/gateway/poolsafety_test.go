package gateway_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Pool safety: an app that writes more than its response's framing
// declares (a body longer than its Content-Length, a second response in
// the same write, a HEAD/204/304 answered with a body a few milliseconds
// after the head) must cost at most its own request. Its surplus must
// never be read as the answer to the next request sent on that upstream
// connection, which may come from any client: that would hand one user
// another user's response.
//
// Every answer the app writes, real or fake, names the request it
// answers: an X-For header (seen even on HEAD, 204 and 304) and a body
// whose first line is "for=<path>". A client that reads a name other than
// its own path has been handed someone else's answer.

const (
	// poolSafetyRequests is the number of requests sent per protocol,
	// poolSafetyRaceRequests the number under -race, and
	// poolSafetyShortRequests under -short (a quick look: every mode
	// comes up 20 times over).
	poolSafetyRequests      = 50_000
	poolSafetyRaceRequests  = 10_000
	poolSafetyShortRequests = 2_000
	// poolSafetyTimeCap bounds each protocol's run; fewer requests than
	// asked for within it is a failure.
	poolSafetyTimeCap = 120 * time.Second
	poolSafetyClients = 48
	// poolSafetyErrorBudget is the share of gateway-made error answers
	// allowed (an app's misbehaviour may cost its own request).
	poolSafetyErrorBudget = 0.01
)

// poolSafetyTotal is the number of requests TestPoolSafetyUnderLoad sends
// on each protocol. In CPU time h1 costs about 18 s per 100,000 on a
// 2-core machine, HTTP/2 and h2c about 30 s: 50,000 each, 5,000 of them
// to requests the app misbehaves on, cost about 40 s of CPU in all.
func poolSafetyTotal() int64 {
	switch {
	case testing.Short():
		return poolSafetyShortRequests
	case raceEnabled:
		return poolSafetyRaceRequests
	}
	return poolSafetyRequests
}

// A psMode is how the app answers one request.
type psMode struct {
	name   string
	method string // GET or HEAD
	want   int    // status the client must see
	size   int    // GET: body length the app declares (0: exactly "for=<path>")
	q      string // query the app chooses its behaviour by
}

// psModeFor chooses, from the request number alone, how it is answered:
// 90% correctly (with bodies of several sizes), 10% with bytes the
// response's framing does not account for.
func psModeFor(n int64) psMode {
	switch k := n % 100; {
	case k < 90:
		size := 0
		switch k % 30 {
		case 7:
			size = 6000
		case 17:
			size = 70000
		case 23:
			size = 300
		}
		return psMode{name: "ok", method: "GET", want: 200, size: size, q: "m=ok&size=" + strconv.Itoa(size)}
	case k == 90:
		return psMode{name: "surplus-small", method: "GET", want: 200, size: 100, q: "m=surplus&size=100"}
	case k == 91:
		return psMode{name: "surplus-6000", method: "GET", want: 200, size: 6000, q: "m=surplus&size=6000"}
	case k == 97:
		return psMode{name: "surplus-12000", method: "GET", want: 200, size: 12000, q: "m=surplus&size=12000"}
	case k == 92:
		return psMode{name: "surplus-70000", method: "GET", want: 200, size: 70000, q: "m=surplus&size=70000"}
	case k == 93, k == 98:
		return psMode{name: "head-late", method: "HEAD", want: 200, q: "m=late"}
	case k == 94:
		return psMode{name: "204-late", method: "GET", want: 204, q: "m=late&want=204"}
	case k == 95:
		return psMode{name: "304-late", method: "GET", want: 304, q: "m=late&want=304"}
	case k == 96:
		return psMode{name: "double", method: "GET", want: 200, q: "m=double"}
	default: // 99
		if (n/100)%2 == 0 {
			return psMode{name: "204-late", method: "GET", want: 204, q: "m=late&want=204"}
		}
		return psMode{name: "304-late", method: "GET", want: 304, q: "m=late&want=304"}
	}
}

// psBody is the body the app sends for path: exactly "for=<path>", or,
// when size asks for more, that line, a newline, and padding to size.
func psBody(path string, size int) []byte {
	line := "for=" + path
	if size <= len(line)+1 {
		return []byte(line)
	}
	b := make([]byte, size)
	copy(b, line)
	b[len(line)] = '\n'
	for i := len(line) + 1; i < size; i++ {
		b[i] = 'x'
	}
	return b
}

// psFake is a complete, valid response naming path: read in place of
// another request's answer, it looks like a real answer to the wrong
// request.
func psFake(path string) []byte {
	body := "for=" + path
	return []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nX-For: %s\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body))
}

// psHead is a response head naming path.
func psHead(status int, path string, contentLength int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nX-For: %s\r\n", status, http.StatusText(status), path)
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// psServe is the app: HTTP/1.1 keep-alive by hand on one connection,
// answering each request as its query asks.
func psServe(c net.Conn, br *bufio.Reader) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
		path := req.URL.Path
		q := req.URL.Query()
		size, _ := strconv.Atoi(q.Get("size"))
		var out []byte
		var late []byte
		switch q.Get("m") {
		case "surplus":
			// The declared body, then a whole fake response, in one write:
			// past 4 KiB the surplus sits in the kernel, not in a buffer.
			body := psBody(path, size)
			out = append(psHead(200, path, len(body)), body...)
			out = append(out, psFake(path)...)
		case "double":
			body := psBody(path, 0)
			out = append(psHead(200, path, len(body)), body...)
			out = append(out, append(psHead(200, path, len(body)), body...)...)
		case "late":
			switch {
			case req.Method == http.MethodHead:
				out = psHead(200, path, 40)
			case q.Get("want") == "204":
				out = psHead(204, path, -1)
			case q.Get("want") == "304":
				out = psHead(304, path, -1)
			default:
				out = psHead(500, path, 0)
			}
			late = psFake(path)
		default:
			body := psBody(path, size)
			out = append(psHead(200, path, len(body)), body...)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		if late != nil {
			// The app's deliberate misbehaviour: a body for a response
			// that has none, 2-5 ms after the head.
			d := 2 * time.Millisecond
			if id := strings.LastIndexByte(path, '-'); id >= 0 {
				if n, err := strconv.Atoi(path[id+1:]); err == nil {
					d += time.Duration(n%4) * time.Millisecond
				}
			}
			time.Sleep(d)
			if _, err := c.Write(late); err != nil {
				return
			}
		}
		if req.Close {
			return
		}
	}
}

// psNamed is the request an answer names, from its X-For header or its
// body's first line; "" when it names none.
func psNamed(h http.Header, body []byte) (fromHeader, fromBody string) {
	fromHeader = h.Get("X-For")
	if bytes.HasPrefix(body, []byte("for=")) {
		line := body[len("for="):]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		fromBody = string(line)
	}
	return
}

// psModeOf is the mode of the load test's request /r/<client>-<n> ("?"
// for any other path).
func psModeOf(path string) string {
	client, num, ok := strings.Cut(strings.TrimPrefix(path, "/r/"), "-")
	if !ok {
		return "?"
	}
	if _, err := strconv.Atoi(client); err != nil {
		return "?"
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return "?"
	}
	return psModeFor(n).name
}

// psVerdict classifies one answer: "ok", "error" (gateway-made, with its
// cause), "misdirected" (names another request), or "wrong" (neither the
// app's answer nor a gateway error).
func psVerdict(m psMode, path string, resp *http.Response, body []byte) (verdict, detail string) {
	if c := resp.Header.Get("Gatehouse-Cause"); c != "" {
		return "error", c
	}
	fh, fb := psNamed(resp.Header, body)
	if (fh != "" && fh != path) || (fb != "" && fb != path) {
		other := fh
		if other == "" || other == path {
			other = fb
		}
		return "misdirected", fmt.Sprintf("%s %s (%s) answered %d X-For=%q body for=%q, an answer written for %s (%s)",
			m.method, path, m.name, resp.StatusCode, fh, fb, other, psModeOf(other))
	}
	describe := func(why string) string {
		b := body
		if len(b) > 80 {
			b = b[:80]
		}
		return fmt.Sprintf("%s %s (%s): %s; got %d X-For=%q body %d bytes %q", m.method, path, m.name, why, resp.StatusCode, fh, len(body), b)
	}
	if resp.StatusCode != m.want {
		return "wrong", describe(fmt.Sprintf("status, want %d", m.want))
	}
	if fh != path {
		return "wrong", describe("no X-For naming the request")
	}
	if m.method == http.MethodHead || m.want == 204 || m.want == 304 {
		if len(body) != 0 {
			return "wrong", describe("a body where there is none")
		}
		return "ok", ""
	}
	if fb != path {
		return "wrong", describe("body does not name the request")
	}
	if want := len(psBody(path, m.size)); len(body) != want {
		return "wrong", describe(fmt.Sprintf("body length, want %d", want))
	}
	return "ok", ""
}

type psTally struct {
	mu          sync.Mutex
	done        int64
	ok          int64
	misdirected int64
	wrong       int64
	errors      int64
	causes      map[string]int64
	byMode      map[string]int64
	bySource    map[string]int64 // misdirected answers by the mode of the request they were written for
	samples     []string         // first misdirected and wrong answers
	errSamples  []string         // first transport errors
}

func (t *psTally) add(mode, verdict, detail, source string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done++
	t.byMode[mode]++
	switch verdict {
	case "ok":
		t.ok++
	case "misdirected":
		t.misdirected++
		t.bySource[source]++
		if len(t.samples) < 8 {
			t.samples = append(t.samples, "MISDIRECTED: "+detail)
		}
	case "wrong":
		t.wrong++
		if len(t.samples) < 8 {
			t.samples = append(t.samples, "WRONG: "+detail)
		}
	case "error":
		t.errors++
		t.causes[detail]++
	case "transport":
		t.errors++
		t.causes["(client transport error)"]++
		if len(t.errSamples) < 5 {
			t.errSamples = append(t.errSamples, detail)
		}
	}
}

func psSorted(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// psDo sends one request and reads its whole answer.
func psDo(c *http.Client, base string, m psMode, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(m.method, base+path+"?"+m.q, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// psClient is a client of its own connection to a listener served with
// protoOptions(proto): HTTP/1.1 keep-alive, HTTP/2 over TLS, or h2c.
func psClient(proto string) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 2,
		DisableCompression:  true,
		Proxy:               nil,
	}
	switch proto {
	case "h2":
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP2(true)
		_, tr.TLSClientConfig = h2TLS()
		tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	case "h2c":
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr
}

// TestPoolSafetyUnderLoad: 48 clients, each with its own keep-alive
// connection to the gateway, share the gateway's upstream connections to
// an app that misbehaves on one request in ten. No client may ever be
// handed an answer naming another request. The clients speak each of
// the front's protocols in turn (HTTP/1.1, HTTP/2 over TLS, h2c): the
// app side is the same HTTP/1.1 pool whatever the client spoke, but the
// answer reaches the client through another writer, and an HTTP/2
// client's requests come on streams of one connection.
//
// Serial: it keeps both cores busy.
func TestPoolSafetyUnderLoad(t *testing.T) {
	forEachFrontProtocol(t, func(t *testing.T, proto string) {
		total := poolSafetyTotal()
		addr := rawBackend(t, psServe)
		d := directWith(t, addr, protoOptions(t, proto), nil)
		base := protoURL(proto, d.addr)

		tally := &psTally{causes: map[string]int64{}, byMode: map[string]int64{}, bySource: map[string]int64{}}
		var next atomic.Int64
		start := time.Now()
		deadline := start.Add(poolSafetyTimeCap)
		var wg sync.WaitGroup
		for ci := 0; ci < poolSafetyClients; ci++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client, tr := psClient(proto)
				defer tr.CloseIdleConnections()
				for time.Now().Before(deadline) {
					n := next.Add(1)
					if n > total {
						return
					}
					m := psModeFor(n)
					path := fmt.Sprintf("/r/%d-%d", ci, n)
					resp, body, err := psDo(client, base, m, path)
					if err != nil {
						var ue *url.Error
						msg := err.Error()
						if errors.As(err, &ue) {
							msg = ue.Err.Error()
						}
						tally.add(m.name, "transport", fmt.Sprintf("%s %s (%s): %s", m.method, path, m.name, msg), "")
						continue
					}
					v, detail := psVerdict(m, path, resp, body)
					source := ""
					if v == "misdirected" {
						fh, fb := psNamed(resp.Header, body)
						if fh == "" || fh == path {
							fh = fb
						}
						source = psModeOf(fh)
					}
					tally.add(m.name, v, detail, source)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)

		tally.mu.Lock()
		defer tally.mu.Unlock()
		t.Logf("%s: %d requests in %v (%.0f req/s); ok %d, misdirected %d, wrong %d, error answers %d (%.3f%%)",
			proto, tally.done, elapsed.Round(time.Millisecond), float64(tally.done)/elapsed.Seconds(),
			tally.ok, tally.misdirected, tally.wrong, tally.errors, 100*float64(tally.errors)/float64(max(tally.done, 1)))
		t.Logf("%s: error answers by cause: %s", proto, psSorted(tally.causes))
		t.Logf("%s: requests by mode: %s", proto, psSorted(tally.byMode))
		t.Logf("%s: misdirected answers by the mode of the request they were written for: %s", proto, psSorted(tally.bySource))
		for _, s := range tally.errSamples {
			t.Logf("%s: transport error: %s", proto, s)
		}
		for _, s := range tally.samples {
			t.Logf("%s: %s", proto, s)
		}

		if tally.done < total {
			t.Errorf("only %d of %d requests were answered within %v", tally.done, total, poolSafetyTimeCap)
		}
		if tally.misdirected > 0 {
			t.Errorf("%d answers were handed to a request they were not meant for (one user got another's response)", tally.misdirected)
		}
		if tally.wrong > 0 {
			t.Errorf("%d answers were neither the app's answer nor a gateway error", tally.wrong)
		}
		if float64(tally.errors) > poolSafetyErrorBudget*float64(tally.done) {
			t.Errorf("%d error answers of %d exceed %.0f%%: an app's misbehaviour may cost its own request only",
				tally.errors, tally.done, 100*poolSafetyErrorBudget)
		}
		d.waitIdle(t)
	})
}

// TestPoolSafetySurplusKernel: one keep-alive connection to the app; the
// first answer is a long body followed, in the same write, by a whole
// fake response. The surplus is past what a 4 KiB read buffer holds, so
// it waits in the kernel when the response ends. The second request, sent
// right after, must get its own answer.
//
// Sizes: with a 4 KiB upstream read buffer, the body's tail is read
// straight from the socket into the gateway's 32 KiB copy buffer only
// when at least 4 KiB of it is left after the head's read;
// a shorter tail is read through the buffer, which then also takes in the
// surplus, and the connection is seen to be dirty. 6000 bytes is the
// short-tail case, 12000 the tail-straight-to-the-copy-buffer case that
// leaves the surplus in the kernel. The client speaks each of the front's
// protocols in turn.
func TestPoolSafetySurplusKernel(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		var conns atomic.Int32
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			conns.Add(1)
			psServe(c, br)
		})
		d := directWith(t, addr, protoOptions(t, proto), nil)
		client, tr := psClient(proto)
		defer tr.CloseIdleConnections()

		second := psMode{name: "ok", method: "GET", want: 200, size: 0, q: "m=ok&size=0"}
		for _, size := range []int{6000, 12000} {
			first := psMode{name: fmt.Sprintf("surplus-%d", size), method: "GET", want: 200, size: size, q: fmt.Sprintf("m=surplus&size=%d", size)}
			for i, step := range []struct {
				m    psMode
				path string
			}{{first, fmt.Sprintf("/r/kernel%d-1", size)}, {second, fmt.Sprintf("/r/kernel%d-2", size)}} {
				resp, body, err := psDo(client, protoURL(proto, d.addr), step.m, step.path)
				if err != nil {
					t.Fatalf("%d-byte body, request %d: %v", size, i+1, err)
				}
				v, detail := psVerdict(step.m, step.path, resp, body)
				switch {
				case v == "ok":
				case v == "error" && i == 0:
					// The misbehaving answer may cost its own request.
					t.Logf("%d-byte body: request 1 answered with a gateway error: %s", size, detail)
				case v == "error":
					t.Errorf("%d-byte body: request 2 (well answered by the app) got a gateway error %s: the first answer's surplus cost another request", size, detail)
				default:
					t.Errorf("%d-byte body: request %d: %s: %s", size, i+1, v, detail)
				}
			}
		}
		t.Logf("%s: the app saw %d connection(s) for 4 requests", proto, conns.Load())
		d.waitIdle(t)
	})
}
