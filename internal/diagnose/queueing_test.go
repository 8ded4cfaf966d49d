package diagnose_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// An app that serves one request at a time (the fault app's /work, 200ms
// each), one instance, no max_inflight, sixteen clients: requests queue
// inside the app and time out there. Sent alone they took 200ms, so this
// is overload, named first with the concurrency fix (max_inflight, more
// instances, autoscale), and slow_requests does not advise recycling the
// instance the requests are queued in.
func TestDetectorOverloadQueuedInsideTheApp(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 1, func(_ *config.Config, a *config.App) {
		a.RequestTimeout = config.Duration(2 * time.Second)
	})
	// Quiet traffic first: one request at a time.
	for range 5 {
		mustGet(t, c, g.URL+"/work?d=200ms", 200)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	timeouts := 0
	for range 16 {
		wg.Go(func() {
			for range 3 {
				r := do(c, http.MethodGet, g.URL+"/work?d=200ms")
				mu.Lock()
				if r.status == http.StatusGatewayTimeout {
					timeouts++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if timeouts == 0 {
		t.Fatal("16 clients of an app serving one 200ms request at a time, request_timeout 2s: no 504; nothing to diagnose")
	}
	f := expectFirst(t, g, since, "overload", "/work took", "when sent alone", "max_inflight is not set", "request_timeout 2s", "seems to serve about")
	for _, w := range []string{"set max_inflight for web", "gatehouse scale web", "autoscale"} {
		if !strings.Contains(f.Fix, w) {
			t.Errorf("overload fix %q; want it to say %q", f.Fix, w)
		}
	}
	if f.Severity != diagnose.Critical || f.RequestsAffected != timeouts {
		t.Errorf("overload: severity %s, %d requests affected; want critical, the %d timeouts", f.Severity, f.RequestsAffected, timeouts)
	}
	rep, err := g.Srv.Diagnose(since)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.ID == "slow_requests" && (strings.Contains(f.Fix, "recycles") || !strings.Contains(f.Fix, "overload")) {
			t.Errorf("slow_requests for requests queued inside the app: fix %q; want it to point at overload, not recycling", f.Fix)
		}
	}
}

// A handler slow on its own (1.5s with nothing else in flight, one
// client) is the app's slowness, not overload.
func TestDetectorSlowRequestsAlone(t *testing.T) {
	t.Parallel()
	g, since, c := serving(t, 1, func(_ *config.Config, a *config.App) {
		a.RequestTimeout = config.Duration(time.Second)
	})
	for range 4 {
		if r := do(c, http.MethodGet, g.URL+"/work?d=1500ms"); r.status != http.StatusGatewayTimeout {
			t.Errorf("GET /work?d=1500ms with request_timeout 1s: %v; want 504", r)
		}
	}
	mustGet(t, c, g.URL+"/work?d=10ms", 200)
	f := expectFirst(t, g, since, "slow_requests", "request_timeout 1s", "/work")
	if !strings.Contains(f.Fix, "make the slow path faster") {
		t.Errorf("slow_requests fix %q; want it to say to make the path faster", f.Fix)
	}
	rep, err := g.Srv.Diagnose(since)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.ID == "overload" {
			t.Errorf("a handler slow alone gave an overload finding:\n%s", render(rep))
		}
	}
}

// The access log alone tells a queue from a slow path: each entry's
// arrival, duration and instance say how many requests its instance had
// in flight when it was sent. Only time that grows with that number, from
// a small time alone, is overload.
func TestOverloadOnlyWhenTimeGrowsWithInflight(t *testing.T) {
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	const timeout = 2 * time.Second
	// entry is a request to web-1 sent at offset, taking took (504 at
	// request_timeout).
	entry := func(offset, took time.Duration) diagnose.Access {
		a := diagnose.Access{Time: t0.Add(offset), RequestID: fmt.Sprint("r", offset), App: "web", Instance: "web-1", Path: "/work",
			Status: 200, Attempts: 1, DurationMS: ms(took), UpstreamMS: ms(took)}
		if took >= timeout {
			a.Status, a.Cause, a.DurationMS, a.UpstreamMS = 504, "upstream_timeout", ms(timeout), ms(timeout)
		}
		return a
	}
	// Five requests sent one after another, then a wave of sixteen at
	// once, each taking serve(i) (i: its place in the wave, from 0).
	traffic := func(alone time.Duration, serve func(i int) time.Duration) []diagnose.Access {
		var as []diagnose.Access
		for i := range 5 {
			as = append(as, entry(time.Duration(i)*10*time.Second, alone))
		}
		for i := range 16 {
			as = append(as, entry(time.Minute+time.Duration(i)*time.Millisecond, serve(i)))
		}
		return as
	}
	tests := []struct {
		name        string
		access      []diagnose.Access
		maxInflight int
		want        string // the overload fix's limit, "" for no overload
	}{
		{"one at a time", traffic(200*time.Millisecond, func(i int) time.Duration { return time.Duration(i+1) * 200 * time.Millisecond }), 0,
			"set max_inflight for web to what one instance serves at once (about 1 "},
		// A lock is not a queue: the second and third sent may be served
		// last.
		{"one at a time, out of order", traffic(200*time.Millisecond, func(i int) time.Duration {
			return time.Duration([]int{1, 15, 16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}[i]) * 200 * time.Millisecond
		}), 0, "set max_inflight for web to what one instance serves at once (about 1 "},
		{"one at a time, max_inflight too high", traffic(200*time.Millisecond, func(i int) time.Duration { return time.Duration(i+1) * 200 * time.Millisecond }), 16,
			"lower max_inflight for web from 16 to what one instance serves at once (about 1 "},
		{"four at a time", traffic(600*time.Millisecond, func(i int) time.Duration { return time.Duration(i/4+1) * 600 * time.Millisecond }), 0,
			"set max_inflight for web to what one instance serves at once (about 4 "},
		{"slow alone, whatever is in flight", traffic(3*time.Second, func(int) time.Duration { return 3 * time.Second }), 0, ""},
		{"uneven work, not queued", traffic(300*time.Millisecond, func(i int) time.Duration {
			return []time.Duration{300 * time.Millisecond, 3 * time.Second, 100 * time.Millisecond, 900 * time.Millisecond}[i%4]
		}), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: t0.Add(-time.Minute), Until: t0.Add(time.Hour), Access: tt.access,
				State: diagnose.Snapshot{At: t0.Add(time.Hour), Apps: []diagnose.AppSnap{{Name: "web", RequestTimeout: timeout, MaxInflight: tt.maxInflight,
					Instances: []diagnose.InstanceSnap{{InstanceStatus: supervisor.InstanceStatus{ID: "web-1", State: "ready"}}}}}}}
			rep := diagnose.Run(ev)
			var ids []string
			var over *diagnose.Finding
			for i, f := range rep.Findings {
				ids = append(ids, f.ID)
				if f.ID == "overload" {
					over = &rep.Findings[i]
				}
			}
			if tt.want == "" {
				if over != nil {
					t.Errorf("overload for a path that took as long whatever was in flight:\n%s", render(rep))
				}
				if len(ids) == 0 || ids[0] != "slow_requests" {
					t.Errorf("findings %v; want slow_requests first", ids)
				}
				return
			}
			if over == nil || ids[0] != "overload" || !strings.Contains(over.Fix, tt.want) {
				t.Fatalf("findings %v; want overload first, its fix saying %q:\n%s", ids, tt.want, render(rep))
			}
			alone := time.Duration(tt.access[0].UpstreamMS * float64(time.Millisecond))
			if want := fmt.Sprintf("/work took %s when sent alone", alone); !strings.Contains(over.Title, want) {
				t.Errorf("overload title %q; want %q", over.Title, want)
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
