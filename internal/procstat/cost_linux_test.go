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
// takes on average less than 50ms, which at a 5s interval is under 1%.
// The bound is loose on purpose (a busy machine, the race detector); a
// typical Read is a few milliseconds.
func TestReadCostEightInstances(t *testing.T) {
	pgids := eightInstances(t)
	r := NewReader()
	const n = 20
	var cpu time.Duration
	startCPU := threadCPU()
	start := time.Now()
	for range n {
		if _, err := r.Read(pgids); err != nil {
			t.Fatal(err)
		}
	}
	wall := time.Since(start) / n
	cpu = (threadCPU() - startCPU) / n
	share := float64(wall) / float64(sampleInterval)
	t.Logf("mean Read of 8 groups: %v wall, %v process CPU; %.3f%% of a core at a %v interval", wall, cpu, 100*share, sampleInterval)
	if wall > 50*time.Millisecond {
		t.Errorf("mean Read of 8 groups took %v; want < 50ms (< 1%% of a core at a %v interval)", wall, sampleInterval)
	}
}
