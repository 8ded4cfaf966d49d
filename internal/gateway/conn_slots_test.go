package gateway_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// oddStep is one thing an odd client does on its connection to s.
type oddStep func(c *rawConn, s *countedFront)

// The steps of odd clients.
var (
	// answered reads a final answer.
	answered oddStep = func(c *rawConn, _ *countedFront) { c.final(3 * time.Second) }
	// headRead reads one answer's head: an interim one, a 101, a stream's.
	headRead oddStep = func(c *rawConn, _ *countedFront) { c.resp(3 * time.Second) }
	// drained reads until the front closes.
	drained oddStep = func(c *rawConn, _ *countedFront) { c.drain(3 * time.Second) }
	// vanishes closes the connection.
	vanishes oddStep = func(c *rawConn, _ *countedFront) { c.close() }
	// halfCloses shuts the connection's sending side.
	halfCloses oddStep = func(c *rawConn, _ *countedFront) { c.tcp().CloseWrite() }
	// accepted waits until the front has taken the connection.
	accepted oddStep = func(_ *rawConn, s *countedFront) { testutil.AwaitAccepted(s.addr, 5*time.Second) }
	// forwarded waits until the request is being forwarded.
	forwarded oddStep = func(_ *rawConn, s *countedFront) {
		testutil.Eventually(5*time.Second, func() bool { return s.m.Inflight() == 1 })
	}
)

// sends writes raw; sendsRead writes raw and waits until the front has
// read it.
func sends(raw string) oddStep { return func(c *rawConn, _ *countedFront) { c.send(raw) } }

func sendsRead(raw string) oddStep { return func(c *rawConn, _ *countedFront) { c.sendRead(raw) } }

// echoes writes a line into an upgraded connection and wants the app's
// echo of it.
func echoes(line string) oddStep {
	return func(c *rawConn, _ *countedFront) {
		c.send(line)
		c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if l, err := c.br.ReadString('\n'); l != "echo "+line {
			c.t.Fatalf("echo %q %v", l, err)
		}
	}
}

// With max_connections 1, every odd way an HTTP/1.1 connection can go
// leaves the slot free for the next one, and no two connections are ever
// served at once.
func TestSlotsOddClients(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	const upgrade = "GET /upgrade HTTP/1.1\r\nHost: a\r\n" + wsUpgrade
	odd := []struct {
		name  string
		steps []oddStep
	}{
		{"vanish mid-head", []oddStep{sendsRead("GET /x HTTP/1.1\r\nHo"), vanishes}},
		{"vanish mid-head after a kept-alive request", []oddStep{sends("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"), answered, sendsRead("GET /x HTTP/1.1\r\nHo"), vanishes}},
		{"silent then gone", []oddStep{accepted, vanishes}},
		{"bare LF", []oddStep{sends("GET /x HTTP/1.1\nHost: a\n\n"), answered, vanishes}},
		{"head too large", []oddStep{sends("GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 12<<10) + "\r\n\r\n"), answered, vanishes}},
		{"h2 preface", []oddStep{sends("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), drained, vanishes}},
		{"chunked, vanish mid-body", []oddStep{sendsRead("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"), vanishes}},
		{"chunked, complete", []oddStep{sends("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), answered, vanishes}},
		{"expect, vanish", []oddStep{sends("POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"), headRead, vanishes}},
		{"http/1.0", []oddStep{sends("GET /a HTTP/1.0\r\nHost: a\r\n\r\n"), answered}},
		{"content-length body, vanish mid-body", []oddStep{sendsRead("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"), vanishes}},
		{"upgrade conversation", []oddStep{sends(upgrade), func(c *rawConn, _ *countedFront) { c.upgraded() }, echoes("hi\n"), vanishes}},
		{"upgrade, half-close", []oddStep{sends(upgrade), headRead, halfCloses, drained}},
		{"upgrade, vanish at once", []oddStep{sends(upgrade), vanishes}},
		{"panic, own loop", []oddStep{sends("GET /panic HTTP/1.1\r\nHost: a\r\n\r\n"), answered}},
		{"panic, chunked", []oddStep{sends("POST /panic HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), answered}},
		{"pipelined plain then chunked", []oddStep{sends("GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"), answered, answered, vanishes}},
		{"gone while the app works", []oddStep{sends("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"), forwarded, vanishes}},
		{"gone during a stream", []oddStep{sends("GET /sse HTTP/1.1\r\nHost: a\r\n\r\n"), headRead, vanishes}},
		{"request, then close without reading", []oddStep{sends("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"), vanishes}},
	}
	s := serveCounted(t, app, front.Options{MaxConnections: 1, HeadLimit: 8 << 10, HeadTimeout: 5 * time.Second}, nil)
	for _, o := range odd {
		c := dialRaw(t, s.addr)
		for _, step := range o.steps {
			step(c, s)
		}
		probe := dialRaw(t, s.addr)
		probe.send("GET /probe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		resp, body, err := probe.final(6 * time.Second)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("after %q the next connection got no answer (%v %q %v): its slot was not given back", o.name, resp, body, err)
		}
		probe.close()
	}
	// No slot was given back twice: a request held on one connection
	// keeps a second from being served.
	hold := dialRaw(t, s.addr)
	// The app takes 600 ms over /slow, from after this moment: the
	// second connection cannot be answered before then unless it had a
	// slot of its own.
	start := time.Now()
	hold.send("GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	testutil.WaitFor(t, 5*time.Second, "the slow request served", func() bool { return s.h.active.Load() == 1 })
	other := dialRaw(t, s.addr)
	other.send("GET /other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if resp, _, err := other.final(6 * time.Second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second connection: %v %v", resp, err)
	}
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Errorf("a second connection was answered %v after the first's request, which the app takes 600ms over, while that held the only slot", took)
	}
	if m := s.h.maxSeen.Load(); m > 1 {
		t.Errorf("%d requests were served at once with max_connections 1", m)
	}
	hold.close()
}

// A request answered while its body was unread does not leave the next
// request on the connection to start in the middle of that body, however
// the body arrives.
func TestPipelinedAfterUnreadBody(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	evil := "GET /evil HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name   string
		pieces []string
	}{
		{"all at once", []string{"POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(evil)) + "\r\n\r\n" + evil + "GET /app/next HTTP/1.1\r\nHost: a\r\n\r\n"}},
		{"body late", []string{"POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(evil)) + "\r\n\r\n", evil[:5], evil[5:] + "GET /app/next HTTP/1.1\r\nHost: a\r\n\r\n"}},
		{"CRLF then body", []string{"POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(evil)+2) + "\r\n\r\n", "\r\n" + evil, "GET /app/next HTTP/1.1\r\nHost: a\r\n\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := serveCounted(t, app, front.Options{}, func(a *config.App) { a.Routes = config.PlainRoutes("/app/") })
			c := dialRaw(t, s.addr)
			c.send(tc.pieces[0])
			if resp, _, err := c.final(3 * time.Second); err != nil || resp.StatusCode != 404 {
				t.Fatalf("first: %v %v", resp, err)
			}
			for _, p := range tc.pieces[1:] {
				c.sendRead(p) // each piece in a read of its own
			}
			resp, body, err := c.final(3 * time.Second)
			if err != nil {
				if isTimeout(err) || err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
					return // closed: acceptable
				}
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || body != "GET /app/next body=0" {
				t.Errorf("the request after an unread body got %d %q", resp.StatusCode, body)
			}
		})
	}
}

// A client that asks for a large answer and never reads it does not hold
// its connection slot for ever: send_timeout bounds the write, on the
// plain listener and through TLS. Serial: the bound is a time, which a
// machine loaded by other tests' TLS handshakes could stretch.
func TestNonReadingClientHoldsSlot(t *testing.T) {
	app := sampleApp(t)
	eachWire(t, h1Wires, func(t *testing.T, w wire) {
		s := serveCounted(t, app, withOpts(w, front.Options{MaxConnections: 1, SendTimeout: 500 * time.Millisecond}), nil)
		c := dialRawOver(t, w, s.addr)
		c.tcp().SetReadBuffer(4 << 10)
		c.send("GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		testutil.WaitFor(t, 5*time.Second, "the large answer served", func() bool { return s.h.active.Load() == 1 })
		// The second connection's handshake waits for the slot too: the
		// bound is on the whole, from its dial to its answer.
		const bound = 8 * time.Second
		began := time.Now()
		oc, err := dialH1Within(w, s.addr, bound)
		if err != nil {
			t.Fatalf("a client that stopped reading its answer has held the only slot (no write timeout): %v", err)
		}
		t.Cleanup(func() { oc.Close() })
		other := &rawConn{t: t, c: oc, br: bufio.NewReader(oc)}
		other.send("GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if _, _, err := other.final(bound - time.Since(began)); err != nil {
			t.Errorf("a client that stopped reading its answer has held the only slot for %v (no write timeout): %v", bound, err)
		}
		c.close()
	})
}
