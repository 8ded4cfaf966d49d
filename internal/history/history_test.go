package history

import (
	"context"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// status is a Source whose answer the test sets.
type status struct {
	mu   sync.Mutex
	apps []supervisor.AppStatus
}

func (s *status) Status() []supervisor.AppStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apps
}

func (s *status) set(apps ...supervisor.AppStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps = apps
}

func pct(v float64) *float64 { return &v }

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// A second's requests become one point per app, and their sum in the
// overall point; counters start again from zero after each sample.
func TestSampleCountsOneSecond(t *testing.T) {
	src := &status{}
	src.set(
		supervisor.AppStatus{Name: "web", Waiting: 2, Instances: []supervisor.InstanceStatus{
			{ID: "web-1", Inflight: 3, RSSBytes: 10 << 20, CPUPercent: pct(12.5)},
			{ID: "web-2", Inflight: 1},
		}},
		supervisor.AppStatus{Name: "api", Instances: []supervisor.InstanceStatus{}},
	)
	r := New(src, func() InstancePoint { return InstancePoint{ID: Self, RSS: 1, CPU: 2} })
	for range 97 {
		r.Observe(&telemetry.AccessEntry{App: "web", Status: 200, Duration: 2 * time.Millisecond})
	}
	r.Observe(&telemetry.AccessEntry{App: "web", Status: 502, Cause: "upstream_reset", Duration: 40 * time.Millisecond})
	r.Observe(&telemetry.AccessEntry{App: "web", Status: 500, Duration: time.Millisecond})
	r.Observe(&telemetry.AccessEntry{App: "api", Status: 503, Cause: "no_ready_instance", Duration: time.Second})
	r.Observe(&telemetry.AccessEntry{Status: 404, Cause: "no_route"})
	r.Sample(t0.Add(500 * time.Millisecond))

	web := r.Window("web", time.Minute)
	if len(web) != 1 {
		t.Fatalf("web has %d points, want 1", len(web))
	}
	want := Point{At: t0, Requests: 99, Inflight: 4, Held: 2,
		Errors:    []CauseCount{{"app_error", 1}, {"upstream_reset", 1}},
		Instances: []InstancePoint{{ID: "web-1", RSS: 10 << 20, CPU: 12.5}, {ID: "web-2", CPU: math.NaN()}}}
	opts := []cmp.Option{cmpopts.EquateNaNs(), cmpopts.IgnoreFields(Point{}, "P50", "P95", "P99")}
	if diff := cmp.Diff(want, web[0], opts...); diff != "" {
		t.Errorf("web point (-want +got):\n%s", diff)
	}
	// 97 of 99 took 2ms: p50 and p95 are 2ms within a bucket; p99 is the 40ms one.
	for _, q := range []struct {
		name      string
		got, want float64
	}{{"p50", web[0].P50, 2}, {"p95", web[0].P95, 2}, {"p99", web[0].P99, 40}} {
		if math.Abs(q.got-q.want)/q.want > 0.13 {
			t.Errorf("%s = %.2fms, want %.0fms within 13%%", q.name, q.got, q.want)
		}
	}
	all := r.Window(Overall, time.Minute)
	wantAll := Point{At: t0, Requests: 101, Inflight: 4, Held: 2,
		Errors:    []CauseCount{{"app_error", 1}, {"no_ready_instance", 1}, {"upstream_reset", 1}},
		Instances: []InstancePoint{{ID: Self, RSS: 1, CPU: 2}}}
	if diff := cmp.Diff(wantAll, all[0], opts...); diff != "" {
		t.Errorf("overall point (-want +got):\n%s", diff)
	}
	if got := r.Errors(); got != 3 {
		t.Errorf("Errors() = %d, want 3", got)
	}

	r.Sample(t0.Add(time.Second))
	web = r.Window("web", time.Minute)
	if len(web) != 2 || web[1].Requests != 0 || web[1].Errors != nil || !math.IsNaN(web[1].P50) {
		t.Errorf("second point after a quiet second = %+v, want no requests, no errors, NaN latency", web[1])
	}
	if diff := cmp.Diff([]string{"web", "api"}, r.Apps()); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
}

// A ring keeps the last hour; a window asks for its tail, oldest first.
func TestRingKeepsTheLastHour(t *testing.T) {
	src := &status{}
	src.set(supervisor.AppStatus{Name: "web"})
	r := New(src, nil)
	for i := range Capacity + 10 {
		r.Observe(&telemetry.AccessEntry{App: "web", Status: 200})
		r.Sample(t0.Add(time.Duration(i) * Step))
	}
	all := r.Window("web", 2*time.Hour)
	if len(all) != Capacity {
		t.Fatalf("window of 2h has %d points, want %d", len(all), Capacity)
	}
	if !all[0].At.Equal(t0.Add(10*Step)) || !all[Capacity-1].At.Equal(t0.Add((Capacity+9)*Step)) {
		t.Errorf("window spans %v..%v, want the last %d seconds", all[0].At, all[Capacity-1].At, Capacity)
	}
	five := r.Window("web", 5*time.Minute)
	if len(five) != 300 || !five[299].At.Equal(all[Capacity-1].At) {
		t.Errorf("5m window: %d points ending %v", len(five), five[len(five)-1].At)
	}
	if got := r.Window("nope", time.Hour); got != nil {
		t.Errorf("window of an unknown app = %d points, want none", len(got))
	}
}

// An app a reload removed loses its ring; its last requests still count
// in the overall one.
func TestRemovedAppLeavesOverall(t *testing.T) {
	src := &status{}
	src.set(supervisor.AppStatus{Name: "old"}, supervisor.AppStatus{Name: "web"})
	r := New(src, nil)
	r.Sample(t0)
	src.set(supervisor.AppStatus{Name: "web"})
	r.Observe(&telemetry.AccessEntry{App: "old", Status: 200})
	r.Sample(t0.Add(Step))
	if got := r.Window("old", time.Hour); got != nil {
		t.Errorf("removed app still has %d points", len(got))
	}
	all := r.Window(Overall, time.Hour)
	if all[len(all)-1].Requests != 1 {
		t.Errorf("overall point = %+v, want the removed app's request counted", all[len(all)-1])
	}
}

// Next wakes waiters at each sample; Run samples until its context ends.
// The clock is synctest's: a second passes at once.
func TestRunWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &status{}
		src.set(supervisor.AppStatus{Name: "web"})
		r := New(src, nil)
		next := r.Next()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		select {
		case <-next:
		case <-time.After(10 * time.Second):
			t.Fatal("no sample within 10s")
		}
		cancel()
		<-done
		if len(r.Window("web", time.Hour)) == 0 {
			t.Error("Run sampled nothing")
		}
	})
}

// Every duration falls in a bucket whose bounds hold it, and a bucket is
// at most 25% wide, so its middle is within 12.5% of any value in it.
func TestBucketBounds(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second, time.Nanosecond, 16 * time.Microsecond, 17 * time.Microsecond, 999 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 40 * time.Millisecond, time.Second, 59 * time.Second, 100 * time.Second} {
		i := bucket(d)
		lo, hi := bounds(i)
		ns := float64(max(d, 0))
		if ns < lo || ns >= hi {
			t.Errorf("bucket(%v) = %d with bounds [%v, %v), not holding it", d, i, lo, hi)
		}
		if i > 0 && (hi-lo)/lo > 0.25+1e-9 {
			t.Errorf("bucket %d is %.0f%% wide", i, 100*(hi-lo)/lo)
		}
	}
	if got := bucket(time.Hour); got != nBuckets-1 {
		t.Errorf("bucket(1h) = %d, want the last bucket %d", got, nBuckets-1)
	}
}

// Observe allocates nothing for a plain answer: it runs on every request.
func TestObserveDoesNotAllocate(t *testing.T) {
	r := New(&status{}, nil)
	e := &telemetry.AccessEntry{App: "web", Status: 200, Duration: time.Millisecond}
	r.Observe(e)
	if n := testing.AllocsPerRun(1000, func() { r.Observe(e) }); n != 0 {
		t.Errorf("Observe allocates %.1f times per request", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	r := New(&status{}, nil)
	e := &telemetry.AccessEntry{App: "web", Status: 200, Duration: time.Millisecond}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(e)
		}
	})
}

// Points follow each other one Step apart while the ticks keep their
// pace, even when a late tick crosses a second's boundary; after a stall
// they follow the wall clock again.
func TestStampFollowsThePace(t *testing.T) {
	src := &status{}
	src.set(supervisor.AppStatus{Name: "web"})
	r := New(src, nil)
	ticks := []time.Duration{999500 * time.Microsecond, 2000500 * time.Microsecond, 2999500 * time.Microsecond, 4001 * time.Millisecond, 9500 * time.Millisecond, 10600 * time.Millisecond}
	for _, d := range ticks {
		r.Sample(t0.Add(d))
	}
	var got []time.Duration
	for _, p := range r.Window("web", time.Hour) {
		got = append(got, p.At.Sub(t0))
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 9 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("point times (-want +got):\n%s", diff)
	}
}

// The answers a route's rules gave instead of the app are counted by
// cause, each second and over a span: the dashboard shows them beside
// the 5xx. A refusal the auth service sent itself (no cause) is the
// app's side of things, not a rule's cause.
func TestRuleRefusalsCountedByCause(t *testing.T) {
	src := &status{}
	src.set(supervisor.AppStatus{Name: "web", Instances: []supervisor.InstanceStatus{}})
	r := New(src, nil)
	observe := func() {
		for _, e := range []telemetry.AccessEntry{
			{App: "web", Status: 403, Cause: "access_denied", Rule: "not in allow"},
			{App: "web", Status: 429, Cause: "rate_limited", Rule: "rate_limit"},
			{App: "web", Status: 429, Cause: "rate_limited", Rule: "rate_limit"},
			{App: "web", Status: 401, Cause: "auth_required", Rule: "basic_auth"},
			{App: "web", Status: 503, Cause: "auth_unavailable", Rule: "forward_auth"},
			{App: "web", Status: 401, Rule: "forward_auth"},
			{App: "web", Status: 200},
			{Status: 404, Cause: "no_route"},
		} {
			r.Observe(&e)
		}
	}
	observe()
	r.Sample(t0)
	want := []CauseCount{{"access_denied", 1}, {"auth_required", 1}, {"auth_unavailable", 1}, {"rate_limited", 2}}
	web := r.Window("web", time.Minute)
	if len(web) != 1 {
		t.Fatalf("web has %d points, want 1", len(web))
	}
	if diff := cmp.Diff(want, web[0].Refused); diff != "" {
		t.Errorf("web point's refusals (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]CauseCount{{"auth_unavailable", 1}}, web[0].Errors); diff != "" {
		t.Errorf("web point's 5xx (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, r.Window(Overall, time.Minute)[0].Refused); diff != "" {
		t.Errorf("overall point's refusals (-want +got):\n%s", diff)
	}
	observe()
	r.Sample(t0.Add(time.Second))
	r.Sample(t0.Add(2 * time.Second))
	for _, tt := range []struct {
		span time.Duration
		want []CauseCount
	}{
		{time.Hour, []CauseCount{{"access_denied", 2}, {"auth_required", 2}, {"auth_unavailable", 2}, {"rate_limited", 4}}},
		{2 * time.Second, want},
		{time.Second, nil},
	} {
		if diff := cmp.Diff(tt.want, r.Refused("web", tt.span)); diff != "" {
			t.Errorf("Refused(web, %s) (-want +got):\n%s", tt.span, diff)
		}
	}
	if got := r.Refused("gone", time.Hour); got != nil {
		t.Errorf("Refused of an app never seen = %v, want nil", got)
	}
}

// A ring gives back the points it was given, whole, though it keeps each
// in a smaller form: any percentile the histogram reads (a bucket's
// middle, or NaN), the causes or none, the instances.
func TestARingGivesBackItsPoints(t *testing.T) {
	at := time.Unix(1_780_000_000, 0)
	var in []Point
	for i, tc := range []struct {
		p50, p95, p99 int // bucket indexes; -1: NaN
		errors        []CauseCount
		refused       []CauseCount
	}{
		{p50: -1, p95: -1, p99: -1},
		{p50: 0, p95: 1, p99: 2},
		{p50: 40, p95: 60, p99: nBuckets - 1, errors: []CauseCount{{"upstream_timeout", 3}}},
		{p50: 5, p95: 5, p99: 5, refused: []CauseCount{{"rate_limited", 7}}},
		{p50: 9, p95: 10, p99: 11, errors: []CauseCount{{"app_error", 1}}, refused: []CauseCount{{"access_denied", 2}}},
	} {
		pct := func(b int) float64 {
			if b < 0 {
				return math.NaN()
			}
			return middle(b)
		}
		in = append(in, Point{
			At: at.Add(time.Duration(i) * Step), Requests: uint32(i * 1000), Inflight: i, Held: 2 * i,
			P50: pct(tc.p50), P95: pct(tc.p95), P99: pct(tc.p99), Errors: tc.errors, Refused: tc.refused,
			Instances: []InstancePoint{{ID: "web-1", RSS: uint64(i) << 20, CPU: float64(i) / 2}},
		})
	}
	var rg ring
	for _, p := range in {
		rg.push(p)
	}
	if diff := cmp.Diff(in, rg.since(time.Hour), cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("points given back (-given +got):\n%s", diff)
	}
	if size := unsafe.Sizeof(slot{}); size > 56 {
		t.Errorf("a slot takes %d bytes; an hour of them per app is why it is 56", size)
	}
}
