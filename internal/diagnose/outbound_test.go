package diagnose_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/procstat"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The same evidence gives the same report on every run, also where two
// candidates tie (two destinations with as many connections, two apps
// recycled for memory alike): a report read twice, or offline and live,
// must not change its mind.
func TestSameEvidenceSameReportEveryRun(t *testing.T) {
	now := time.Now().UTC()
	outbound := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, State: diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "web",
		Instances: []diagnose.InstanceSnap{{InstanceStatus: supervisor.InstanceStatus{ID: "web-1", PID: 4242, State: "ready", Health: "200 OK"},
			Stats: &procstat.Stats{At: now, Outbound: []procstat.ConnGroup{
				{Remote: "10.0.0.9:5432", State: "ESTABLISHED", Count: 100},
				{Remote: "10.0.0.7:6379", State: "ESTABLISHED", Count: 100},
			}, OutboundTotal: 200}}}}}}}
	memory := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now}
	for _, app := range []string{"api", "web", "admin"} {
		memory.Events = append(memory.Events, telemetry.Event{Time: now.Add(-time.Minute), App: app, Instance: app + "-1", PID: 4242,
			Type: telemetry.EventAutoHeal, Trigger: "memory", Value: "private bytes 412 MiB > 400 MiB"})
	}
	for name, ev := range map[string]*diagnose.Evidence{"outbound": outbound, "memory": memory} {
		t.Run(name, func(t *testing.T) {
			first := diagnose.Run(ev)
			for range 50 {
				if d := cmp.Diff(first, diagnose.Run(ev)); d != "" {
					t.Fatalf("two runs over the same evidence differ (-first +later):\n%s", d)
				}
			}
		})
	}
}
