package history

import (
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// The latency histogram has four buckets per power of two of
// nanoseconds from 16µs (everything quicker is bucket 0) to about 137s
// (everything slower is the last bucket): a bucket is at most 25% wide,
// so a percentile read as its bucket's middle is within about 12%.
const (
	minOctave = 14 // 2^14 ns = 16.4µs
	nBuckets  = 96
)

// bucket is the histogram bucket of d: integer arithmetic only, since
// Observe runs on every request.
func bucket(d time.Duration) int {
	ns := uint64(max(d, 0))
	if ns < 1<<minOctave {
		return 0
	}
	o := bits.Len64(ns) - 1 // 2^o <= ns < 2^(o+1)
	sub := int(ns>>(o-2)) & 3
	return min((o-minOctave)*4+sub+1, nBuckets-1)
}

// bounds are bucket i's lower and upper limits in nanoseconds.
func bounds(i int) (lo, hi float64) {
	if i == 0 {
		return 0, 1 << minOctave
	}
	o, sub := (i-1)/4+minOctave, (i-1)%4
	unit := math.Ldexp(1, o-2)
	return float64(4+sub) * unit, float64(5+sub) * unit
}

// percentiles reads p50, p95 and p99 in milliseconds from a histogram,
// each as the middle of the bucket holding its rank; NaN when it is empty.
func percentiles(h *[nBuckets]uint64) (p50, p95, p99 float64) {
	var n uint64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	return quantile(h, n, 0.50), quantile(h, n, 0.95), quantile(h, n, 0.99)
}

// middle is bucket i's middle in milliseconds: a percentile's value.
func middle(i int) float64 {
	lo, hi := bounds(i)
	return (lo + hi) / 2 / 1e6
}

func quantile(h *[nBuckets]uint64, n uint64, q float64) float64 {
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return middle(i)
		}
	}
	return math.NaN()
}

// causeCounts turns a cause → count map into a list sorted by cause, nil
// when empty.
func causeCounts(m map[string]uint32) []CauseCount {
	if len(m) == 0 {
		return nil
	}
	out := make([]CauseCount, 0, len(m))
	for c, n := range m {
		out = append(out, CauseCount{Cause: c, N: n})
	}
	slices.SortFunc(out, func(a, b CauseCount) int { return strings.Compare(a.Cause, b.Cause) })
	return out
}

// addCause adds c to a sorted list, keeping it sorted.
func addCause(list []CauseCount, c CauseCount) []CauseCount {
	i, found := slices.BinarySearchFunc(list, c.Cause, func(e CauseCount, cause string) int { return strings.Compare(e.Cause, cause) })
	if found {
		list[i].N += c.N
		return list
	}
	return slices.Insert(list, i, c)
}
