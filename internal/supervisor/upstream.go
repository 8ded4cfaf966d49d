package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// runUpstream supervises an external upstream: no process, but the same
// probes and states as an instance, so the gateway treats both alike.
func (in *Instance) runUpstream(ctx context.Context) {
	m := pool.NewMember(in.ID, in.upstream)
	in.mu.Lock()
	in.member, in.startedAt, in.health = m, time.Now(), "checking "+in.upstream
	in.mu.Unlock()
	in.app.pool.Add(m)
	in.setState(pool.Starting)
	defer in.app.pool.Remove(m)
	var fails, passes int
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			in.setState(pool.Stopped)
			return
		case <-m.Kicked():
		case <-t.C:
		}
		cfg := in.app.Config()
		r := in.probe(ctx, m.Addr, probe.SpecFor(cfg.Health))
		if ctx.Err() != nil {
			continue
		}
		in.setHealth(r.Detail)
		if r.OK {
			fails, passes = 0, passes+1
			m.ClearEjection()
			if s := in.State(); s != pool.Ready && (s == pool.Starting || passes >= cfg.Health.HealthyThreshold) {
				in.setState(pool.Ready)
				in.emit(telemetry.Event{Type: telemetry.EventHealthy, Detail: fmt.Sprintf("%s: %s", in.upstream, r.Detail)})
			}
		} else {
			passes, fails = 0, fails+1
			if in.State() == pool.Ready && fails >= cfg.Health.UnhealthyThreshold {
				in.setState(pool.Unhealthy)
				in.emit(telemetry.Event{Type: telemetry.EventUnhealthy, Detail: fmt.Sprintf("%s: %s", in.upstream, r.Detail)})
			}
		}
		next := jitter(cfg.Health.Interval.D())
		if in.State() != pool.Ready || m.Ejected() {
			next = min(next, time.Second)
		}
		resetTimer(t, next)
	}
}
