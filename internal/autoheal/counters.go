package autoheal

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/http1"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Proactive rules of the seed platform.
const (
	proactiveSlowTime     = 200 * time.Second
	proactiveSlowShare    = 0.8
	proactiveSlowMin      = 5
	proactiveSlowInterval = 2 * time.Minute
	proactiveMemShare     = 0.9
	proactiveMemFor       = 30 * time.Second
)

// counters are one instance's sliding counts, for the app's auto_heal
// config as it is now (see follow).
type counters struct {
	// app is the instance's app, kept so that a request finds its
	// auto_heal block without the supervisor's lookup, whose lock every
	// app's requests would share.
	app       app
	mu        sync.Mutex
	cfg       *config.AutoHeal
	requests  *buckets
	slow      []*stamps
	status    []*stamps
	proactive *buckets
	memHigh   time.Time
	firing    bool
}

func newCounters(ah *config.AutoHeal) *counters {
	c := &counters{cfg: ah, proactive: newBuckets(proactiveSlowInterval)}
	if ah == nil {
		return c
	}
	if r := ah.Triggers.Requests; r != nil {
		c.requests = newBuckets(r.Interval.D())
	}
	for _, t := range ah.Triggers.SlowRequests {
		c.slow = append(c.slow, newStamps(t.Count))
	}
	for _, t := range ah.Triggers.StatusCodes {
		c.status = append(c.status, newStamps(t.Count))
	}
	return c
}

// follow makes c count for ah, the app's auto_heal config now: a reload
// that changes the triggers without a new process applies to the
// instances that run. A trigger the reload changed (or added) starts its
// count over; one it left as it was keeps its count, whatever else of
// the block changed. c.mu is held.
func (c *counters) follow(ah *config.AutoHeal) {
	if ah == c.cfg {
		return
	}
	var prev, next config.Triggers
	if c.cfg != nil {
		prev = c.cfg.Triggers
	}
	if ah != nil {
		next = ah.Triggers
	}
	if !reflect.DeepEqual(prev, next) {
		fresh := newCounters(ah)
		if reflect.DeepEqual(prev.Requests, next.Requests) {
			fresh.requests = c.requests
		}
		keepCounts(prev.SlowRequests, next.SlowRequests, c.slow, fresh.slow)
		keepCounts(prev.StatusCodes, next.StatusCodes, c.status, fresh.status)
		c.requests, c.slow, c.status = fresh.requests, fresh.slow, fresh.status
	}
	c.cfg = ah
}

// keepCounts gives each trigger of next that was also in prev the counts
// it had there: counts holds prev's, fresh next's, which it changes.
func keepCounts[T comparable](prev, next []T, counts, fresh []*stamps) {
	used := make([]bool, len(prev))
	for i, t := range next {
		for j, p := range prev {
			if !used[j] && p == t {
				fresh[i], used[j] = counts[j], true
				break
			}
		}
	}
}

// observe counts one finished request under ah, the app's auto_heal
// config now, and returns the trigger it fired, if any. Called on the
// request path: no allocation unless a trigger fires, the config
// changed, or a trigger's path is matched against a path with parameters
// or doubled slashes.
func (c *counters) observe(e *telemetry.AccessEntry, ah *config.AutoHeal, now time.Time) *firing {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.follow(ah)
	if c.firing {
		return nil
	}
	f := c.check(e, now)
	if f != nil {
		c.firing = true
	}
	return f
}

func (c *counters) check(e *telemetry.AccessEntry, now time.Time) *firing {
	total, slow := c.proactive.add(now, e.Duration >= proactiveSlowTime)
	if total >= proactiveSlowMin && float64(slow) >= proactiveSlowShare*float64(total) {
		return &firing{trigger: "proactive_slow_requests",
			value: fmt.Sprintf("%d of %d requests in %s took %s or more", slow, total, proactiveSlowInterval, proactiveSlowTime)}
	}
	ah := c.cfg
	if ah == nil {
		return nil
	}
	if r := ah.Triggers.Requests; r != nil {
		if n, _ := c.requests.add(now, false); n >= r.Count {
			return &firing{trigger: "requests", value: fmt.Sprintf("%d requests in %s", n, r.Interval.D())}
		}
	}
	path := requestPath{raw: e.Path}
	for i, t := range ah.Triggers.SlowRequests {
		if e.Duration >= t.TimeTaken.D() && path.under(t.Path) && c.slow[i].add(now, t.Interval.D()) {
			return &firing{trigger: "slow_requests",
				value: fmt.Sprintf("%d requests%s took %s or more within %s", t.Count, pathNote(t.Path), t.TimeTaken.D(), t.Interval.D())}
		}
	}
	for i, t := range ah.Triggers.StatusCodes {
		if t.Status.Contains(e.Status) && path.under(t.Path) && c.status[i].add(now, t.Interval.D()) {
			return &firing{trigger: "status_codes",
				value: fmt.Sprintf("%d responses with status %s%s within %s", t.Count, t.Status, pathNote(t.Path), t.Interval.D())}
		}
	}
	return nil
}

// requestPath is a request's path for the triggers' path filters,
// matched as routes match it (http1.RoutePath): the app reads
// "/api;jsessionid=1/x" and "//api/x" as "/api/x", so a trigger under
// "/api/" counts them. It is made once, when a filter first needs it.
type requestPath struct {
	raw, read string
	made      bool
}

// under reports whether the path starts with prefix ("" takes every
// path).
func (p *requestPath) under(prefix string) bool {
	if prefix == "" {
		return true
	}
	if !p.made {
		p.read, p.made = http1.RoutePath(p.raw), true
	}
	return strings.HasPrefix(p.read, http1.MergeSlashes(prefix))
}

func pathNote(p string) string {
	if p == "" {
		return ""
	}
	return " under " + p
}

// clear forgets the counts after an action, so one episode fires once.
func (c *counters) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.firing = false
	c.proactive.reset()
	if c.requests != nil {
		c.requests.reset()
	}
	for _, s := range c.slow {
		s.reset()
	}
	for _, s := range c.status {
		s.reset()
	}
	c.memHigh = time.Time{}
}

// unsampled forgets when memory went above the proactive share: the
// instance had no sample, so the condition was not seen to hold.
func (c *counters) unsampled() {
	c.mu.Lock()
	c.memHigh = time.Time{}
	c.mu.Unlock()
}

// arm marks an action under way for the instance, unless one already is:
// one episode is acted on once.
func (c *counters) arm() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firing {
		return false
	}
	c.firing = true
	return true
}

// done re-arms the counters without forgetting them: the action was not
// taken (the instance was too young, or auto-heal is paused).
func (c *counters) done() {
	c.mu.Lock()
	c.firing = false
	c.mu.Unlock()
}

// firing is a trigger that fired, with the measured value.
type firing struct {
	app, instance  string
	trigger, value string
}
