package front

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// testTLS returns a server config with net/http's test certificate (for
// 127.0.0.1 and example.com) offering protos, and a client config that
// trusts it.
func testTLS(t *testing.T, protos ...string) (server, client *tls.Config) {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS()
	cert, leaf := ts.TLS.Certificates[0], ts.Certificate()
	ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
}

// dialALPN dials addr with d and cfg, offering proto alone, its
// handshake done within 5 s; closed when the test ends.
func dialALPN(t *testing.T, d *net.Dialer, addr string, cfg *tls.Config, proto string) *tls.Conn {
	t.Helper()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{proto}
	dd := *d
	dd.Timeout = 5 * time.Second
	c, err := tls.DialWithDialer(&dd, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// overEachProtocol serves handle with opts over TLS (offering h2 and
// http/1.1), and runs f on its address as eachProtocol does.
func overEachProtocol(t *testing.T, opts Options, handle func(w http.ResponseWriter, r *http.Request), f func(t *testing.T, c *http.Client, addr string)) {
	srvTLS, cliTLS := testTLS(t, "h2", "http/1.1")
	opts.TLS = srvTLS
	addr := limServe(t, &limStub{handle: handle}, opts)
	eachProtocol(t, cliTLS, func(t *testing.T, c *http.Client) { f(t, c, addr) })
}

// eachProtocol runs f, in parallel subtests, with a client over TLS that
// speaks HTTP/1.1 only and one that speaks HTTP/2 only.
func eachProtocol(t *testing.T, cliTLS *tls.Config, f func(t *testing.T, c *http.Client)) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			// A config of its own: the transport adds the protocols it
			// speaks to the one it is given.
			tr := &http.Transport{TLSClientConfig: cliTLS.Clone(), Protocols: new(http.Protocols)}
			tr.Protocols.SetHTTP1(proto == "HTTP/1.1")
			tr.Protocols.SetHTTP2(proto == "HTTP/2")
			defer tr.CloseIdleConnections()
			// A minute: a test uploads 8 MiB, under -race beside the
			// plain suite on a 2-core machine (over 15 s seen).
			f(t, &http.Client{Transport: tr, Timeout: time.Minute})
		})
	}
}

// protoStub answers with the protocol, TLS and path it saw.
func protoStub() *limStub {
	return &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		limAnswer(w, http.StatusOK, r.Proto+" tls="+boolStr(r.TLS != nil)+" "+r.URL.Path+" "+string(body))
	}}
}

func boolStr(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Over TLS, a client that offers h2 gets HTTP/2 and one that does not
// HTTP/1.1, with a body of known length or chunked; the handler sees the
// handshake in both; HSTS is added to answers over TLS.
func TestTLSServesHTTP1AndHTTP2(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t, "h2", "http/1.1")
	for _, tc := range []struct {
		name      string
		protocols func(*http.Protocols)
		body      string
		want      string
	}{
		{"h1", func(p *http.Protocols) { p.SetHTTP1(true) }, "", "HTTP/1.1 tls=yes /x "},
		{"h1 chunked", func(p *http.Protocols) { p.SetHTTP1(true) }, "chunked", "HTTP/1.1 tls=yes /x chunked"},
		{"h2", func(p *http.Protocols) { p.SetHTTP2(true) }, "", "HTTP/2.0 tls=yes /x "},
		{"h2 body", func(p *http.Protocols) { p.SetHTTP2(true) }, "stream", "HTTP/2.0 tls=yes /x stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := limServe(t, protoStub(), Options{TLS: srvTLS, HSTS: "max-age=600"})
			// A config of its own: the transport adds the protocols it
			// speaks to the one it is given.
			tr := &http.Transport{TLSClientConfig: cliTLS.Clone(), Protocols: new(http.Protocols)}
			tc.protocols(tr.Protocols)
			defer tr.CloseIdleConnections()
			var body io.Reader
			if tc.body != "" {
				body = io.MultiReader(strings.NewReader(tc.body)) // unknown length: chunked on h1
			}
			req, _ := http.NewRequest("POST", "https://"+addr+"/x", body)
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if h := resp.Header.Get("Strict-Transport-Security"); h != "max-age=600" {
				t.Errorf("Strict-Transport-Security %q, want max-age=600", h)
			}
		})
	}
}

// A plain listener with H2C serves HTTP/2 with prior knowledge and still
// HTTP/1.1; without it the preface is refused in HTTP/2 (GOAWAY).
func TestH2C(t *testing.T) {
	t.Parallel()
	addr := limServe(t, protoStub(), Options{H2C: true})
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(h2)
		tr.Protocols.SetHTTP1(!h2)
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/p")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "HTTP/1.1 tls=no /p "
		if h2 {
			want = "HTTP/2.0 tls=no /p "
		}
		if string(got) != want {
			t.Errorf("h2c=%v: got %q, want %q", h2, got, want)
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("HSTS on a plain connection")
		}
	}
	off := limServe(t, protoStub(), Options{})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	if _, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + off + "/p"); err == nil {
		t.Errorf("h2c served on a listener without H2C")
	}
}

// A client that connects and never finishes its handshake is cut off at
// HeadTimeout; one that speaks plain HTTP to the TLS port is closed (after
// a 400, TestTLSPortAnswersPlainHTTP); a
// TLS-ALPN-01 validation ends after the handshake; none is served.
func TestTLSHandshakeBounds(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t, "h2", "http/1.1", "acme-tls/1")
	stub := protoStub()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Long enough for a handshake to end in time on a busy machine.
	const headTimeout = time.Second
	s := New(stub, Options{TLS: srvTLS, HeadTimeout: headTimeout})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	addr := ln.Addr().String()

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := io.Copy(io.Discard, silent); err != nil {
		t.Errorf("silent client: %v; want the server to close it", err)
	}
	if d := time.Since(start); d > headTimeout+3*time.Second {
		t.Errorf("silent client closed after %v; want about HeadTimeout (%v)", d, headTimeout)
	}

	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	io.WriteString(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(plain)
	if strings.Contains(string(b), "tls=") {
		t.Errorf("plain HTTP on the TLS port was served: %q", b)
	}

	acme := cliTLS.Clone()
	acme.NextProtos = []string{"acme-tls/1"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, acme)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("an acme-tls/1 connection stayed open for reading")
	}
	c.Close()
	if _, served := stub.seen(); len(served) > 0 {
		t.Errorf("requests served: %q", served)
	}
	// The client sees its connection closed as the server counts the
	// failure: wait for the count rather than race it.
	testutil.WaitFor(t, 5*time.Second, "TLSHandshakeErrors ≥ 2 (silent and plain clients)", func() bool { return s.TLSHandshakeErrors() >= 2 })
}

// Shutdown lets an HTTP/2 stream in flight finish, tells the connection
// to go away, and returns once it has.
func TestH2ShutdownFinishesStreams(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t, "h2", "http/1.1")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		limAnswer(w, http.StatusOK, "done")
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(stub, Options{TLS: srvTLS})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	defer func() { s.Close(); <-done }()

	tr := &http.Transport{TLSClientConfig: cliTLS, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	defer tr.CloseIdleConnections()
	type res struct {
		body string
		err  error
	}
	got := make(chan res, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- res{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- res{string(b), err}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond) // Shutdown is waiting on the stream
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a stream in flight", err)
	default:
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "done" {
		t.Errorf("stream in flight: %q, %v; want it finished", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A client that stops reading an HTTP/2 answer is given up on after about
// SendTimeout: the handler's write fails, and its stream slot is freed.
func TestH2SendTimeout(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t, "h2")
	failed := make(chan time.Duration, 1)
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		chunk := make([]byte, 32<<10)
		start := time.Now()
		for time.Since(start) < 20*time.Second {
			if _, err := w.Write(chunk); err != nil {
				failed <- time.Since(start)
				return
			}
		}
		failed <- -1
	}}
	addr := limServe(t, stub, Options{TLS: srvTLS, SendTimeout: 500 * time.Millisecond})
	tr := &http.Transport{TLSClientConfig: cliTLS, Protocols: new(http.Protocols),
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerConnection: 64 << 10, MaxReceiveBufferPerStream: 64 << 10}}
	tr.Protocols.SetHTTP2(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read
	select {
	case d := <-failed:
		if d < 0 || d > 5*time.Second {
			t.Errorf("the handler's writes failed after %v; want about SendTimeout (500ms) once the client stopped reading", d)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("the handler never returned")
	}
}

// A client that speaks plain HTTP to the TLS port (http://host:443/) is
// told so in a 400 it can show, as net/http, Caddy and nginx tell it,
// rather than closed without a word; nothing is served.
func TestTLSPortAnswersPlainHTTP(t *testing.T) {
	t.Parallel()
	srvTLS, _ := testTLS(t, "h2", "http/1.1")
	stub := protoStub()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(stub, Options{TLS: srvTLS, HeadTimeout: 10 * time.Second, SendTimeout: 10 * time.Second})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"HEAD /x HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\na=b",
	} {
		t.Run(strings.Fields(req)[0], func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, req)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("reading the answer: %v (got %q)", err, b)
			}
			if !strings.HasPrefix(string(b), "HTTP/1.0 400 ") || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
				t.Errorf("plain HTTP on the TLS port: answer %q; want a 400 saying it needs HTTPS", b)
			}
		})
	}
	t.Cleanup(func() {
		if _, served := stub.seen(); len(served) > 0 {
			t.Errorf("requests served: %q", served)
		}
	})
}
