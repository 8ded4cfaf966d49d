package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
)

// okGateway stands for the gateway: it answers 200 to what it is handed.
type okGateway struct{}

func (okGateway) Serve(x *front.Exchange) { x.W.WriteHeader(http.StatusOK) }

// With h2c: true and tls.redirect_http, a redirect over HTTP/2 does not
// say Connection: close (x/net would take it as GOAWAY for the whole
// connection): the client keeps its connection.
func TestRedirectOverH2CKeepsConnection(t *testing.T) {
	h := newPlainHandler(okGateway{}, nil, &config.TLS{Listen: ":8443", RedirectHTTP: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := front.New(h, front.Options{H2C: true})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	defer func() { s.Close(); <-done }()

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var reused []bool
	for i := range 2 {
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { reused = append(reused, ci.Reused) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+ln.Addr().String()+"/x", nil)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect || resp.ProtoMajor != 2 {
			t.Fatalf("request %d: %s %s", i, resp.Proto, resp.Status)
		}
		time.Sleep(100 * time.Millisecond) // let a GOAWAY arrive
	}
	if !reused[1] {
		t.Errorf("the second redirect over h2c needed a new connection (reused %v): the first one's Connection: close sent GOAWAY", reused)
	}
}

// OPTIONS * asks about this server, not about a resource: the
// redirecting plain listener hands it to the gateway (which answers it)
// rather than redirecting it to "https://host*".
func TestRedirectLeavesOptionsStar(t *testing.T) {
	h := newPlainHandler(okGateway{}, nil, &config.TLS{Listen: ":8443", RedirectHTTP: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := front.New(h, front.Options{})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	defer func() { s.Close(); <-done }()
	c, err := net.Dial("tcp", ln.Addr().String())
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
