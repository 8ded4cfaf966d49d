package compress

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestServerSentEventsArriveOneByOne proves Flush delivers each event
// through the encoder: the server writes the next event only after the
// client has decoded the previous one, so an event held in an encoder's
// buffer stalls the exchange instead of passing unnoticed.
func TestServerSentEventsArriveOneByOne(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	const events = 20
	for _, enc := range c.Encodings() {
		t.Run(enc, func(t *testing.T) {
			t.Parallel()
			acked := make(chan int)
			handlerDone := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				handlerDone <- serveEvents(c, rw, r, events, acked)
			}))
			defer srv.Close()

			// The safety deadline only turns a stalled stream into a
			// failure with a message instead of a test binary timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept-Encoding", enc)
			// A transport of its own (compression off, so the body comes
			// as sent) whose idle connections close with the test.
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding = %q, want %q", got, enc)
			}
			dec, closeDec, err := newDecoder(enc, resp.Body)
			if err != nil {
				t.Fatalf("open %s decoder: %v", enc, err)
			}
			defer closeDec()
			lines := bufio.NewReader(dec)
			for i := range events {
				ev, err := readEvent(lines)
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if want := eventData(i); ev != want {
					t.Fatalf("event %d = %q, want %q", i, ev, want)
				}
				acked <- i
			}
			if err := <-handlerDone; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func eventData(i int) string {
	return fmt.Sprintf("tick %d %s", i, strings.Repeat("payload ", i%5))
}

// serveEvents writes events server-sent events, each followed by a Flush,
// and waits for the client's acknowledgement of each before the next.
func serveEvents(c *Compressor, rw http.ResponseWriter, r *http.Request, events int, acked <-chan int) error {
	h := rw.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	enc := c.Negotiate(r.Header["Accept-Encoding"])
	if enc == "" || !c.Applies(http.StatusOK, r.Method, h, -1) {
		return fmt.Errorf("event stream with Accept-Encoding %q not compressed", r.Header["Accept-Encoding"])
	}
	Prepare(h, enc)
	w := c.NewWriter(enc, rw)
	defer w.Release()
	for i := range events {
		if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i, eventData(i)); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		select {
		case got := <-acked:
			if got != i {
				return fmt.Errorf("client acknowledged event %d, want %d", got, i)
			}
		case <-r.Context().Done():
			return fmt.Errorf("client left before acknowledging event %d: %w", i, r.Context().Err())
		}
	}
	return w.Close()
}

// readEvent reads one event's lines up to the blank line ending it and
// returns its data field.
func readEvent(r *bufio.Reader) (string, error) {
	var data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("read event line: %w", err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return data, nil
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data = d
		}
	}
}
