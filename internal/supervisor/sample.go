package supervisor

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
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
		in := byPID[pid]
		if prev := in.stats.Swap(&st); prev != nil && len(prev.PIDs) > 0 && prev.PIDs[0] == pid {
			in.prevStats.Store(prev)
		} else {
			in.prevStats.Store(nil)
			in.firstStats.Store(&st)
		}
	}
}

// CPUPercent is the instance's CPU use between its last two samples, in
// percent of one core; -1 when unknown.
func (in *Instance) CPUPercent() float64 {
	cur, prev := in.Stats(), in.prevStats.Load()
	if cur == nil || prev == nil || prev.PIDs[0] != cur.PIDs[0] {
		return -1
	}
	dt := cur.At.Sub(prev.At).Seconds()
	if dt <= 0 {
		return -1
	}
	return 100 * (cur.CPUSeconds - prev.CPUSeconds) / dt
}

// FirstStats is the first sample of the instance's current process, to
// measure growth against.
func (in *Instance) FirstStats() *procstat.Stats {
	cur, first := in.Stats(), in.firstStats.Load()
	if cur == nil || first == nil || first.PIDs[0] != cur.PIDs[0] {
		return nil
	}
	return first
}

// Output is the instance's last lines of output.
func (in *Instance) Output() []string { return in.out.Tail() }

// Spec is the config the instance's process was started with.
func (in *Instance) Spec() *config.App { return in.effective() }

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
