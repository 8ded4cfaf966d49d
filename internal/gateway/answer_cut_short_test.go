package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
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
