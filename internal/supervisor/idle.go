package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// idleLoop unloads the app after idle_timeout without a request, and
// starts it again when a request arrives (held by the pool meanwhile):
// the articles' "Always On" switched off.
func (a *App) idleLoop(ctx context.Context) {
	tick := time.NewTicker(idleCheckEvery(a.Config().IdleTimeout.D()))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		idle := a.Config().IdleTimeout.D()
		if idle <= 0 || time.Since(a.pool.LastAccess()) < idle || a.pool.Inflight() > 0 || a.pool.Waiting() > 0 {
			continue
		}
		a.unload(idle)
		select {
		case <-ctx.Done():
			return
		case <-a.pool.Wake():
		}
		a.wake()
	}
}

func idleCheckEvery(idle time.Duration) time.Duration {
	return min(max(idle/4, 50*time.Millisecond), time.Second)
}

// unload stops every instance drain-first. Requests that arrive from now
// on are held and wake the app.
func (a *App) unload(idle time.Duration) {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	select {
	case <-a.pool.Wake(): // a stale wake-up from before the unload
	default:
	}
	a.pool.SetUnloaded(true)
	ins := a.live()
	a.emit(telemetry.EventIdleUnload, fmt.Sprintf("no request for %s (idle_timeout); stopping %d instances", idle, len(ins)))
	for _, in := range ins {
		in.Stop(stopDrain)
	}
	for _, in := range ins {
		<-in.Done()
	}
}

// wake starts the configured instances after an idle unload.
func (a *App) wake() {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	n := a.Config().Instances
	a.emit(telemetry.EventWake, fmt.Sprintf("request arrived; starting %d instances (%d requests held)", n, a.pool.Waiting()))
	for i := 0; i < n; i++ {
		a.addInstance(nil)
	}
	a.pool.SetUnloaded(false)
	a.pool.Touch()
}
