package h2_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/h2"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Windows set below the protocol's initial 65535 bytes are that much:
// a client may send it on a stream before it has heard the server's
// SETTINGS (RFC 9113 §6.9.2), and on the connection, whose window no
// SETTINGS changes and a WINDOW_UPDATE only widens.
func TestWindowsBelowTheInitialAreTheInitial(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &h2.Server{StreamWindow: 20 << 10, ConnWindow: 30 << 10}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	}), nil)
	h, err := testutil.DialH2(t, ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, RawH2: h}
	if err := h.Preface(); err != nil {
		t.Fatal(err)
	}
	// All of it before the server's SETTINGS are read, let alone
	// acknowledged.
	c.post(1, "/upload")
	const initial = 65535
	chunk := make([]byte, 16<<10)
	for sent := 0; sent < initial; sent += len(chunk) {
		part := chunk[:min(len(chunk), initial-sent)]
		if err := h.Framer.WriteData(1, sent+len(part) == initial, part); err != nil {
			t.Fatal(err)
		}
	}
	a := c.readAnswer(1)
	if want := fmt.Sprintf("%d <nil>", initial); string(a.body) != want || a.reset != nil {
		t.Errorf("body %q, reset %v; want %q", a.body, a.reset, want)
	}
	for _, g := range c.goAways {
		t.Errorf("GOAWAY %v %q", g.ErrCode, g.DebugData())
	}
}
