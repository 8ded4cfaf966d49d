//go:build linux

package front

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// An idle HTTP/2 connection parks as an idle HTTP/1.1 one does, over
// TLS and h2c: no goroutine holds it, and each way its life goes on or
// ends still works.
func TestIdleH2ConnectionsPark(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts Options
		// then acts on the parked connection and checks what follows.
		then func(t *testing.T, s *Server, hc *h2Client, scheme string)
	}{
		{"a request is answered, and it parks again", Options{}, func(t *testing.T, s *Server, hc *h2Client, scheme string) {
			if a := hc.exchange(3, h2Get(scheme, "/two")); a.status() != "200" || a.data != "GET /two" {
				t.Errorf("after parking: %s %q", a.status(), a.data)
			}
			waitParked(t, s, 1)
		}},
		{"a request in pieces, the first waking it, is answered", Options{}, func(t *testing.T, s *Server, hc *h2Client, scheme string) {
			var frame bytes.Buffer
			var flat []string
			for _, f := range h2Get(scheme, "/pieces") {
				flat = append(flat, f[0], f[1])
			}
			http2.NewFramer(&frame, nil).WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hc.Block(flat...), EndStream: true, EndHeaders: true})
			b := frame.Bytes()
			if _, err := hc.Conn.Write(b[:4]); err != nil {
				t.Fatal(err)
			}
			waitParked(t, s, 0)
			if _, err := hc.Conn.Write(b[4:]); err != nil {
				t.Fatal(err)
			}
			if a := hc.answer(3); a.status() != "200" || a.data != "GET /pieces" {
				t.Errorf("after parking: %s %q", a.status(), a.data)
			}
		}},
		{"Shutdown tells it GOAWAY, and it closes", Options{}, func(t *testing.T, s *Server, hc *h2Client, scheme string) {
			shut := beginShutdownOf(s, 10*time.Second)
			hc.awaitGoAwayThenEnd(t)
			if err := <-shut; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}},
		{"its idle timeout tells it GOAWAY, and it closes", Options{KeepaliveTimeout: 300 * time.Millisecond}, func(t *testing.T, s *Server, hc *h2Client, scheme string) {
			hc.awaitGoAwayThenEnd(t)
			waitConns(t, s, 0)
		}},
		{"Close closes it", Options{}, func(t *testing.T, s *Server, hc *h2Client, scheme string) {
			s.Close()
			if _, err := hc.Framer.ReadFrame(); err == nil {
				t.Errorf("a frame after Close")
			}
			waitConns(t, s, 0)
		}},
		{"its client's close ends it", Options{}, func(t *testing.T, s *Server, hc *h2Client, scheme string) {
			hc.Conn.Close()
			waitConns(t, s, 0)
			if n := parked(s); n != 0 {
				t.Errorf("%d still parked", n)
			}
		}},
	}
	for _, way := range h2Ways {
		for _, tc := range cases {
			t.Run(way.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				opts, cli := h2Options(t, tc.opts, way.tls)
				s, addr := parkServe(t, echoStub{}, opts)
				hc := h2Open(t, addr, cli)
				scheme := "http"
				if way.tls {
					scheme = "https"
				}
				if a := hc.exchange(1, h2Get(scheme, "/one")); a.status() != "200" || a.data != "GET /one" {
					t.Fatalf("first request: %s %q", a.status(), a.data)
				}
				waitParked(t, s, 1)
				tc.then(t, s, hc, scheme)
			})
		}
	}
}

// awaitGoAwayThenEnd reads until a GOAWAY, then until the connection
// ends, which it must within the linger after it.
func (hc *h2Client) awaitGoAwayThenEnd(t *testing.T) {
	t.Helper()
	goAway := false
	for {
		f, err := hc.Framer.ReadFrame()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("no end of the connection (GOAWAY seen: %v)", goAway)
		case err != nil:
			if !goAway {
				t.Errorf("the connection ended (%v) without GOAWAY", err)
			} else if !errors.Is(err, io.EOF) {
				t.Logf("ended with %v", err)
			}
			return
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			goAway = true
		}
	}
}
