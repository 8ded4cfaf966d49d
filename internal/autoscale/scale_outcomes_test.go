package autoscale

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// What the supervisor makes of a decision: a scale that fails says so in
// a scale event naming the rule; a decision the app outgrew meanwhile
// (gatehouse scale or a reload got there first) is dropped without a
// failure event, and the next one starts from the count that came
// meanwhile; a count set outside autoscale is noted in the status and
// stands for the cool-downs.
func TestScaleOutcomes(t *testing.T) {
	t.Run("failed", func(t *testing.T) {
		scaleTest(t, inflightScaling(), 1, func(t *testing.T, sc *scaling) {
			sc.app.set(func(a *fakeApp) { a.fail = errors.New("start web-2: exec: no such file") })
			sc.app.set(func(a *fakeApp) { a.clients = 64 })
			elapse(window + 2*interval)
			if got, want := failures(sc), []string{"inflight_per_instance: autoscale: scale to 2 failed: start web-2: exec: no such file"}; !slices.Equal(got, want) {
				t.Fatalf("failure events %q, want %q", got, want)
			}
		})
	})
	t.Run("stale", func(t *testing.T) {
		scaleTest(t, inflightScaling(), 1, func(t *testing.T, sc *scaling) {
			sc.app.set(func(a *fakeApp) { a.meanwhile = func(c *config.App) { c.Instances = 3 } })
			sc.app.set(func(a *fakeApp) { a.clients = 64 })
			elapse(window + cooldownOut + 5*interval)
			if got := failures(sc); len(got) > 0 {
				t.Errorf("a stale decision reported as failed: %q", got)
			}
			calls := sc.app.snapshot().calls
			if len(calls) != 2 || calls[0] != (scaleCall{calls[0].At, 1, 2}) || calls[1] != (scaleCall{calls[1].At, 3, 4}) {
				t.Fatalf("ScaleFor calls %+v, want 1 → 2 (stale), then 3 → 4", calls)
			}
			if gap := calls[1].At.Sub(calls[0].At); gap < cooldownOut {
				t.Errorf("decided again %s after the stale one, within cooldown_out %s", gap, cooldownOut)
			}
		})
	})
	t.Run("outside", func(t *testing.T) {
		scaleTest(t, inflightScaling(), 1, func(t *testing.T, sc *scaling) {
			elapse(2 * interval)
			changed := time.Now()
			sc.app.reconfigure(func(c *config.App) { c.Instances = 2 })
			sc.app.set(func(a *fakeApp) { a.clients = 64 })
			elapse(2 * interval)
			st := sc.app.autoscaleStatus()
			if want := "instances set to 2 outside autoscale; autoscale resumes after its cool-downs"; st.LastDecision != want || st.Desired != 2 {
				t.Errorf("status %+v, want desired 2 and last decision %q", st, want)
			}
			elapse(cooldownOut + 2*interval)
			calls := sc.app.snapshot().calls
			if len(calls) != 1 || calls[0].From != 2 || calls[0].To != 3 {
				t.Fatalf("ScaleFor calls %+v, want one, 2 → 3", calls)
			}
			if gap := calls[0].At.Sub(changed); gap < cooldownOut {
				t.Errorf("scaled out %s after the outside change, within cooldown_out %s", gap, cooldownOut)
			}
		})
	})
}

// failures are the scale events that say a scale failed.
func failures(sc *scaling) []string {
	var out []string
	for _, e := range sc.scaleEvents() {
		if strings.Contains(e.Detail, "failed") {
			out = append(out, e.Trigger+": "+e.Detail)
		}
	}
	return out
}

// The cool-downs count from the scale being done (its instances ready),
// not from the decision: a slow start does not eat cooldown_out.
func TestCooldownCountsFromTheScaleDone(t *testing.T) {
	scaleTest(t, inflightScaling(), 1, func(t *testing.T, sc *scaling) {
		sc.app.set(func(a *fakeApp) { a.startTakes = 5 * time.Second })
		sc.app.set(func(a *fakeApp) { a.clients = 64 })
		elapse(window + 2*interval)
		if st := sc.app.autoscaleStatus(); !st.Scaling {
			t.Errorf("status while the scale is under way = %+v, want scaling", st)
		}
		elapse(5*time.Second + cooldownOut + 3*interval)
		calls := sc.app.snapshot().calls
		if len(calls) != 2 {
			t.Fatalf("ScaleFor calls %+v, want two", calls)
		}
		if gap := calls[1].At.Sub(calls[0].At); gap < 5*time.Second+cooldownOut {
			t.Errorf("second scale-out %s after the first decision; the first took 5s, then cooldown_out %s", gap, cooldownOut)
		}
	})
}

// A stopped app (instances 0) or one unloaded when idle is not the
// scaler's to start again, and is no longer pinned at max; an app that
// stops autoscaling loses its autoscale status.
func TestStoppedUnloadedAndUnscaledApps(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*fakeApp)
	}{
		{"stopped", func(a *fakeApp) { a.reconfigure(func(c *config.App) { c.Instances = 0 }) }},
		{"unloaded", func(a *fakeApp) { a.unloaded.Store(true) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as := inflightScaling()
			as.Max = 1
			scaleTest(t, as, 1, func(t *testing.T, sc *scaling) {
				sc.app.set(func(a *fakeApp) { a.clients = 64 })
				elapse(window + 2*interval)
				if st := sc.app.autoscaleStatus(); !st.AtMax {
					t.Fatalf("status = %+v, want at max", st)
				}
				tt.change(sc.app)
				elapse(10 * time.Second)
				if st := sc.app.autoscaleStatus(); st.AtMax {
					t.Errorf("%s app still at max: %+v", tt.name, st)
				}
				if calls := sc.app.snapshot().calls; len(calls) > 0 {
					t.Errorf("%s app scaled: %+v", tt.name, calls)
				}
			})
		})
	}
	t.Run("autoscale removed", func(t *testing.T) {
		scaleTest(t, inflightScaling(), 1, func(t *testing.T, sc *scaling) {
			elapse(2 * interval)
			if sc.app.AutoscaleStatus() == nil {
				t.Fatal("no autoscale status while autoscaled")
			}
			sc.app.reconfigure(func(c *config.App) { c.Autoscale = nil })
			elapse(2 * interval)
			if st := sc.app.AutoscaleStatus(); st != nil {
				t.Errorf("autoscale status %+v after autoscale was removed", st)
			}
		})
	})
}
