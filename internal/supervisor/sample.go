package supervisor

import (
	"github.com/gatehouse/gatehouse/internal/sampling"
)

// sampleTargets is every running instance's process and the slot of its
// samples (see package sampling).
func (s *Supervisor) sampleTargets() map[int]*sampling.Slot {
	out := map[int]*sampling.Slot{}
	for _, a := range s.Apps() {
		for _, in := range a.Instances() {
			if pid, slot := in.Running(); pid > 0 {
				out[pid] = slot
			}
		}
	}
	return out
}

// SampleNow reads every running instance's statistics at once.
func (s *Supervisor) SampleNow() { s.sampler.Now() }
