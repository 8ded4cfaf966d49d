package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An answer the app cuts short, whether the gateway holds it whole (a
// Content-Length within response_buffer) or reads it ahead (chunked),
// reaches the client as an answer that broke: over HTTP/1.1 a connection
// closed before the answer's end, over HTTP/2 a reset stream, never a
// clean end of stream after fewer bytes. The access log says
// response_truncated, with the status and the bytes the client got.
func TestAnswerCutShortReachesClientBroken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, answer string }{
		{"held whole", "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("x", 1000)},
		{"read ahead", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + strings.Repeat("x", 1000) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) { t.Parallel(); answerCutShort(t, tc.answer) })
	}
}

func answerCutShort(t *testing.T, answer string) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, answer)
		})
		d := newDirect(t, proto, addr, nil)
		if proto == "h1" {
			resp, err := protoClient(t, proto).Get(d.url + "/short")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				t.Errorf("the client read a complete answer; it was cut short")
			}
		} else {
			h, err := dialH2(t, d.addr, proto == "h2")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.start(); err != nil {
				t.Fatal(err)
			}
			if err := h.get(1, "/short"); err != nil {
				t.Fatal(err)
			}
			v, ok := h.await(h2Patience, settled(1))
			st := v.Streams[1]
			if !ok || st == nil || !st.Reset {
				t.Fatalf("stream of an answer cut short: %v; want it reset, not ended", v.String())
			}
			// What the log says was sent was: the head, and the part of
			// the body read before the cut, as over HTTP/1.1.
			if e := d.entry(t, "/short"); st.Status != e.Status || int64(len(st.Body)) != e.Bytes {
				t.Errorf("the client saw status %d and %d bytes before the reset; the log says %d and %d", st.Status, len(st.Body), e.Status, e.Bytes)
			}
		}
		if e := d.entry(t, "/short"); e.Cause != "response_truncated" || e.Status != 200 {
			t.Errorf("access entry %d %s, want 200 response_truncated", e.Status, e.Cause)
		}
		d.waitIdle(t)
	})
}

// An HTTP/1.0 client's answer has no length: the connection's end ends
// it. When the app cuts the answer short, that end must not look like a
// whole answer's: over TLS no close_notify comes (an alert record, seen
// here under TLS 1.2, where a record's type is in the clear), only the
// connection's close. Over plain TCP nothing tells them apart.
func TestAnswerCutShortToHTTP10OverTLSEndsWithoutCloseNotify(t *testing.T) {
	t.Parallel()
	cut := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + strings.Repeat("x", 1000) + "\r\n"
	whole := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	for _, tc := range []struct {
		name, answer string
		alert        bool
	}{
		{"cut short", cut, false},
		{"whole", whole, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, tc.answer)
			})
			d := directWith(t, addr, wireH1TLS.h1Options(), nil)
			raw, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			rec := &recordTypes{Conn: raw}
			_, cfg := h2TLS()
			cfg = cfg.Clone()
			cfg.NextProtos, cfg.MaxVersion = []string{"http/1.1"}, tls.VersionTLS12
			c := tls.Client(rec, cfg)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, "GET /ten HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(c)
			if !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) {
				t.Fatalf("answer %.40q", b)
			}
			if got := bytes.IndexByte(rec.types, recordAlert) >= 0; got != tc.alert {
				t.Errorf("an alert came after the answer: %v, want %v (record types %v)", got, tc.alert, rec.types)
			}
		})
	}
}

// recordAlert is a TLS alert record's type.
const recordAlert = 21

// recordTypes follows the TLS records read through it, keeping the
// types of those that come after the handshake (type 23's first).
type recordTypes struct {
	net.Conn
	hdr   [5]byte
	hdrN  int
	left  int
	data  bool
	types []byte
}

func (r *recordTypes) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if r.left > 0 {
			k := min(r.left, len(b))
			r.left -= k
			b = b[k:]
			continue
		}
		k := copy(r.hdr[r.hdrN:], b)
		r.hdrN += k
		b = b[k:]
		if r.hdrN == len(r.hdr) {
			r.hdrN, r.left = 0, int(r.hdr[3])<<8|int(r.hdr[4])
			r.data = r.data || r.hdr[0] == 23
			if r.data {
				r.types = append(r.types, r.hdr[0])
			}
		}
	}
	return n, err
}
