package h2_test

import (
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// Answers of streams whose handlers finish at the same moment share
// writes to the connection: a writer yields before it flushes while
// other handlers run, and the first back flushes for all. On one
// processor, so that writers never queue for the connection's lock (which
// shares a flush too): not parallel, GOMAXPROCS is the process's.
func TestAnswersReadyTogetherShareWrites(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const streams = 10
	var arrived sync.WaitGroup
	arrived.Add(streams)
	release := make(chan struct{})
	go func() {
		arrived.Wait()
		close(release)
	}()
	rec := make(chan *recordingConn, 1)
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release
		w.Write([]byte("answer"))
	}), func(nc net.Conn) net.Conn {
		rc := &recordingConn{Conn: nc}
		rec <- rc
		return rc
	})
	c := dialRaw(t, ts)
	for i := range streams {
		c.get(uint32(2*i+1), "/together")
	}
	bodies := map[uint32]string{}
	for ended := 0; ended < streams; {
		f, ok := c.readFrame().(*http2.DataFrame)
		if !ok {
			continue
		}
		bodies[f.StreamID] += string(f.Data())
		if f.StreamEnded() {
			ended++
		}
	}
	for i := range streams {
		if id := uint32(2*i + 1); bodies[id] != "answer" {
			t.Errorf("stream %d: body %q, want %q", id, bodies[id], "answer")
		}
	}
	writes := map[int]bool{}
	for _, f := range (<-rec).written() {
		if f.StreamID != 0 {
			writes[f.first] = true
			writes[f.last] = true
		}
	}
	// One write each would be streams; a flush shared by two at least
	// halves that.
	if len(writes) > streams/2 {
		t.Errorf("%d answers ready together left in %d writes, want at most %d", streams, len(writes), streams/2)
	}
}
