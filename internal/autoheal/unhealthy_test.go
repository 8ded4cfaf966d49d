package autoheal

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// unhealthyApp is the app web with health.recycle_after after and the
// auto_heal block ah.
func unhealthyApp(after time.Duration, ah *config.AutoHeal) *config.App {
	cfg := webApp(ah)
	cfg.Health.RecycleAfter = config.Duration(after)
	return cfg
}

// An instance its probes keep out of rotation for health.recycle_after
// is recycled, whatever auto_heal's action and with no auto_heal block at
// all; not a moment before, not when recycle_after is 0, and not when a
// probe passed meanwhile, which starts the time over.
func TestUnhealthyInstanceRecycledAfterRecycleAfter(t *testing.T) {
	logOnly := config.NewAutoHeal()
	logOnly.Action = config.ActionLogEvent
	patient := config.NewAutoHeal()
	patient.MinProcessExecutionTime = config.Duration(24 * time.Hour)
	for _, tt := range []struct {
		name  string
		after time.Duration
		ah    *config.AutoHeal
		want  bool
	}{
		{"no auto_heal block", 10 * time.Minute, nil, true},
		{"auto_heal action log_event", 10 * time.Minute, logOnly, true},
		{"min_process_execution_time longer", 10 * time.Minute, patient, true},
		{"recycle_after 0", 0, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			healTest(t, unhealthyApp(tt.after, tt.ah), 1, func(t *testing.T, hg *healing) {
				old := hg.fl.instance(0)
				hg.fl.setUnhealthy(old)
				elapse(9 * time.Minute)
				hg.fl.setHealthy(old) // a probe passed: the time starts over
				elapse(time.Minute)
				hg.fl.setUnhealthy(old)
				elapse(10*time.Minute - 2*sampleEvery)
				if got := hg.fl.recycles(); len(got) != 0 {
					t.Fatalf("recycled %v before it was unhealthy for 10m on end:\n%s", got, describe(hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)))
				}
				elapse(3*sampleEvery + recycleTakes)
				var want []string
				if tt.want {
					want = []string{old.id}
				}
				if diff := cmp.Diff(want, hg.fl.recycles()); diff != "" {
					t.Fatalf("recycles (-want +got):\n%s\nevents:\n%s", diff, describe(hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)))
				}
				if !tt.want {
					return
				}
				evs := hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)
				if len(evs) != 2 || evs[0].Trigger != triggerUnhealthy || evs[0].PID != old.pid ||
					!strings.HasPrefix(evs[0].Value, "unhealthy for 10m0s (health.recycle_after 10m0s); last probe: 503") ||
					!strings.HasSuffix(evs[0].Detail, "; action recycle") ||
					evs[1].Type != telemetry.EventRecycle || evs[1].Detail != "auto-heal unhealthy: "+evs[0].Value {
					t.Errorf("want an auto_heal event of trigger unhealthy naming recycle_after and the last probe, then the recycle, got:\n%s", describe(evs))
				}
			})
		})
	}
}

// Recycles for health.recycle_after count against max_recycles: a
// dependency that every instance's probe checks, down, recycles the app
// max_recycles times and then pauses (announced once), rather than
// restarting it for as long as the outage lasts.
func TestUnhealthyRecyclesStopAtMaxRecycles(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.MaxRecycles = &config.RateLimit{Count: 2, Per: config.Duration(time.Hour)}
	healTest(t, unhealthyApp(time.Minute, ah), 1, func(t *testing.T, hg *healing) {
		hg.fl.unhealthyReplacements()
		hg.fl.setUnhealthy(hg.fl.instance(0))
		elapse(3*time.Minute + 2*recycleTakes + 10*sampleEvery)
		if got := len(hg.fl.recycles()); got != 2 {
			t.Fatalf("%d recycles, want 2:\n%s", got, describe(hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)))
		}
		elapse(50 * time.Minute)
		var pauses []telemetry.Event
		for _, e := range hg.of(telemetry.EventAutoHeal) {
			if e.Trigger == "max_recycles" {
				pauses = append(pauses, e)
			}
		}
		if got := len(hg.fl.recycles()); got != 2 || len(pauses) != 1 {
			t.Fatalf("%d recycles and %d pause events in the hour, want 2 and 1:\n%s", got, len(pauses), describe(hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)))
		}
		elapse(10 * time.Minute)
		if got := len(hg.fl.recycles()); got < 3 {
			t.Errorf("no recycle once the hour had room again: %d recycles", got)
		}
	})
}
