package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/front"
)

// What passes through the gateway as the app sends it, on every
// protocol: streams, flushed as they come; a 103's hints; the request id,
// once; an upgraded conversation, for as long as it lasts.

// Streams are flushed as they come, to a GET and to a request with a
// body of undeclared length (chunked over HTTP/1.1).
func TestStreamsFlush(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		s := serveCounted(t, app, protoOptions(t, proto), nil)
		c := protoClient(t, proto)
		for _, tc := range []struct{ method, path string }{
			{"GET", "/sse"}, {"GET", "/chunks"}, {"POST", "/sse"}, {"POST", "/chunks"},
		} {
			var body io.Reader
			if tc.method == "POST" {
				body = io.MultiReader(strings.NewReader("x"))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			req, _ := http.NewRequestWithContext(ctx, tc.method, protoURL(proto, s.addr)+tc.path, body)
			start := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				cancel()
				t.Fatalf("%s %s: head not flushed within 1.5 s: %v", tc.method, tc.path, err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Errorf("%s %s: first piece not flushed within 1.5 s: %v", tc.method, tc.path, err)
			} else if took := time.Since(start); took > time.Second {
				t.Errorf("%s %s: first piece after %v", tc.method, tc.path, took)
			}
			resp.Body.Close()
			cancel()
		}
	})
}

// A 103 is passed through with its own fields (over HTTP/1.1 without
// Connection: close), and the final answer, without them, still carries
// the request id.
func TestEarlyHints(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		s := serveCounted(t, app, protoOptions(t, proto), nil)
		var interim []string
		var hints textproto.MIMEHeader
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			interim = append(interim, fmt.Sprint(code))
			hints = h
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", protoURL(proto, s.addr)+"/hints", nil)
		req.Header.Set("X-Request-Id", "hints-id")
		final, err := protoClient(t, proto).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(final.Body)
		final.Body.Close()
		if len(interim) != 1 || interim[0] != "103" {
			t.Fatalf("interim answers %v, want one 103", interim)
		}
		if hints.Get("Connection") != "" || hints.Get("Link") == "" {
			t.Errorf("103 header %v", hints)
		}
		if err != nil || final.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("final %d %q %v", final.StatusCode, body, err)
		}
		if got := final.Header.Get("X-Request-Id"); got != "hints-id" {
			t.Errorf("final answer after a 103 has X-Request-Id %q, want hints-id (header %v)", got, final.Header)
		}
		if final.Header.Get("Link") != "" {
			t.Errorf("the 103's Link leaked into the final answer: %v", final.Header)
		}
	})
}

// An answer carries gatehouse's X-Request-Id once, over every protocol:
// the app's echo of it is not a second, and ids of the app's own give
// way to it.
func TestRequestIDOnce(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		s := serveCounted(t, app, protoOptions(t, proto), nil)
		for _, path := range []string{"/echoid", "/ownid"} {
			t.Run(path[1:], func(t *testing.T) {
				req, _ := http.NewRequest("GET", protoURL(proto, s.addr)+path, nil)
				req.Header.Set("X-Request-Id", "rid-1")
				resp, err := protoClient(t, proto).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if diff := cmp.Diff([]string{"rid-1"}, resp.Header.Values("X-Request-Id")); diff != "" {
					t.Errorf("X-Request-Id (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// An upgraded conversation (HTTP/1.1's) outlives the connection's read
// deadlines, head, keep-alive and body timeouts among them: messages
// 300 ms apart for 1.5 s all come back, on the plain listener and
// through TLS.
func TestUpgradeLongLived(t *testing.T) {
	t.Parallel()
	app := sampleApp(t)
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		s := serveCounted(t, app, withOpts(w, front.Options{HeadTimeout: 400 * time.Millisecond, KeepaliveTimeout: 400 * time.Millisecond, BodyTimeout: 400 * time.Millisecond}), nil)
		c := dialRawOver(t, w, s.addr)
		c.send("GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		resp, _, err := c.resp(3 * time.Second)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		if resp.Close || resp.Header.Get("Connection") == "close" {
			t.Errorf("the 101 says Connection: close: %v", resp.Header)
		}
		// A message every 300ms: each pause is under the front's
		// timeouts, the conversation far past them.
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for i := range 6 {
			<-tick.C
			msg := fmt.Sprintf("m%d\n", i)
			c.send(msg)
			c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if l, err := c.br.ReadString('\n'); l != "echo "+msg {
				t.Fatalf("after %v the conversation broke: %q %v", time.Duration(i+1)*300*time.Millisecond, l, err)
			}
		}
		c.close()
	})
}
