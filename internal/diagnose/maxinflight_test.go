package diagnose_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// overload for an app with max_inflight names the limit, the instances,
// the held and refused requests (instances_busy for the limit's,
// no_ready_instance for a start's), how long requests waited and how long
// the overload lasted; without the limit it reads as before.
func TestOverloadWithMaxInflight(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	access := func(ago time.Duration, cause, detail string, held float64) diagnose.Access {
		return diagnose.Access{Time: now.Add(-ago), App: "web", Path: "/", Status: 503, Cause: cause, Detail: detail, HeldMS: held, RequestID: cause}
	}
	entries := []diagnose.Access{
		access(90*time.Second, "queue_full", "2 requests already waiting for an instance of web; 2 instances busy at max_inflight 1", 0),
		access(80*time.Second, "queue_full", "2 requests already waiting for an instance of web; 2 instances busy at max_inflight 1", 0),
		access(70*time.Second, "instances_busy", "no instance of web had a free slot within hold_timeout 5s: 2 instances busy at max_inflight 1, 2 requests waiting", 5000),
		access(60*time.Second, "no_ready_instance", "no instance of web became ready within hold_timeout 5s: web-1 starting for 5s", 5000),
	}
	for range 3 {
		entries = append(entries, diagnose.Access{Time: now.Add(-75 * time.Second), App: "web", Path: "/", Status: 200, HeldMS: 40, Attempts: 1, UpstreamMS: 30})
	}
	clock := func(ago time.Duration) string { return now.Add(-ago).UTC().Format("15:04:05") }
	waited := "requests waited for a slot 40ms at the median, 5s at p95, 5s at most; the overload lasted 30s (" + clock(90*time.Second) + " to " + clock(60*time.Second) + ")"
	instances := []diagnose.InstanceSnap{
		{InstanceStatus: supervisor.InstanceStatus{ID: "web-1", State: "ready"}},
		{InstanceStatus: supervisor.InstanceStatus{ID: "web-2", State: "ready"}},
	}
	tests := []struct {
		name         string
		limit        int
		wantTitle    string
		wantEvidence []string
		wantFix      string
	}{
		{"max_inflight 1", 1, "overload: 4 requests were refused while 2 instances served at most max_inflight 1 each",
			[]string{
				"max_inflight 1 × 2 instances: at most 2 requests at once; the rest wait in the hold queue (queue_size 2, hold_timeout 5s)",
				"5 requests were held for a free slot or a ready instance",
				"2 × 503 queue_full (the hold queue was full)",
				"1 × 503 instances_busy (every instance busy at max_inflight until hold_timeout)",
				"1 × 503 no_ready_instance (held until hold_timeout, no instance became ready)",
				waited,
			}, "gatehouse scale web 3, or autoscale"},
		{"no limit", 0, "4 requests were refused for want of a ready instance",
			[]string{
				"2 × 503 queue_full (the hold queue was full)",
				"1 × 503 no_ready_instance (held until hold_timeout, no instance became ready)",
				"1 × 503 instances_busy (every instance busy at max_inflight until hold_timeout)",
				waited,
			}, "gatehouse scale web N"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Access: entries,
				State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web", MaxInflight: tt.limit, QueueSize: 2, HoldTimeout: 5 * time.Second, Instances: instances}}}}
			fs := diagnose.Run(ev).Findings
			if len(fs) == 0 {
				t.Fatal("no finding")
			}
			f := fs[0]
			if f.ID != "overload" || f.Title != tt.wantTitle || f.RequestsAffected != 4 {
				t.Errorf("first finding %s %q (%d affected); want overload %q, 4 affected", f.ID, f.Title, f.RequestsAffected, tt.wantTitle)
			}
			if diff := cmp.Diff(tt.wantEvidence, f.Evidence); diff != "" {
				t.Errorf("evidence (-want +got):\n%s", diff)
			}
			if !strings.Contains(f.Fix, tt.wantFix) {
				t.Errorf("fix %q; want it to contain %q", f.Fix, tt.wantFix)
			}
		})
	}
}
