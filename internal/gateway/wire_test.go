package gateway_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// How a client reaches the front, for the tests that need HTTP/1.1 over
// TLS as well as h1, h2 and h2c: "h1 tls" is HTTP/1.1 on the HTTPS
// listener.
type wire struct {
	name string
	tls  bool // the listener is HTTPS (h2TLS's certificate)
	h2   bool // the client speaks HTTP/2: over TLS (ALPN h2), else h2c with prior knowledge
}

var (
	wireH1    = wire{name: "h1"}
	wireH1TLS = wire{name: "h1 tls", tls: true}
	wireH2TLS = wire{name: "h2 tls", tls: true, h2: true}
	wireH2C   = wire{name: "h2c", h2: true}

	// h1Wires are the HTTP/1.1 ones, on the plain and the HTTPS listener.
	h1Wires = []wire{wireH1, wireH1TLS}
)

// frontOptions are the options of a front that w reaches: TLS with
// h2TLS's certificate (offering h2 and http/1.1), or plain with h2c on.
func (w wire) frontOptions() front.Options {
	var o front.Options
	if w.tls {
		o.TLS, _ = h2TLS()
	} else {
		o.H2C = true
	}
	return o
}

// h1Options are the options of the listener w reaches, as the HTTP/1.1
// attack tables want it: the HTTPS one (h2TLS's certificate, offering h2
// and http/1.1), or a plain one as configured by default, h2c off, so
// that an HTTP/2 preface is refused rather than served.
func (w wire) h1Options() front.Options {
	var o front.Options
	if w.tls {
		o.TLS, _ = h2TLS()
	}
	return o
}

// dialH1 opens an HTTP/1.1 connection to addr over w: plain TCP, or TLS
// trusting h2TLS's certificate with ALPN http/1.1.
func dialH1(w wire, addr string) (net.Conn, error) { return dialH1Within(w, addr, 3*time.Second) }

// dialH1Within is dialH1 with the connect and the TLS handshake bounded
// by d each.
func dialH1Within(w wire, addr string, d time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil || !w.tls {
		return c, err
	}
	_, cfg := h2TLS()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(&testutil.HeldConn{Conn: c}, cfg)
	tc.SetDeadline(time.Now().Add(d))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		c.Close()
		return nil, errors.New("ALPN negotiated " + p + ", want http/1.1")
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// sendH1 writes send in one write on a new connection to addr over w,
// then reads everything the gateway answers until it closes or stays
// silent readIdle (readTotal in all).
func sendH1(w wire, addr, send string) clientView { return sendH1After(w, addr, "", send) }

// sendH1After is sendH1 with opener written first and parkPause waited
// out before send (the opener's answer stays in the socket, read with the
// rest). send may come in pieces: over TLS a record each, all in one
// segment; over TCP one write all the same.
func sendH1After(w wire, addr, opener string, send ...string) clientView {
	c, err := dialH1(w, addr)
	if err != nil {
		return clientView{err: err}
	}
	defer c.Close()
	if opener != "" {
		io.WriteString(c, opener)
		time.Sleep(parkPause)
	}
	start := time.Now()
	writeRecords(c, send) // a gateway that closes early fails this; read what it said
	return readView(c, start)
}

// writeRecords writes pieces to c: over TLS (dialH1's) a record each, in
// one write to the socket, else in one write.
func writeRecords(c net.Conn, pieces []string) {
	tc, ok := c.(*tls.Conn)
	if !ok || len(pieces) < 2 {
		io.WriteString(c, strings.Join(pieces, ""))
		return
	}
	held := tc.NetConn().(*testutil.HeldConn)
	held.Hold()
	for _, p := range pieces {
		io.WriteString(tc, p)
	}
	held.Flush()
}

// readView reads c until the gateway closes or is silent readIdle, at
// most until readTotal after start.
func readView(c net.Conn, start time.Time) clientView {
	var v clientView
	end := start.Add(readTotal)
	buf := make([]byte, 64<<10)
	for {
		dl := time.Now().Add(readIdle)
		if dl.After(end) {
			dl = end
		}
		c.SetReadDeadline(dl)
		n, err := c.Read(buf)
		if n > 0 && v.raw == nil {
			v.firstByte = time.Since(start)
		}
		v.raw = append(v.raw, buf[:n]...)
		if err != nil {
			var ne net.Error
			v.closed = !(errors.As(err, &ne) && ne.Timeout())
			break
		}
	}
	v.answers = readAnswers(v.raw)
	return v
}

// readHeadOf reads an HTTP/1 response head from c byte by byte, so that
// nothing after it (the first bytes of another protocol, after a 101) is
// taken from the connection; it gives up at deadline.
func readHeadOf(c net.Conn, deadline time.Time) ([]byte, error) {
	c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(time.Time{})
	var head []byte
	b := make([]byte, 1)
	for len(head) < 64<<10 {
		if _, err := c.Read(b); err != nil {
			return head, err
		}
		head = append(head, b[0])
		if n := len(head); n >= 4 && string(head[n-4:]) == "\r\n\r\n" {
			return head, nil
		}
	}
	return head, errors.New("no end of the response head in 64 KiB")
}

// eachWire runs f for each of wires as a subtest named for it.
func eachWire(t *testing.T, wires []wire, f func(t *testing.T, w wire)) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) { f(t, w) })
	}
}
