package pool

import "testing"

// BenchmarkPickRelease is the pool's share of every request: one Pick and
// one Release on a ready pool, with no max_inflight (the default) and with
// one.
func BenchmarkPickRelease(b *testing.B) {
	for _, limit := range []int{0, 1000} {
		b.Run(map[int]string{0: "unlimited", 1000: "limited"}[limit], func(b *testing.B) {
			p, _ := newPool(b, 10, Ready, "web-1", "web-2", "web-3")
			if limit > 0 {
				p.SetMaxInflight(limit)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Pick(nil).Release()
			}
		})
	}
}
