package history

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Capacity is how many points a ring keeps: an hour of seconds.
const Capacity = 3600

// Step is the time between two points.
const Step = time.Second

// Overall names the ring of all apps together (and of requests no app
// took: no_route, bad_request); app names are never empty.
const Overall = ""

// Self is the instance ID under which the overall ring's points carry
// gatehouse's own memory and CPU.
const Self = "gatehouse"

// Point is one second of one app, or of all of them.
type Point struct {
	At time.Time
	// Requests finished in this second.
	Requests uint32
	// Errors are this second's 5xx answers by cause (an app's own 5xx
	// is app_error); nil when there were none.
	Errors []CauseCount
	// Refused are this second's answers a route's rules gave instead of
	// the app, by cause (see ruleCauses); nil when there were none. An
	// auth_unavailable, a 503, is among Errors too.
	Refused []CauseCount
	// P50, P95 and P99 are this second's latency percentiles in
	// milliseconds, within about 12% (the histogram's bucket width);
	// NaN when no request finished.
	P50, P95, P99 float64
	// Inflight: requests at the app's instances; Held: requests waiting
	// for a ready instance. Both as read at the end of the second.
	Inflight, Held int
	// Instances are the app's instances' memory and CPU (for the
	// overall ring, gatehouse's own, as Self).
	Instances []InstancePoint
}

// CauseCount is how many answers of one cause a second (or a span) had.
type CauseCount struct {
	Cause string
	N     uint32
}

// InstancePoint is one instance's resources at a point.
type InstancePoint struct {
	ID string
	// RSS is resident memory in bytes, 0 when not measured yet.
	RSS uint64
	// CPU is percent of one core over the last sample interval; NaN
	// when not measured yet.
	CPU float64
}

// Source is what a Recorder reads each second.
type Source interface {
	Status() []supervisor.AppStatus
}

// Recorder keeps the rings. Observe may be called from any goroutine;
// Sample from one at a time (Run's).
type Recorder struct {
	src  Source
	self func() InstancePoint
	// counters maps an app name to *counters; Observe adds, Sample takes.
	counters sync.Map
	errors   atomic.Uint64

	mu    sync.Mutex
	rings map[string]*ring
	apps  []string
	next  chan struct{}
	// last is the time of the last point, for the next to follow it.
	last    time.Time
	stopped bool
	// seq counts samples.
	seq uint64
}

// Seq counts the samples taken: it changes when the points do.
func (r *Recorder) Seq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Stopped reports whether Run has returned: no more points will come.
func (r *Recorder) Stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// New returns a Recorder reading src. self, if not nil, reports
// gatehouse's own process for the overall ring (see SelfUsage).
func New(src Source, self func() InstancePoint) *Recorder {
	return &Recorder{src: src, self: self, rings: map[string]*ring{}, next: make(chan struct{})}
}

// counters are one app's request counts since the last Sample: the
// latency histogram's total is the request count, so that a request
// touches one shared counter, not two.
type counters struct {
	latency [nBuckets]atomic.Uint64
	errMu   sync.Mutex
	errs    map[string]uint32
	refused map[string]uint32
}

// ruleCauses are the causes of a route's rules refusing a request
// (allow and deny, rate_limit, basic_auth, forward_auth).
var ruleCauses = map[string]bool{
	string(cause.AccessDenied): true, string(cause.RateLimited): true, string(cause.AuthRequired): true, string(cause.AuthUnavailable): true,
}

func (r *Recorder) countersOf(app string) *counters {
	if c, ok := r.counters.Load(app); ok {
		return c.(*counters)
	}
	c, _ := r.counters.LoadOrStore(app, &counters{})
	return c.(*counters)
}

// Observe counts a finished request. It takes no lock unless the answer
// was a 5xx or a route rule's refusal.
func (r *Recorder) Observe(e *telemetry.AccessEntry) {
	c := r.countersOf(e.App)
	d := e.Duration
	if e.Status == 101 {
		// A WebSocket's duration is its whole session, not a latency.
		d = 0
	}
	c.latency[bucket(d)].Add(1)
	refused := e.Cause != "" && ruleCauses[e.Cause]
	if e.Status < 500 && !refused {
		return
	}
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if refused {
		if c.refused == nil {
			c.refused = map[string]uint32{}
		}
		c.refused[e.Cause]++
	}
	if e.Status < 500 {
		return
	}
	cause := e.Cause
	if cause == "" {
		cause = "app_error"
	}
	r.errors.Add(1)
	if c.errs == nil {
		c.errs = map[string]uint32{}
	}
	c.errs[cause]++
}

// Errors is how many 5xx answers were observed since New.
func (r *Recorder) Errors() uint64 { return r.errors.Load() }

// take moves the counts out into p, and adds the latency counts to all.
func (c *counters) take(p *Point, all *[nBuckets]uint64) {
	var h [nBuckets]uint64
	var n uint64
	for i := range h {
		h[i] = c.latency[i].Swap(0)
		all[i] += h[i]
		n += h[i]
	}
	p.Requests = uint32(n)
	p.P50, p.P95, p.P99 = percentiles(&h)
	c.errMu.Lock()
	errs, refused := c.errs, c.refused
	c.errs, c.refused = nil, nil
	c.errMu.Unlock()
	p.Errors = causeCounts(errs)
	p.Refused = causeCounts(refused)
}

// Run samples once a second until ctx ends; then Stopped reports true
// and the waiters on Next are woken a last time.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(Step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.stopped = true
			close(r.next)
			r.next = make(chan struct{})
			r.mu.Unlock()
			return
		case now := <-t.C:
			r.Sample(now)
		}
	}
}

// Sample closes the second ending at now: it appends a point to every
// app's ring and to the overall one, and wakes the waiters on Next.
func (r *Recorder) Sample(now time.Time) {
	now = r.stamp(now)
	status := r.src.Status()
	var all [nBuckets]uint64
	overall := Point{At: now}
	points := make(map[string]Point, len(status))
	apps := make([]string, 0, len(status))
	for _, as := range status {
		p := Point{At: now, Held: as.Waiting, Instances: make([]InstancePoint, 0, len(as.Instances))}
		r.countersOf(as.Name).take(&p, &all)
		for _, in := range as.Instances {
			p.Inflight += int(in.Inflight)
			cpu := math.NaN()
			if in.CPUPercent != nil {
				cpu = *in.CPUPercent
			}
			p.Instances = append(p.Instances, InstancePoint{ID: in.ID, RSS: in.RSSBytes, CPU: cpu})
		}
		points[as.Name] = p
		apps = append(apps, as.Name)
		addTo(&overall, p)
	}
	// Requests no app took, and those of apps a reload removed.
	r.counters.Range(func(k, v any) bool {
		if _, ok := points[k.(string)]; !ok {
			var p Point
			v.(*counters).take(&p, &all)
			addTo(&overall, p)
			if k != "" {
				// A removed app's. An Observe that loaded it before the
				// take and adds after it loses its count: one request
				// of an app that is gone.
				r.counters.CompareAndDelete(k, v)
			}
		}
		return true
	})
	overall.P50, overall.P95, overall.P99 = percentiles(&all)
	if r.self != nil {
		overall.Instances = []InstancePoint{r.self()}
	}
	r.mu.Lock()
	for name, p := range points {
		r.ringOf(name).push(p)
	}
	r.ringOf(Overall).push(overall)
	for name := range r.rings {
		if _, ok := points[name]; !ok && name != Overall {
			delete(r.rings, name)
		}
	}
	r.apps = apps
	r.seq++
	close(r.next)
	r.next = make(chan struct{})
	r.mu.Unlock()
}

// stamp is the time of the point closed at now: one Step after the last
// one while the ticks keep their pace, so that a tick late across a
// second's boundary leaves neither a gap nor two points in one second;
// the wall clock's second when the ticks lost their pace (a stall, or a
// clock stepped).
func (r *Recorder) stamp(now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := now.Truncate(Step)
	if !r.last.IsZero() {
		next := r.last.Add(Step)
		if d := now.Sub(next); d > -Step && d < 2*Step {
			at = next
		}
	}
	r.last = at
	return at
}

// addTo adds an app's counts to the overall point.
func addTo(overall *Point, p Point) {
	overall.Requests += p.Requests
	overall.Inflight += p.Inflight
	overall.Held += p.Held
	for _, e := range p.Errors {
		overall.Errors = addCause(overall.Errors, e)
	}
	for _, e := range p.Refused {
		overall.Refused = addCause(overall.Refused, e)
	}
}

func (r *Recorder) ringOf(name string) *ring {
	rg := r.rings[name]
	if rg == nil {
		rg = &ring{}
		r.rings[name] = rg
	}
	return rg
}

// Next returns a channel closed at the next Sample.
func (r *Recorder) Next() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// Apps are the apps of the last Sample, in the supervisor's order.
func (r *Recorder) Apps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.apps...)
}

// Window returns app's points (Overall for all apps) of the last span,
// oldest first. The points share their slices with the ring: they must
// not be changed.
func (r *Recorder) Window(app string, span time.Duration) []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	rg := r.rings[app]
	if rg == nil {
		return nil
	}
	return rg.since(span)
}

// Refused sums app's refusals by route rules (Point.Refused) over the
// last span, sorted by cause; nil when there were none. It copies no
// points, as the dashboard asks for the hour every second.
func (r *Recorder) Refused(app string, span time.Duration) []CauseCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	rg := r.rings[app]
	if rg == nil {
		return nil
	}
	var out []CauseCount
	want := min(int(span/Step), rg.n)
	for i := rg.n - want; i < rg.n; i++ {
		if sl := rg.at(i); sl.causes != nil {
			for _, c := range sl.causes.refused {
				out = addCause(out, c)
			}
		}
	}
	return out
}

// ring is a fixed array of points, each kept as a slot; pos is where the
// next one goes.
type ring struct {
	slots  [Capacity]slot
	pos, n int
}

// slot is a Point as a ring keeps it, in 56 bytes rather than a Point's
// 144: an hour of them for every app and the overall ring is held for as
// long as gatehouse runs. What it drops is implied: At is a whole second
// (stamp), and a percentile is the middle of a histogram bucket, kept as
// the bucket's index. Most seconds have no errors or refusals, which are
// kept apart.
type slot struct {
	at             int64 // At, Unix seconds
	requests       uint32
	inflight, held int32
	p50, p95, p99  uint8 // bucket index + 1; 0: NaN, no request
	causes         *slotCauses
	instances      []InstancePoint
}

// A percentile's bucket index + 1 fits a slot's uint8.
var _ [255 - nBuckets]struct{}

// slotCauses are a slot's errors and refusals, when it has either.
type slotCauses struct{ errors, refused []CauseCount }

func (rg *ring) push(p Point) {
	rg.slots[rg.pos] = slot{
		at: p.At.Unix(), requests: p.Requests, inflight: int32(p.Inflight), held: int32(p.Held),
		p50: pctSlot(p.P50), p95: pctSlot(p.P95), p99: pctSlot(p.P99),
		instances: p.Instances,
	}
	if p.Errors != nil || p.Refused != nil {
		rg.slots[rg.pos].causes = &slotCauses{errors: p.Errors, refused: p.Refused}
	}
	rg.pos = (rg.pos + 1) % Capacity
	rg.n = min(rg.n+1, Capacity)
}

// at is the i-th slot of the last n, oldest first.
func (rg *ring) at(i int) *slot { return &rg.slots[(rg.pos-rg.n+i+Capacity)%Capacity] }

func (rg *ring) since(span time.Duration) []Point {
	want := min(int(span/Step), rg.n)
	out := make([]Point, 0, want)
	for i := rg.n - want; i < rg.n; i++ {
		out = append(out, rg.at(i).point())
	}
	return out
}

func (sl *slot) point() Point {
	p := Point{
		At: time.Unix(sl.at, 0), Requests: sl.requests, Inflight: int(sl.inflight), Held: int(sl.held),
		P50: pctOf(sl.p50), P95: pctOf(sl.p95), P99: pctOf(sl.p99),
		Instances: sl.instances,
	}
	if sl.causes != nil {
		p.Errors, p.Refused = sl.causes.errors, sl.causes.refused
	}
	return p
}

// pctSlot is a percentile's slot form: its bucket's index + 1, 0 for NaN.
func pctSlot(ms float64) uint8 {
	if math.IsNaN(ms) {
		return 0
	}
	return uint8(bucket(time.Duration(ms*1e6)) + 1)
}

// pctOf is the percentile a slot kept: its bucket's middle.
func pctOf(b uint8) float64 {
	if b == 0 {
		return math.NaN()
	}
	return middle(int(b) - 1)
}
