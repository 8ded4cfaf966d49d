package instance

import (
	"fmt"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// probeCount is a run of consecutive probe results of one kind.
type probeCount struct{ fails, passes int }

// judge applies one health probe result to a running instance or an
// external upstream: it publishes the detail, lifts on a pass a passive
// ejection made before the probe was sent (mark, Member.EjectionMark),
// and moves the state across the thresholds of the app's health
// settings, with an event each time. A member still starting (an external
// upstream's first checks) becomes ready on its first pass, and unhealthy
// once its failures reach the threshold: an upstream that never answered
// well is shown for what it is, not as starting for ever.
func (in *Instance) judge(c *probeCount, r probe.Result, mark uint64, m *pool.Member, h config.Health, pid int) {
	in.setHealth(r.Detail)
	detail := r.Detail
	if in.upstream != "" {
		detail = in.upstream + ": " + detail
	}
	if r.OK {
		c.fails, c.passes = 0, c.passes+1
		m.ClearEjectionSince(mark)
		if s := in.State(); s != pool.Ready && (s == pool.Starting || c.passes >= h.HealthyThreshold) {
			in.setState(pool.Ready)
			in.emit(telemetry.Event{Type: telemetry.EventHealthy, PID: pid, Detail: detail})
		}
		return
	}
	c.passes, c.fails = 0, c.fails+1
	if s := in.State(); (s == pool.Ready || s == pool.Starting && in.upstream != "") && c.fails >= h.UnhealthyThreshold {
		in.setState(pool.Unhealthy)
		in.emit(telemetry.Event{Type: telemetry.EventUnhealthy, PID: pid,
			Detail: fmt.Sprintf("%s (%d failed probes in a row)", detail, c.fails)})
	}
}
