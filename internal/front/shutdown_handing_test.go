package front

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Once the front's own connections are gone but a request handed to
// net/http is still served, Shutdown waits for it on its tick rather than
// spinning on the closed done channel.
func TestShutdownDoesNotSpinWhileHanding(t *testing.T) {
	entered := make(chan struct{}, 1)
	stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		time.Sleep(1500 * time.Millisecond)
		limAnswer(w, http.StatusOK, "done")
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(stub, Options{Fallback: true})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	defer func() { s.Close(); <-done }()
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cpu0, wall0 := cpuTime(t), time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cpu, wall := cpuTime(t)-cpu0, time.Since(wall0)
	t.Logf("Shutdown took %v wall, %v CPU", wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
	if cpu > wall/3 {
		t.Errorf("Shutdown used %v of CPU in %v while waiting for a handed-off request: it busy-loops", cpu, wall)
	}
}
