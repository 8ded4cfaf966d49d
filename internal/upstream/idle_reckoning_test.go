package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A reused connection's idle time is reckoned from the attempt's Start,
// the clock its caller read, when it set one: a connection idle past the
// pool's limit as of then is not reused, one within it is, with the idle
// time as of Start.
func TestIdleTimeIsReckonedFromTheAttemptsStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		after  time.Duration // Start, after the first answer
		reused bool
	}{
		{"within the idle limit", 30 * time.Second, true},
		{"past it", 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, func(c net.Conn, r *http.Request) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			})
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			if _, _, err := do(t, p, "GET", "/1", nil); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", "http://app/2", nil)
			start := time.Now().Add(tc.after)
			try := &Attempt{Deadline: time.Now().Add(5 * time.Second), Timeout: 5 * time.Second, Start: start}
			resp, pc, err := p.RoundTrip(context.Background(), req, try)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			pc.Finish(true)
			if try.Progress.Reused != tc.reused {
				t.Errorf("reused: %v, want %v (idle time %v)", try.Progress.Reused, tc.reused, try.IdleTime)
			}
			if tc.reused && try.IdleTime < tc.after-time.Second {
				t.Errorf("idle time %v, want it reckoned from Start, %v on", try.IdleTime, tc.after)
			}
		})
	}
}
