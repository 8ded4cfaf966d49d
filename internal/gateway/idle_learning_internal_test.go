package gateway

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// A reset before any answer on a connection idle a second or more is
// taken as a sign of the app's idle timeout; a fresh connection, a short
// idle, an answer begun or another cause is not.
func TestResetOfALongIdleConnectionTeachesItsIdleTimeout(t *testing.T) {
	for _, tt := range []struct {
		name  string
		c     cause.Cause
		prog  cause.Progress
		idle  time.Duration
		learn bool
	}{
		{"reused, idle 1s, no answer", cause.UpstreamReset, cause.Progress{GotConn: true, Reused: true, WroteRequest: true}, time.Second, true},
		{"reused, idle 900ms", cause.UpstreamReset, cause.Progress{GotConn: true, Reused: true, WroteRequest: true}, 900 * time.Millisecond, false},
		{"a new connection", cause.UpstreamReset, cause.Progress{GotConn: true, WroteRequest: true}, 0, false},
		{"an answer begun", cause.UpstreamReset, cause.Progress{GotConn: true, Reused: true, WroteRequest: true, GotFirstByte: true}, 2 * time.Second, false},
		{"a timeout", cause.UpstreamTimeout, cause.Progress{GotConn: true, Reused: true, WroteRequest: true}, 2 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			try := &upstream.Attempt{Progress: tt.prog, IdleTime: tt.idle}
			if got := closedWhileIdle(tt.c, try); got != tt.learn {
				t.Errorf("closedWhileIdle = %v, want %v", got, tt.learn)
			}
		})
	}
}
