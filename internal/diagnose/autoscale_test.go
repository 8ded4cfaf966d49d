package diagnose_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// When autoscale had the app at max while requests were refused, the
// overload finding says so and its fix is autoscale's max; without an
// at_max event it says nothing of autoscale.
func TestOverloadSaysAtMax(t *testing.T) {
	now := time.Now()
	evidence := func(events ...telemetry.Event) *diagnose.Evidence {
		ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now, Events: events}
		for i := range 5 {
			ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-time.Minute), RequestID: "full-" + strconv.Itoa(i),
				App: "web", Method: "GET", Path: "/", Status: 503, Cause: "queue_full"})
		}
		return ev
	}
	atMax := telemetry.Event{Time: now.Add(-2 * time.Minute), App: "web", Type: telemetry.EventScale, Trigger: telemetry.ScaleAtMax,
		Value: "inflight_per_instance 16", Detail: "autoscale: at max (4 instances): inflight_per_instance 16 > 4 for 1s; cannot scale out further"}
	other := atMax
	other.App = "api"
	tests := []struct {
		name   string
		events []telemetry.Event
		want   bool
	}{
		{"at max", []telemetry.Event{atMax}, true},
		{"another app at max", []telemetry.Event{other}, false},
		{"no autoscale", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := diagnose.Run(evidence(tt.events...))
			f := findingOf(rep, "overload", "web")
			if f == nil {
				t.Fatalf("no overload finding:\n%s", render(rep))
			}
			text := strings.Join(f.Evidence, "\n")
			says := strings.Contains(text, "autoscale ran web at its max instances while a scale-out rule held (1 time, at ") &&
				strings.Contains(text, "inflight_per_instance 16") && strings.Contains(f.Fix, "raise autoscale max for web")
			if says != tt.want || !tt.want && strings.Contains(text+f.Fix, "autoscale") {
				t.Errorf("overload says at max = %v, want %v:\n%s\nfix: %s", says, tt.want, text, f.Fix)
			}
		})
	}
}
