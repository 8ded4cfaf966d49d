package telemetry

import (
	"sync"
	"sync/atomic"
	"time"
)

// LogLine is one line an instance wrote to stdout or stderr.
type LogLine struct {
	Time     time.Time `json:"time"`
	App      string    `json:"app"`
	Instance string    `json:"instance"`
	// PID is the process of the instance that wrote the line: a
	// restarted instance keeps its id, but not its pid.
	PID  int    `json:"pid,omitempty"`
	Line string `json:"line"`
}

// Lines fans instance output out to observers (quick, called in Publish)
// and live subscribers (the log stream). Publishing never waits for a
// subscriber: one that falls behind misses lines, which are counted.
type Lines struct {
	mu   sync.Mutex
	subs map[chan LogLine]struct{}
	// observers are called with each line, in Publish (Observe).
	observers []func(LogLine)
	missed    atomic.Uint64
}

// NewLines returns an empty hub.
func NewLines() *Lines { return &Lines{subs: map[chan LogLine]struct{}{}} }

// Publish sends l to every subscriber that has room.
func (h *Lines) Publish(l LogLine) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.observers {
		f(l)
	}
	for ch := range h.subs {
		select {
		case ch <- l:
		default:
			h.missed.Add(1)
		}
	}
}

// Observe has f called with every line published from now on, in
// Publish and in order, under the hub's lock: f must be quick and must
// not publish. A consumer as quick as a ring's append costs neither a
// goroutine nor a subscriber's buffer, and misses nothing.
func (h *Lines) Observe(f func(LogLine)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.observers = append(h.observers, f)
}

// Subscribe returns a channel of lines and a cancel func that closes it.
func (h *Lines) Subscribe(buf int) (<-chan LogLine, func()) {
	if buf <= 0 {
		buf = 256
	}
	ch := make(chan LogLine, buf)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			close(ch)
			h.mu.Unlock()
		})
	}
}

// Missed counts lines subscribers did not take in time.
func (h *Lines) Missed() uint64 { return h.missed.Load() }
