//go:build linux

package procstat

import (
	"testing"
	"time"
)

// sampleInterval is the default sample_interval: the sampler reads every
// instance once per interval.
const sampleInterval = 5 * time.Second

// eightInstances starts 8 fault apps, each in its own process group with
// a few sockets open (its listener, the test's keep-alive connection and
// 4 outbound connections), as the sampler sees an 8-instance app.
func eightInstances(tb testing.TB) []int {
	tb.Helper()
	ln := holdListener(tb)
	var pgids []int
	for range 8 {
		c := startChild(tb)
		c.get(tb, "/connect-out?n=4&addr="+ln.Addr().String())
		pgids = append(pgids, c.pid)
	}
	// Sanity: what is measured is a full read.
	for g, st := range read(tb, pgids...) {
		if st.OutboundTotal != 4 || len(st.Listening) != 1 {
			tb.Fatalf("group %d: %d outbound, listening %v; want 4 and one port", g, st.OutboundTotal, st.Listening)
		}
	}
	return pgids
}

// BenchmarkReadEight is the sampler's cost per sample with 8 instances:
// one Read of 8 process groups. At the default 5s sample interval the
// CPU share is ns/op ÷ 5e9, reported as %cpu@5s.
func BenchmarkReadEight(b *testing.B) {
	pgids := eightInstances(b)
	r := NewReader()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Read(pgids); err != nil {
			b.Fatal(err)
		}
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(100*perOp/float64(sampleInterval.Nanoseconds()), "%cpu@5s")
}

// The sampler costs well under 1% of a core: with 8 instances a Read
// uses on average less than 50ms of CPU, which at a 5s interval is under
// 1%. CPU time (of this process: the reader and the runtime work it
// causes) is what is bounded, not wall time, which a busy machine
// stretches. The bound is loose on purpose; a typical Read is a few
// milliseconds. Under the race detector, which slows everything several
// times over, the bound is 4x.
func TestReadCostEightInstances(t *testing.T) {
	pgids := eightInstances(t)
	r := NewReader()
	r.Read(pgids) // warm up
	const n = 20
	startCPU := processCPU()
	start := time.Now()
	for range n {
		if _, err := r.Read(pgids); err != nil {
			t.Fatal(err)
		}
	}
	wall := time.Since(start) / n
	cpu := (processCPU() - startCPU) / n
	share := float64(cpu) / float64(sampleInterval)
	t.Logf("mean Read of 8 groups: %v CPU (%v wall); %.3f%% of a core at a %v sample interval", cpu, wall, 100*share, sampleInterval)
	bound := 50 * time.Millisecond
	if raceEnabled {
		bound *= 4
	}
	if cpu > bound {
		t.Errorf("mean Read of 8 groups used %v of CPU; want < %v (50ms is 1%% of a core at a %v interval)", cpu, bound, sampleInterval)
	}
}
