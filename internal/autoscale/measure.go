package autoscale

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// maxKept bounds the upstream times kept per interval: past it, a uniform
// sample of them (reservoir sampling) stands for all.
const maxKept = 4096

// requests gathers one app's finished requests between two samples.
type requests struct {
	mu       sync.Mutex
	upstream []time.Duration
	seen     int
	maxHold  time.Duration
	// cold is when a sample last found no ready instance (see
	// heldForStart).
	cold time.Time
}

func (r *requests) observe(e *telemetry.AccessEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.heldForStart(e) {
		r.maxHold = max(r.maxHold, e.Held)
	}
	if e.Attempts == 0 || e.Upstream <= 0 {
		return // never reached the app: no latency of its own
	}
	r.seen++
	if len(r.upstream) < maxKept {
		r.upstream = append(r.upstream, e.Upstream)
	} else if i := rand.IntN(r.seen); i < maxKept {
		r.upstream[i] = e.Upstream
	}
}

// heldForStart reports whether e, held, was under way when a sample last
// found no ready instance: its hold measures a start (a wake from
// idle_unload, a cold start), which more instances would not shorten, as
// each would start as slowly; HPA likewise leaves out pods not ready.
func (r *requests) heldForStart(e *telemetry.AccessEntry) bool {
	return e.Held > 0 && !r.cold.IsZero() && !e.Time.After(r.cold)
}

// take returns the p95 upstream time and the longest hold since the last
// take, in milliseconds, and starts over; noneReady says the app has no
// ready instance at now.
func (r *requests) take(now time.Time, noneReady bool) (p95, hold float64) {
	r.mu.Lock()
	ups, maxHold := r.upstream, r.maxHold
	r.upstream, r.seen, r.maxHold = nil, 0, 0
	if noneReady {
		r.cold = now
	}
	r.mu.Unlock()
	return ms(percentile(ups, 0.95)), ms(maxHold)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// measure samples app's signals at now.
func measure(a app, r *requests, now time.Time) sample {
	var ready int
	var inflight, cpu float64
	cpuN := 0
	for _, in := range a.Instances() {
		if !in.Ready() {
			continue
		}
		ready++
		inflight += float64(in.Inflight())
		if c := in.CPUPercent(); c >= 0 {
			cpu += c
			cpuN++
		}
	}
	p95, hold := r.take(now, ready == 0)
	v := map[string]float64{
		// With no ready instance, the requests held wait for a start (a
		// wake from idle_unload, a cold start), not for capacity.
		config.MetricHeld:        math.NaN(),
		config.MetricHoldWait:    hold,
		config.MetricP95Upstream: p95,
		config.MetricInflight:    math.NaN(),
		config.MetricCPU:         math.NaN(),
	}
	if ready > 0 {
		v[config.MetricHeld] = float64(a.Held())
		v[config.MetricInflight] = inflight / float64(ready)
	}
	if cpuN > 0 {
		v[config.MetricCPU] = cpu / float64(cpuN)
	}
	return sample{at: now, v: v}
}
