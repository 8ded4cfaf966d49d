package supervisor

import (
	"testing"
	"time"
)

// The idle rule on an explicit clock: the real-process test
// (TestIdleUnloadAndWake) covers the unload and wake, this one the edges.
func TestIdleRule(t *testing.T) {
	last := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		since    time.Duration
		idle     time.Duration
		inflight int64
		waiting  int
		want     bool
	}{
		{"always on", time.Hour, 0, 0, 0, false},
		{"just short of idle_timeout", 20*time.Minute - time.Nanosecond, 20 * time.Minute, 0, 0, false},
		{"at idle_timeout", 20 * time.Minute, 20 * time.Minute, 0, 0, true},
		{"a request still under way", time.Hour, 20 * time.Minute, 1, 0, false},
		{"a request held (the app is waking)", time.Hour, 20 * time.Minute, 0, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := idleAt(last.Add(tt.since), last, tt.idle, tt.inflight, tt.waiting); got != tt.want {
				t.Errorf("idleAt = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIdleCheckEvery(t *testing.T) {
	for idle, want := range map[time.Duration]time.Duration{
		100 * time.Millisecond: 50 * time.Millisecond, // floor
		2 * time.Second:        500 * time.Millisecond,
		20 * time.Minute:       time.Second, // cap
	} {
		if got := idleCheckEvery(idle); got != want {
			t.Errorf("idleCheckEvery(%v) = %v, want %v", idle, got, want)
		}
	}
}
