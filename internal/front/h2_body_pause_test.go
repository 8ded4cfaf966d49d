package front

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// On HTTP/2 the per-read body deadline is a timer that ends the body when
// it fires: it is cleared after each read, so a handler that pauses
// between two reads for longer than BodyTimeout (an app consuming an
// upload slowly) still reads the whole body, as over HTTP/1.1.
func TestH2BodyPauseLongerThanBodyTimeout(t *testing.T) {
	srvTLS, cliTLS := testTLS(t, "h2", "http/1.1")
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, 1)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			limAnswer(w, http.StatusOK, "first read: "+err.Error())
			return
		}
		time.Sleep(900 * time.Millisecond) // the app is slow to take the rest
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			limAnswer(w, http.StatusOK, "second read: "+err.Error())
			return
		}
		limAnswer(w, http.StatusOK, string(first)+string(rest))
	}}
	body := strings.Repeat("x", 8<<20) // past HTTP/2 flow-control windows: the client waits for the handler
	addr := limServe(t, stub, Options{TLS: srvTLS, BodyTimeout: 300 * time.Millisecond})
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: cliTLS, Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP2(h2)
		tr.Protocols.SetHTTP1(!h2)
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post("https://"+addr+"/up", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != body {
			t.Errorf("%s: handler got %d bytes (%.80q); want the whole %d-byte body", resp.Proto, len(b), b, len(body))
		}
	}
}
