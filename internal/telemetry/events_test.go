package telemetry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func at(sec int) time.Time { return time.Date(2026, 11, 21, 10, 0, sec, 0, time.UTC) }

func intp(i int) *int { return &i }

func TestEventsRingAndSince(t *testing.T) {
	emitted := []Event{
		{Time: at(1), App: "web", Type: EventStart},
		{Time: at(2), App: "web", Type: EventReady},
		{Time: at(3), App: "web", Type: EventUnhealthy},
		{Time: at(4), App: "web", Type: EventHealthy},
		{Time: at(5), App: "web", Type: EventExit},
	}
	tests := []struct {
		name  string
		ring  int
		emit  int // how many of emitted
		since time.Time
		want  []Event
	}{
		{name: "not full, all", ring: 10, emit: 3, want: emitted[:3]},
		{name: "exactly full", ring: 3, emit: 3, want: emitted[:3]},
		{name: "wrapped keeps newest, oldest first", ring: 3, emit: 5, want: emitted[2:]},
		{name: "since is inclusive", ring: 10, emit: 5, since: at(4), want: emitted[3:]},
		{name: "since after all", ring: 10, emit: 5, since: at(6), want: nil},
		{name: "wrapped with since", ring: 4, emit: 5, since: at(3), want: emitted[2:]},
		{name: "empty", ring: 3, emit: 0, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := NewEvents(nil, tt.ring)
			for _, e := range emitted[:tt.emit] {
				ev.Emit(e)
			}
			if diff := cmp.Diff(tt.want, ev.Since(tt.since)); diff != "" {
				t.Errorf("Since(%v) (-want +got):\n%s", tt.since, diff)
			}
		})
	}
}

// Last returns the newest events, newest first, across the ring's wrap.
func TestEventsLast(t *testing.T) {
	var emitted []Event
	for i := range 5 {
		emitted = append(emitted, Event{Time: at(i), App: "web", Type: EventStart})
	}
	rev := func(evs ...Event) []Event { return evs }
	tests := []struct {
		name       string
		ring, emit int
		n          int
		want       []Event
	}{
		{"empty", 3, 0, 2, []Event{}},
		{"fewer than asked", 10, 2, 5, rev(emitted[1], emitted[0])},
		{"exactly full", 3, 3, 3, rev(emitted[2], emitted[1], emitted[0])},
		{"wrapped", 3, 5, 2, rev(emitted[4], emitted[3])},
		{"wrapped, all", 3, 5, 10, rev(emitted[4], emitted[3], emitted[2])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := NewEvents(nil, tt.ring)
			for _, e := range emitted[:tt.emit] {
				ev.Emit(e)
			}
			if diff := cmp.Diff(tt.want, ev.Last(tt.n)); diff != "" {
				t.Errorf("Last(%d) (-want +got):\n%s", tt.n, diff)
			}
		})
	}
}

func TestEventsDefaultRingSize(t *testing.T) {
	ev := NewEvents(nil, 0)
	for i := range defaultRingSize + 5 {
		ev.Emit(Event{Time: at(0).Add(time.Duration(i)), App: "web", Type: EventStart})
	}
	got := ev.Since(time.Time{})
	if len(got) != defaultRingSize || !got[0].Time.Equal(at(0).Add(5)) {
		t.Errorf("ring holds %d events starting %v, want %d starting at the 6th", len(got), got[0].Time, defaultRingSize)
	}
}

func TestEventsEmitSetsTime(t *testing.T) {
	ev := NewEvents(nil, 10)
	before := time.Now()
	ev.Emit(Event{App: "web", Type: EventStart})
	got := ev.Since(time.Time{})
	if len(got) != 1 || got[0].Time.Before(before) || got[0].Time.After(time.Now()) {
		t.Errorf("Since = %+v, want one event stamped now", got)
	}
}

func TestEventsSubscribe(t *testing.T) {
	ev := NewEvents(nil, 10)
	ch, cancel := ev.Subscribe(10)
	e1 := Event{Time: at(1), App: "web", Instance: "web-1", Type: EventExit, ExitCode: intp(0)}
	e2 := Event{Time: at(2), App: "web", Type: EventRestart}
	ev.Emit(e1)
	ev.Emit(e2)
	if diff := cmp.Diff([]Event{e1, e2}, []Event{<-ch, <-ch}); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Error("channel still open after cancel")
	}
	// Idempotent, and Emit with no subscriber left must not send on the
	// closed channel.
	cancel()
	ev.Emit(e1)
	if got := ev.Missed(); got != 0 {
		t.Errorf("Missed = %d, want 0", got)
	}
}

func TestEventsSlowSubscriberMisses(t *testing.T) {
	ev := NewEvents(nil, 10)
	slow, cancelSlow := ev.Subscribe(1)
	defer cancelSlow()
	fast, cancelFast := ev.Subscribe(10)
	defer cancelFast()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for i := range 3 {
			ev.Emit(Event{Time: at(i), App: "web", Type: EventScale})
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Emit blocked on a slow subscriber")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("emits took %v", d)
	}
	if got := ev.Missed(); got != 2 {
		t.Errorf("Missed = %d, want 2", got)
	}
	if got := (<-slow).Time; !got.Equal(at(0)) {
		t.Errorf("slow subscriber got %v, want the first event", got)
	}
	if got := len(fast); got != 3 {
		t.Errorf("fast subscriber has %d events, want 3", got)
	}
}

func TestEventsConcurrent(t *testing.T) {
	ev := NewEvents(nil, 100)
	ch, cancel := ev.Subscribe(1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				ev.Emit(Event{App: fmt.Sprint("app", g), Type: EventWake, Value: fmt.Sprint(i)})
				_ = ev.Since(time.Time{})
			}
		})
	}
	wg.Wait()
	cancel()
	n := 0
	for range ch {
		n++
	}
	if n != 400 || len(ev.Since(time.Time{})) != 100 {
		t.Errorf("subscriber got %d (want 400), ring has %d (want 100)", n, len(ev.Since(time.Time{})))
	}
}

func TestReadEventsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	w := NewAsyncWriter(path, WriterOptions{})
	ev := NewEvents(w, 10)
	emitted := []Event{
		{Time: at(1).Add(123 * time.Nanosecond), App: "web", Instance: "web-1", Type: EventStart, PID: 4242},
		{Time: at(2), App: "web", Instance: "web-1", Type: EventExit, PID: 4242, ExitCode: intp(0)},
		{Time: at(3), App: "web", Instance: "web-1", Type: EventExit, PID: 4243, Signal: "SIGKILL", Detail: "oom <killer> & \"quotes\"\n"},
		{Time: at(4), App: "web", Instance: "web-2", Type: EventAutoHeal, Trigger: "memory", Value: "600MiB"},
		{Time: at(5), App: "api", Type: EventStartTimeout, Failed: 3},
	}
	for _, e := range emitted {
		ev.Emit(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Torn and foreign lines must be skipped, not fail the read.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("garbage\n{}\n\n{\"time\":\"2026-11-21T10:00:09Z\",\"app\":\"web\",\"ty")
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}

	tests := []struct {
		name  string
		since time.Time
		want  []Event
	}{
		{name: "all", want: emitted},
		{name: "since", since: at(3), want: emitted[2:]},
		{name: "none", since: at(10), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadEvents(path, tt.since)
			if err != nil {
				t.Fatalf("ReadEvents: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadEvents (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadEventsLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	long := make([]byte, maxEventLine+10)
	for i := range long {
		long[i] = 'x'
	}
	content := `{"time":"2026-11-21T10:00:01Z","app":"web","type":"start"}` + "\n" + string(long) + "\n" +
		`{"time":"2026-11-21T10:00:02Z","app":"web","type":"ready"}`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEvents(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{{Time: at(1), App: "web", Type: EventStart}, {Time: at(2), App: "web", Type: EventReady}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadEvents (-want +got):\n%s", diff)
	}
}

func TestReadEventsMissingFile(t *testing.T) {
	_, err := ReadEvents(filepath.Join(t.TempDir(), "nope.log"), time.Time{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping fs.ErrNotExist", err)
	}
}

// An observer is called with every event, in order, however many come
// at once: where a subscriber's buffer fills and it misses events, an
// observer misses none. Lines' observers likewise.
func TestObserversMissNothing(t *testing.T) {
	const n = 3000
	t.Run("events", func(t *testing.T) {
		ev := NewEvents(nil, 10)
		var got []int
		ev.Observe(func(e Event) { got = append(got, e.PID) })
		_, cancel := ev.Subscribe(16)
		defer cancel()
		var want []int
		for i := range n {
			ev.Emit(Event{App: "web", Type: EventScale, PID: i})
			want = append(want, i)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("observed events (-want +got):\n%s", diff)
		}
		if m := ev.Missed(); m != n-16 {
			t.Errorf("the subscriber missed %d events, want %d (its buffer is 16)", m, n-16)
		}
	})
	t.Run("lines", func(t *testing.T) {
		h := NewLines()
		var got []string
		h.Observe(func(l LogLine) { got = append(got, l.Line) })
		_, cancel := h.Subscribe(16)
		defer cancel()
		var want []string
		for i := range n {
			h.Publish(LogLine{App: "web", Line: fmt.Sprint(i)})
			want = append(want, fmt.Sprint(i))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("observed lines (-want +got):\n%s", diff)
		}
		if m := h.Missed(); m != n-16 {
			t.Errorf("the subscriber missed %d lines, want %d (its buffer is 16)", m, n-16)
		}
	})
}
