package memtrim

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A trim waits for Quiet seconds of little allocation while enough is
// held, and then MinGap before the next; it never trims under load.
func TestTrimsOnlyWhenQuiet(t *testing.T) {
	const MiB = 1 << 20
	// Each second: bytes allocated in it, and bytes held at its end.
	type second struct{ alloc, held uint64 }
	busy := second{8 * MiB, 20 * MiB}
	quiet := second{10 << 10, 20 * MiB}
	little := second{10 << 10, 1 * MiB}
	tests := []struct {
		name    string
		seconds []second
		busy    bool  // requests keep coming
		want    []int // the seconds (from 1) that trim
	}{
		{"always busy", repeat(busy, 20), false, nil},
		{"quiet after a burst", append(repeat(busy, 5), repeat(quiet, 5)...), false, []int{8}},
		{"quiet with little held", append(repeat(busy, 5), repeat(little, 5)...), false, nil},
		{"two bursts within MinGap", append(append(append(repeat(busy, 3), repeat(quiet, 5)...), repeat(busy, 2)...), repeat(quiet, 30)...), false, []int{6, 36}},
		{"a trickle under QuietRate is quiet", append(repeat(busy, 2), repeat(second{200 << 10, 20 * MiB}, 5)...), false, []int{5}},
		{"serving requests that allocate little is busy", append(repeat(busy, 5), repeat(quiet, 10)...), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(Options{Trim: func() {}, Busy: func() bool { return tt.busy }})
			var allocs, held uint64
			tr.read = func() (uint64, uint64) { return allocs, held }
			now := time.Now()
			var got []int
			for i, s := range tt.seconds {
				allocs += s.alloc
				held = s.held
				now = now.Add(time.Second)
				if tr.Check(now) {
					got = append(got, i+1)
					held = 0
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("trims (-want +got):\n%s", diff)
			}
		})
	}
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

var sink [][]byte

// The default trim returns what a burst left: garbage and free pages.
func TestTrimReturnsTheBurst(t *testing.T) {
	for range 32 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	trim()
	_, held := New(Options{}).readRuntime()
	if held >= DefaultMinHeld {
		t.Errorf("after a trim %d bytes are held; want under %d", held, DefaultMinHeld)
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Uint64() < 16<<20 {
		t.Errorf("after a trim of a 32 MiB burst, %d bytes are released to the OS; want at least 16 MiB", s[0].Value.Uint64())
	}
	runtime.KeepAlive(sink)
}
