package front

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// On HTTP/2 the send deadline is a timer that resets the stream when it
// fires, write pending or not: it is cleared after each write, so a
// response that flushed its head (or an event) and then waits longer than
// SendTimeout for the app's next bytes (server-sent events, long poll)
// arrives whole, as over HTTP/1.1.
func TestH2QuietStreamOutlivesSendTimeout(t *testing.T) {
	srvTLS, cliTLS := testTLS(t, "h2", "http/1.1")
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(900 * time.Millisecond) // the app is quiet for 3x SendTimeout
		io.WriteString(w, "data: second\n\n")
	}}
	addr := limServe(t, stub, Options{TLS: srvTLS, SendTimeout: 300 * time.Millisecond})
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: cliTLS, Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP2(h2)
		tr.Protocols.SetHTTP1(!h2)
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/events")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if want := "data: first\n\ndata: second\n\n"; string(b) != want || err != nil {
			t.Errorf("%s: got %q, %v; want %q", resp.Proto, b, err, want)
		}
	}
}
