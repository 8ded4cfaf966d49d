package h2_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// Padding counts against both windows and is given back to both at
// once: an upload padded far beyond its data does not stall once the
// stream's window is spent on padding.
func TestPaddedUploadIsNotStalled(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	}), nil)
	c := dialRaw(t, ts)
	c.post(1, "/upload")
	const frames = 3000 // 768 KiB of window at 256 bytes a frame, 3,000 bytes of data
	pad := make([]byte, 255)
	streamWin, connWin := int64(256<<10), int64(1<<20)
	for i := range frames {
		for streamWin < 256 || connWin < 256 {
			switch f := c.readFrame().(type) {
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
				} else if f.StreamID == 1 {
					streamWin += int64(f.Increment)
				}
			case *http2.RSTStreamFrame:
				t.Fatalf("stream reset (%v) after %d padded frames", f.ErrCode, i)
			}
		}
		if err := c.Framer.WriteDataPadded(1, i == frames-1, []byte{'x'}, pad); err != nil {
			t.Fatal(err)
		}
		streamWin -= 256
		connWin -= 256
	}
	a := c.readAnswer(1)
	if string(a.body) != strconv.Itoa(frames) {
		t.Errorf("the handler read %q bytes, want %d", a.body, frames)
	}
}
