package h2_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// What a handler reads is given back to the connection's window once the
// client has less left than that, not only once it is a quarter of the
// window: bodies buffered for handlers that do not read them yet hold
// most of the connection's window, and an upload whose handler reads
// all it is sent must not wait for them.
func TestReadBodyIsGivenBackWhenTheClientRunsShort(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	}), nil)
	c := dialRaw(t, ts)
	c.grant = false
	u := uploader{c: c, conn: 65535, streams: map[uint32]int64{}}
	// 800 KiB of the connection's 1 MiB, held: three streams' whole
	// windows and 32 KiB more.
	for _, id := range []uint32{1, 3, 5} {
		c.post(id, "/hold")
		u.send(id, 256<<10, false)
	}
	c.post(7, "/hold")
	u.send(7, 32<<10, false)
	const size = 300 << 10
	c.post(9, "/read")
	u.send(9, size, true)
	if a := c.readAnswer(9); string(a.body) != strconv.Itoa(size) || a.reset != nil {
		t.Errorf("the reading handler answered %q, reset %v; want %d", a.body, a.reset, size)
	}
}

// uploader sends request bodies within the windows the server gives,
// reading its WINDOW_UPDATE frames when they are spent.
type uploader struct {
	c       *rawClient
	conn    int64
	streams map[uint32]int64 // what each stream's window has taken
}

// send sends n bytes on stream id, the last frame ending it if end.
func (u *uploader) send(id uint32, n int, end bool) {
	u.c.t.Helper()
	const streamWindow = 256 << 10 // the server's SETTINGS
	chunk := make([]byte, 16<<10)
	for n > 0 {
		avail := min(int64(len(chunk)), int64(n), u.conn, streamWindow-u.streams[id])
		if avail <= 0 {
			if wu, ok := u.c.readFrame().(*http2.WindowUpdateFrame); ok {
				if wu.StreamID == 0 {
					u.conn += int64(wu.Increment)
				} else {
					u.streams[wu.StreamID] -= int64(wu.Increment)
				}
			}
			continue
		}
		n -= int(avail)
		if err := u.c.Framer.WriteData(id, end && n == 0, chunk[:avail]); err != nil {
			u.c.t.Fatal(err)
		}
		u.conn -= avail
		u.streams[id] += avail
	}
}

// A stream's window is given back in quarters of it, however small the
// handler's reads: its client can have spent it only on bytes the
// handler holds or has read, so reading on always comes to a quarter,
// and a grant of each small read would cost a frame (a write) per read
// and have the client send small frames to match.
func TestStreamWindowIsGivenBackInQuarters(t *testing.T) {
	t.Parallel()
	start := make(chan struct{})
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-start:
		case <-r.Context().Done():
			return
		}
		buf := make([]byte, 4<<10)
		var n int64
		for {
			k, err := r.Body.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	}), nil)
	c := dialRaw(t, ts)
	c.grant = false
	u := uploader{c: c, conn: 65535, streams: map[uint32]int64{}}
	c.post(1, "/read")
	const window = 256 << 10 // the server's SETTINGS
	u.send(1, window, false)
	c.ping() // the server holds the whole window: the client has none left
	close(start)
	for {
		wu, ok := c.readFrame().(*http2.WindowUpdateFrame)
		if !ok || wu.StreamID != 1 {
			continue
		}
		if wu.Increment < window/4 {
			t.Errorf("the stream's first WINDOW_UPDATE gives back %d bytes, want at least a quarter of its window, %d", wu.Increment, window/4)
		}
		u.streams[1] -= int64(wu.Increment)
		break
	}
	u.send(1, 16<<10, true)
	if a := c.readAnswer(1); string(a.body) != strconv.Itoa(window+16<<10) || a.reset != nil {
		t.Errorf("the handler answered %q, reset %v; want %d", a.body, a.reset, window+16<<10)
	}
}
