// Package sampling owns the statistics sampled of each running
// instance's process tree (memory, CPU, sockets, read by package
// procstat): read for every process at once, every interval or sooner
// when asked, and kept per instance as its latest sample, the one before
// (for CPU use between them) and its process's first (for growth), for
// status, auto-heal, autoscale, metrics and diagnose.
package sampling

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/procstat"
)

// Slot is one instance's samples; its zero value is empty. A sample
// counts only for the process it was read of: an instance's new process
// starts with none.
type Slot struct {
	latest, prev, first atomic.Pointer[procstat.Stats]
}

func (s *Slot) store(pid int, st *procstat.Stats) {
	if prev := s.latest.Swap(st); prev != nil && len(prev.PIDs) > 0 && prev.PIDs[0] == pid {
		s.prev.Store(prev)
	} else {
		s.prev.Store(nil)
		s.first.Store(st)
	}
}

// Latest is the latest sample of process pid, nil before its first.
func (s *Slot) Latest(pid int) *procstat.Stats {
	st := s.latest.Load()
	if st == nil || len(st.PIDs) == 0 || st.PIDs[0] != pid {
		return nil
	}
	return st
}

// CPUPercent is process pid's CPU use between its last two samples, in
// percent of one core; -1 when unknown.
func (s *Slot) CPUPercent(pid int) float64 {
	cur, prev := s.Latest(pid), s.prev.Load()
	if cur == nil || prev == nil || prev.PIDs[0] != cur.PIDs[0] {
		return -1
	}
	dt := cur.At.Sub(prev.At).Seconds()
	if dt <= 0 {
		return -1
	}
	return 100 * (cur.CPUSeconds - prev.CPUSeconds) / dt
}

// First is the first sample of process pid, to measure growth against;
// nil when there is none.
func (s *Slot) First(pid int) *procstat.Stats {
	cur, first := s.Latest(pid), s.first.Load()
	if cur == nil || first == nil || first.PIDs[0] != cur.PIDs[0] {
		return nil
	}
	return first
}

// Targets lists what to sample: each running process by pid, and the
// slot its samples go to.
type Targets func() map[int]*Slot

// Sampler reads the statistics of every target.
type Sampler struct {
	reader  procstat.Reader
	targets Targets
	kick    chan struct{}
}

// New samples targets through reader.
func New(reader procstat.Reader, targets Targets) *Sampler {
	return &Sampler{reader: reader, targets: targets, kick: make(chan struct{}, 1)}
}

// Run samples every interval, and when kicked, until ctx ends.
func (s *Sampler) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.Now()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// Kick asks for a sample soon, e.g. when an instance became ready, so
// that its memory shows without waiting a whole interval.
func (s *Sampler) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Now samples every target at once.
func (s *Sampler) Now() {
	byPID := s.targets()
	if len(byPID) == 0 {
		return
	}
	pids := make([]int, 0, len(byPID))
	for pid := range byPID {
		pids = append(pids, pid)
	}
	stats, err := s.reader.Read(pids)
	if err != nil {
		return
	}
	for pid, st := range stats {
		if slot := byPID[pid]; slot != nil {
			slot.store(pid, &st)
		}
	}
}
