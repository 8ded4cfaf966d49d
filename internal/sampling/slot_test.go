package sampling

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/procstat"
)

// A slot's samples count for the process they were read of: CPU use is
// measured between two samples of one process, growth against that
// process's first, and a new process starts with none of its
// predecessor's.
func TestSlotKeepsSamplesOfOneProcess(t *testing.T) {
	at := time.Unix(1000, 0)
	sample := func(pid int, secs, cpu float64) *procstat.Stats {
		return &procstat.Stats{PIDs: []int{pid}, At: at.Add(time.Duration(secs * float64(time.Second))), CPUSeconds: cpu}
	}
	type got struct {
		CPU         float64
		HasLatest   bool
		FirstAtSecs float64
	}
	look := func(s *Slot, pid int) got {
		g := got{CPU: s.CPUPercent(pid), HasLatest: s.Latest(pid) != nil, FirstAtSecs: -1}
		if f := s.First(pid); f != nil {
			g.FirstAtSecs = f.At.Sub(at).Seconds()
		}
		return g
	}
	var s Slot
	steps := []struct {
		name string
		pid  int
		st   *procstat.Stats
		want got
	}{
		{"first sample", 10, sample(10, 0, 1), got{CPU: -1, HasLatest: true, FirstAtSecs: 0}},
		{"second sample", 10, sample(10, 2, 2), got{CPU: 50, HasLatest: true, FirstAtSecs: 0}},
		{"third sample", 10, sample(10, 4, 4), got{CPU: 100, HasLatest: true, FirstAtSecs: 0}},
		{"a new process", 11, sample(11, 6, 0.5), got{CPU: -1, HasLatest: true, FirstAtSecs: 6}},
		{"asked for the old process", 10, nil, got{CPU: -1, HasLatest: false, FirstAtSecs: -1}},
	}
	for _, step := range steps {
		if step.st != nil {
			s.store(step.pid, step.st)
		}
		if diff := cmp.Diff(step.want, look(&s, step.pid)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", step.name, diff)
		}
	}
}
