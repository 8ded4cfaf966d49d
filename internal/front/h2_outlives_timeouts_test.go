package front

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// HTTP/2 connections and streams outlive the front's timeouts while they
// are quiet for a reason: each timeout bounds what it is for, and is not
// left running after it.

// An h2c connection lives as long as its client keeps using it, as an
// HTTP/2 connection over TLS does: the read deadline the front set for
// the preface's head (HeadTimeout from the connection's start) must not
// outlive it, or every h2c connection is cut HeadTimeout after it opened,
// whatever it carries.
func TestH2COutlivesHeadTimeout(t *testing.T) {
	t.Parallel()
	// Long enough for the preface to come in time on a busy machine.
	const headTimeout = time.Second
	addr := limServe(t, protoStub(), Options{H2C: true, HeadTimeout: headTimeout})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true) // h2c with prior knowledge, and nothing else
	cc, err := tr.NewClientConn(t.Context(), "http", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	get := func() (string, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/p", nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(); err != nil || got != "HTTP/2.0 tls=no /p " {
		t.Fatalf("first request: %q, %v", got, err)
	}
	const pause = headTimeout * 3 / 2
	time.Sleep(pause) // the point of the test: the connection outlives HeadTimeout
	if got, err := get(); err != nil || got != "HTTP/2.0 tls=no /p " {
		t.Errorf("request %v after the connection opened (HeadTimeout %v): %q, %v; want it served on the same connection",
			pause, headTimeout, got, err)
	}
}

// On HTTP/2 the send deadline is a timer that resets the stream when it
// fires, write pending or not: it is cleared after each write, so a
// response that flushed its head (or an event) and then waits longer than
// SendTimeout for the app's next bytes (server-sent events, long poll)
// arrives whole, as over HTTP/1.1.
func TestH2QuietStreamOutlivesSendTimeout(t *testing.T) {
	t.Parallel()
	// A second a write, so that a write slow on a busy machine is not
	// taken for the timer's fault.
	const sendTimeout = time.Second
	events := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(sendTimeout * 3 / 2) // the app is quiet for longer than SendTimeout
		io.WriteString(w, "data: second\n\n")
	}
	overEachProtocol(t, Options{SendTimeout: sendTimeout}, events, func(t *testing.T, c *http.Client, addr string) {
		resp, err := c.Get("https://" + addr + "/events")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "data: first\n\ndata: second\n\n"; string(b) != want || err != nil {
			t.Errorf("%s: got %q, %v; want %q", resp.Proto, b, err, want)
		}
	})
}

// On HTTP/2 the per-read body deadline is a timer that ends the body when
// it fires: it is cleared after each read, so a handler that pauses
// between two reads for longer than BodyTimeout (an app consuming an
// upload slowly) still reads the whole body, as over HTTP/1.1.
func TestH2BodyPauseLongerThanBodyTimeout(t *testing.T) {
	// Not parallel with the other tests: the client must keep the body
	// coming within BodyTimeout, and it moves megabytes.
	// Two seconds between reads, so that a client slow to refill the
	// window on a machine running the plain and -race suites side by side
	// is not taken for the timer's fault.
	const bodyTimeout = 2 * time.Second
	body := strings.Repeat("x", 8<<20) // past HTTP/2 flow-control windows: the client waits for the handler
	// The handler answers with the body's length and digest, not the body:
	// what is under test is the upload, and an echo doubles the transfer.
	digest := func(b []byte) string { return fmt.Sprintf("%d %x", len(b), sha256.Sum256(b)) }
	slowReader := func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, 1)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			limAnswer(w, http.StatusOK, "first read: "+err.Error())
			return
		}
		time.Sleep(bodyTimeout * 3 / 2) // the app is slow to take the rest
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			limAnswer(w, http.StatusOK, "second read: "+err.Error())
			return
		}
		limAnswer(w, http.StatusOK, digest(append(first, rest...)))
	}
	overEachProtocol(t, Options{BodyTimeout: bodyTimeout}, slowReader, func(t *testing.T, c *http.Client, addr string) {
		resp, err := c.Post("https://"+addr+"/up", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := digest([]byte(body)); string(b) != want {
			t.Errorf("%s: handler got %q; want the whole %d-byte body (%s)", resp.Proto, b, len(body), want)
		}
	})
}
