package instance

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoffSequence(t *testing.T) {
	tests := []struct {
		name  string
		upFor []time.Duration // how long each failed run lasted
		want  []time.Duration
	}{
		{
			name:  "crash loop doubles from immediate to the 1m cap",
			upFor: make([]time.Duration, 10),
			want: []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
				16 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute},
		},
		{
			name:  "a run of a minute starts over",
			upFor: []time.Duration{0, 0, 0, time.Minute, 0, 0},
			want:  []time.Duration{0, time.Second, 2 * time.Second, 0, time.Second, 2 * time.Second},
		},
		{
			name:  "a run just short of a minute does not",
			upFor: []time.Duration{0, 0, 59 * time.Second},
			want:  []time.Duration{0, time.Second, 2 * time.Second},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b backoff
			var got []time.Duration
			for _, up := range tc.upFor {
				got = append(got, b.next(up))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffNeverOverflows(t *testing.T) {
	var b backoff
	for i := 0; i < 200; i++ {
		if d := b.next(0); d < 0 || d > backoffMax {
			t.Fatalf("delay %d = %v, want within [0, %v]", i, d, backoffMax)
		}
	}
}
