package autoheal

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The trigger windows on an explicit clock: "count events within
// interval" fires exactly when the count-th event lands within interval of
// the first of them, and the sliding buckets forget what fell out.
func TestStampsWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		count int
		at    []time.Duration // event times after t0
		want  []bool
	}{
		{"five within a minute", 5, []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second, 60 * time.Second},
			[]bool{false, false, false, false, true}},
		{"the fifth a moment too late", 5, []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second, 60*time.Second + 1},
			[]bool{false, false, false, false, false}},
		{"the window slides", 3, []time.Duration{0, 50 * time.Second, 70 * time.Second, 100 * time.Second},
			[]bool{false, false, false, true}},
		{"one is enough", 1, []time.Duration{0}, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStamps(tt.count)
			var got []bool
			for _, d := range tt.at {
				got = append(got, s.add(t0.Add(d), time.Minute))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fired (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBucketsSlide(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	b := newBuckets(time.Minute) // 20 slices of 3 s
	for i := range 10 {
		b.add(t0.Add(time.Duration(i)*time.Second), i%2 == 0)
	}
	if total, slow := b.add(t0.Add(10*time.Second), false); total != 11 || slow != 5 {
		t.Errorf("within the interval: total %d slow %d, want 11 and 5", total, slow)
	}
	// Two minutes on, everything before has slid out.
	if total, slow := b.add(t0.Add(2*time.Minute+10*time.Second), true); total != 1 || slow != 1 {
		t.Errorf("after the interval: total %d slow %d, want 1 and 1", total, slow)
	}
}
