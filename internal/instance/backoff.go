package instance

import "time"

// backoff spaces restarts of a failing instance: the first restart is
// immediate, then 1s doubling to a 1-minute cap. A run that stayed up for
// resetAfter starts the sequence over.
type backoff struct {
	failures int
}

const (
	backoffBase = time.Second
	backoffMax  = time.Minute
	resetAfter  = time.Minute
)

// next returns the delay before the next start, given how long the last
// run stayed up.
func (b *backoff) next(upFor time.Duration) time.Duration {
	if upFor >= resetAfter {
		b.failures = 0
	}
	b.failures++
	if b.failures == 1 {
		return 0
	}
	d := backoffBase << (b.failures - 2)
	if d > backoffMax || d <= 0 {
		d = backoffMax
	}
	return d
}
