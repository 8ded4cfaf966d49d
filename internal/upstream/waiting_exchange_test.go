package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A request sent to its app and waiting for the answer holds no read
// buffer: not in the send's own wait (its first slice), nor in the wait
// after it for an app slower than that (a long poll). Under load most
// busy upstream connections are in one of the two.
//
// The connection is looked at beside the goroutine that uses it: not
// under the race detector.
func TestAWaitingExchangeHoldsNoReadBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("looks at the connection beside its goroutine")
	}
	release := make(chan struct{})
	arrived := make(chan struct{}, 2)
	a := rawApp(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			arrived <- struct{}{}
			<-release
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := NewPool(a.addr, time.Minute)
	t.Cleanup(p.Close)
	// The second exchange reuses the first's connection.
	for _, tc := range []struct {
		name  string
		reuse bool
	}{{"new connection", false}, {"reused connection", true}} {
		t.Run(tc.name, func(t *testing.T) {
			pc, reused, _, err := p.get(context.Background(), time.Now())
			if err != nil || reused != tc.reuse {
				t.Fatalf("a connection from the pool: reused %v (%v); want reused %v", reused, err, tc.reuse)
			}
			req, _ := http.NewRequest("GET", "http://app/wait", nil)
			at := &Attempt{Deadline: time.Now().Add(time.Minute), Timeout: time.Minute, HeadLimit: 2048}
			answered := make(chan error, 1)
			pc.begin(at.Timeout)
			go func() {
				resp, err := at.exchange(pc, req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
				}
				answered <- err
			}()
			<-arrived
			sent := time.Now()
			// A look within each wait (the first slice is clientCheck
			// long) that finds no buffer; the buffer is held only for
			// moments between slices.
			for _, phase := range []struct {
				name       string
				from, till time.Duration // since the request arrived
			}{{"the send's wait", 0, clientCheck / 2}, {"the wait after the first slice", clientCheck * 3 / 2, 3 * clientCheck}} {
				for time.Since(sent) < phase.from {
					time.Sleep(5 * time.Millisecond)
				}
				held := true
				for held && time.Since(sent) < phase.till {
					held = pc.br != nil
					time.Sleep(time.Millisecond)
				}
				if held {
					t.Errorf("in %s the connection held its read buffer", phase.name)
				}
			}
			release <- struct{}{}
			if err := <-answered; err != nil {
				t.Fatalf("the answer: %v", err)
			}
			if pc.br == nil {
				t.Error("the answer was read without a read buffer")
			}
			// As RoundTrip leaves it: kept alive, then back to the pool.
			pc.conn.SetDeadline(time.Time{})
			pc.reuse = true
			pc.Finish(true)
		})
	}
}
