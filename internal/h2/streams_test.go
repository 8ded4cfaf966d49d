package h2_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// answerFor is the body a stream of path is answered with: its own, of
// a length that grows with i, past the size an answer is held back to
// and the client's window for the larger ones.
func answerFor(i int) string { return strings.Repeat(fmt.Sprintf("%d:", i), i*400+1) }

func TestConcurrentStreamsEachGetTheirAnswer(t *testing.T) {
	t.Parallel()
	const n = 50
	// The handlers of the streams sent together answer once all of
	// them run: the streams are open on the connection at once.
	var arrived atomic.Int32
	together := make(chan struct{})
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/answer/%d", &i); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Query().Has("together") {
			if arrived.Add(1) == n {
				close(together)
			}
			select {
			case <-together:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, answerFor(i))
	}), nil)
	client := h2cClient(t, 64<<10)
	// One connection first: net/http dials one per request until it has
	// an HTTP/2 connection to share.
	if err := fetchAnswer(client, ts.addr, 0, ""); err != nil {
		t.Fatal(err)
	}
	// All of them start before any answer is read, so that they are open
	// on the connection at once.
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fetchAnswer(client, ts.addr, i, "?together")
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
	}
	ts.nextConn(t)
	select {
	case sc := <-ts.accepted:
		t.Errorf("the client opened a second connection (%v): the streams were not all served on one", sc.RemoteAddr())
	default:
	}
}

func fetchAnswer(client *http.Client, addr string, i int, query string) error {
	resp, err := client.Get(fmt.Sprintf("http://%s/answer/%d%s", addr, i, query))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if want := answerFor(i); string(body) != want {
		return fmt.Errorf("body of %d bytes, want %d bytes: %.40q…", len(body), len(want), body)
	}
	return nil
}

// A body larger than both windows, each way, only arrives whole if the
// server grants window as the handler reads, and waits for and takes
// the client's grants as it writes.
func TestLargeBodyEchoedWhole(t *testing.T) {
	t.Parallel()
	// An exchange that stalls ends when the server's connection closes,
	// in the server's cleanup, which runs before this one.
	exchanged := make(chan struct{})
	t.Cleanup(func() { <-exchanged })
	rec := make(chan *recordingConn, 1)
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(w, r.Body); err != nil {
			t.Errorf("echoing: %v", err)
		}
	}), func(nc net.Conn) net.Conn {
		rc := &recordingConn{Conn: nc}
		rec <- rc
		return rc
	})
	// The client's window, 64 KiB, and the server's stream window,
	// 256 KiB, are both far below the body.
	client := h2cClient(t, 64<<10)
	body := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(body)
	var got []byte
	var err error
	go func() {
		defer close(exchanged)
		got, err = echo(client, "http://"+ts.addr+"/echo", body)
	}()
	await(t, exchanged, "the echo")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		i := 0
		for i < len(got) && i < len(body) && got[i] == body[i] {
			i++
		}
		t.Errorf("echo of %d bytes, want %d; first difference at byte %d", len(got), len(body), i)
	}
	// Each way, the stream's window was given back more than once: the
	// body went through both windows, not around them.
	rc := <-rec
	if n := windowUpdates(rc.received(), 1); n < 2 {
		t.Errorf("the client granted the stream window %d times, want several: its window was not the test's", n)
	}
	if n := windowUpdates(rc.written(), 1); n < 2 {
		t.Errorf("the server granted the stream window %d times, want several", n)
	}
}

// windowUpdates counts the WINDOW_UPDATE frames of stream id.
func windowUpdates(frames []recordedFrame, id uint32) int {
	n := 0
	for _, f := range frames {
		if f.Type == http2.FrameWindowUpdate && f.StreamID == id {
			n++
		}
	}
	return n
}

// echo posts body to url and returns the answer's body.
func echo(client *http.Client, url string, body []byte) ([]byte, error) {
	resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the echo: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return got, fmt.Errorf("status %d, want 200", resp.StatusCode)
	}
	return got, nil
}
