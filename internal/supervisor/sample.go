package supervisor

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/procstat"
)

// sampleLoop reads the process statistics of every running instance every
// interval and keeps the latest on each instance, for status, auto-heal,
// metrics and diagnose.
func (s *Supervisor) sampleLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.SampleNow()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.sampleKick:
		}
	}
}

// kickSample asks for a sample soon, e.g. when an instance became ready,
// so that its memory shows without waiting a whole interval.
func (s *Supervisor) kickSample() {
	select {
	case s.sampleKick <- struct{}{}:
	default:
	}
}

// SampleNow reads every running instance's statistics at once.
func (s *Supervisor) SampleNow() {
	byPID := map[int]*Instance{}
	var pids []int
	for _, a := range s.Apps() {
		for _, in := range a.Instances() {
			if pid := in.runningPID(); pid > 0 {
				byPID[pid] = in
				pids = append(pids, pid)
			}
		}
	}
	if len(pids) == 0 {
		return
	}
	stats, err := s.reader.Read(pids)
	if err != nil {
		return
	}
	for pid, st := range stats {
		st := st
		byPID[pid].stats.Store(&st)
	}
}

// Stats is the instance's latest process statistics, nil before the first
// sample of its current process.
func (in *Instance) Stats() *procstat.Stats {
	st := in.stats.Load()
	in.mu.Lock()
	pid := in.pid
	in.mu.Unlock()
	if st == nil || len(st.PIDs) == 0 || st.PIDs[0] != pid {
		return nil
	}
	return st
}

// runningPID is the pid of the instance's live process, 0 when none.
func (in *Instance) runningPID() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch in.state {
	case pool.Starting, pool.Ready, pool.Unhealthy, pool.Draining:
		return in.pid
	}
	return 0
}
