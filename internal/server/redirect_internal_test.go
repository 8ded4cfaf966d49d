package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// okGateway stands for the gateway: it answers 200 to what it is handed.
type okGateway struct{}

func (okGateway) Serve(x *front.Exchange) { x.W.WriteHeader(http.StatusOK) }

// serveRedirecting runs a front with opts on loopback, whose plain
// listener redirects to HTTPS (tls.redirect_http) in front of okGateway,
// until the test ends; it returns the address.
func serveRedirecting(t *testing.T, opts front.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := front.New(newPlainHandler(okGateway{}, nil, &config.TLS{Listen: ":8443", RedirectHTTP: true}), opts)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String()
}

// With h2c: true and tls.redirect_http, a redirect over HTTP/2 does not
// say Connection: close (x/net would take it as GOAWAY for the whole
// connection): the client keeps its connection.
func TestRedirectOverH2CKeepsConnection(t *testing.T) {
	addr := serveRedirecting(t, front.Options{H2C: true})
	h, err := testutil.DialH2(t, addr, nil) // h2c with prior knowledge
	if err != nil {
		t.Fatal(err)
	}
	h.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := h.Preface(); err != nil {
		t.Fatal(err)
	}
	// next reads frames until done says so, failing on a GOAWAY: the
	// connection must stay open for the client's next request.
	next := func(what string, done func(http2.Frame) bool) {
		t.Helper()
		for {
			f, err := h.Framer.ReadFrame()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				t.Fatalf("%s: GOAWAY %v: the redirect's Connection: close ended the connection", what, f.ErrCode)
			case *http2.SettingsFrame:
				if !f.IsAck() {
					h.Framer.WriteSettingsAck()
				}
			}
			if done(f) {
				return
			}
		}
	}
	for i, id := range []uint32{1, 3} {
		if err := h.Headers(id, true, testutil.H2Get("http", addr, "/x")...); err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("redirect %d", i+1)
		next(what, func(f http2.Frame) bool {
			m, ok := f.(*http2.MetaHeadersFrame)
			if !ok || m.StreamID != id {
				return false
			}
			if st := m.PseudoValue("status"); st != "308" {
				t.Fatalf("%s: status %s, want 308", what, st)
			}
			return m.StreamEnded()
		})
		// A GOAWAY sent with the answer arrives before the answer to a
		// ping sent after it.
		if err := h.Framer.WritePing(false, [8]byte{byte(id)}); err != nil {
			t.Fatal(err)
		}
		next(what+", then a ping", func(f http2.Frame) bool {
			p, ok := f.(*http2.PingFrame)
			return ok && p.IsAck()
		})
	}
}

// OPTIONS * asks about this server, not about a resource: the
// redirecting plain listener hands it to the gateway (which answers it)
// rather than redirecting it to "https://host*".
func TestRedirectLeavesOptionsStar(t *testing.T) {
	c, err := net.Dial("tcp", serveRedirecting(t, front.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("OPTIONS * got %s, Location %q; want the gateway's answer", resp.Status, resp.Header.Get("Location"))
	}
}
