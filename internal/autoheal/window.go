package autoheal

import "time"

// stamps keeps the times of the last n matching events: n events within
// an interval is exactly "the oldest of the last n is within the
// interval", so memory is bounded by the trigger's count.
type stamps struct {
	ts   []time.Time
	next int
	n    int
}

func newStamps(n int) *stamps { return &stamps{ts: make([]time.Time, max(n, 1))} }

// add records an event at t and reports whether the last len(ts) events
// all fall within interval.
func (s *stamps) add(t time.Time, interval time.Duration) bool {
	s.ts[s.next] = t
	s.next = (s.next + 1) % len(s.ts)
	if s.n < len(s.ts) {
		s.n++
	}
	return s.n == len(s.ts) && t.Sub(s.ts[s.next]) <= interval
}

func (s *stamps) reset() { s.n, s.next = 0, 0 }

// buckets counts events (and how many of them were slow) over a sliding
// interval in fixed slices of it, for counts too large to keep stamps of.
type buckets struct {
	width time.Duration
	slots [bucketCount]bucket
}

type bucket struct {
	epoch       int64
	total, slow int
}

const bucketCount = 20

func newBuckets(interval time.Duration) *buckets {
	return &buckets{width: max(interval/bucketCount, time.Millisecond)}
}

// add counts one event at t and returns the totals over the interval.
func (b *buckets) add(t time.Time, slow bool) (total, slowN int) {
	epoch := t.UnixNano() / int64(b.width)
	s := &b.slots[epoch%bucketCount]
	if s.epoch != epoch {
		*s = bucket{epoch: epoch}
	}
	s.total++
	if slow {
		s.slow++
	}
	for i := range b.slots {
		if x := &b.slots[i]; epoch-x.epoch < bucketCount {
			total += x.total
			slowN += x.slow
		}
	}
	return total, slowN
}

func (b *buckets) reset() { b.slots = [bucketCount]bucket{} }
