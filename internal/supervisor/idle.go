package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/instance"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// idleLoop unloads the app after idle_timeout without a request, and
// starts it again when a request arrives (held by the pool meanwhile), or
// when a reload turns idle_timeout off: the articles' "Always On"
// switched off, and back on.
func (a *App) idleLoop(ctx context.Context) {
	every := idleCheckEvery(a.Config().IdleTimeout.D())
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		// Unloaded from the start when the gatehouse this one took over
		// from had unloaded the app.
		if !a.pool.Unloaded() {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			a.touchWhileBusy(time.Now(), every)
			if !a.idle() || !a.unload() {
				continue
			}
		}
		// A wake that can start nothing (the instances are left to a new
		// gatehouse process) waits for the next request.
		for woken := false; !woken; {
			why := "request arrived"
			select {
			case <-ctx.Done():
				return
			case <-a.pool.Wake():
			case <-tick.C:
				if a.Config().IdleTimeout > 0 || a.sup.leaving.Load() {
					continue
				}
				// Always on again, as an app is that starts without
				// idle_timeout: not left unloaded until a request.
				why = "idle_timeout reloaded off"
			}
			woken = a.wake(why)
		}
	}
}

// touchWhileBusy counts a request under way or held at now as the app's
// last access, until the next check (every from now): idle_timeout runs
// from the last request's end, and a request longer than it must not
// leave the app idle the moment it ends. The end itself is not marked,
// which would cost every request a clock reading on its path: it comes
// before the next check that finds none under way, which this mark
// covers, so the app is never unloaded sooner than idle_timeout after
// it, and at most one check later.
func (a *App) touchWhileBusy(now time.Time, every time.Duration) {
	if a.pool.Inflight() > 0 || a.pool.Waiting() > 0 {
		a.pool.TouchAt(now.Add(every))
	}
}

func idleCheckEvery(idle time.Duration) time.Duration {
	return min(max(idle/4, 50*time.Millisecond), time.Second)
}

// idle reports whether the app has had no request for idle_timeout,
// has none under way or held, and instances to unload, none of them
// starting: an instance's readiness restarts the clock (the pool is
// touched), so a start slower than idle_timeout is not unloaded before it
// could serve; and a stopped app (gatehouse stop, scale 0) is left as
// it is, for gatehouse start to start, not a request.
func (a *App) idle() bool {
	return idleAt(time.Now(), a.pool.LastAccess(), a.Config().IdleTimeout.D(), a.pool.Inflight(), a.pool.Waiting()) &&
		a.unloadable()
}

// unloadable reports whether the app runs instances and none of them is
// starting.
func (a *App) unloadable() bool {
	live := a.live()
	for _, in := range live {
		if in.State() == pool.Starting {
			return false
		}
	}
	return len(live) > 0
}

// idleAt is the idle rule at now, its clock explicit for tests: no request
// since last for idle (0: never idle), and none under way or held.
func idleAt(now, last time.Time, idle time.Duration, inflight int64, waiting int) bool {
	return idle > 0 && now.Sub(last) >= idle && inflight == 0 && waiting == 0
}

// unload stops every instance drain-first. Requests that arrive from now
// on are held and wake the app. It does nothing, and returns false, when
// the app stopped being idle while an operation held the app, or while its
// instances are left to a new gatehouse process (Leave): they are not
// this one's to stop, and a wake could start none.
func (a *App) unload() bool {
	a.op.lock()
	defer a.op.unlock()
	if !a.idle() || a.sup.leaving.Load() {
		return false
	}
	idle := a.Config().IdleTimeout.D()
	select {
	case <-a.pool.Wake(): // a stale wake-up from before the unload
	default:
	}
	a.pool.SetUnloaded(true)
	ins := a.live()
	a.emit(telemetry.EventIdleUnload, fmt.Sprintf("no request for %s (idle_timeout); stopping %d instances", idle, len(ins)))
	for _, in := range ins {
		in.Stop(instance.Drain)
	}
	for _, in := range ins {
		<-in.Done()
	}
	return true
}

// wake starts the configured instances after an idle unload, for why;
// false when it could not (the app is stopping, or its instances are
// left).
func (a *App) wake(why string) bool {
	a.op.lock()
	defer a.op.unlock()
	// Only what is missing: instances adopted meanwhile (TakeBack) run.
	n := a.Config().Instances - len(a.live())
	a.emit(telemetry.EventWake, fmt.Sprintf("%s; starting %d instances (%d requests held)", why, n, a.pool.Waiting()))
	for i := 0; i < n; i++ {
		if a.addInstance(instance.Setup{}) == nil {
			return false // stopping, or left
		}
	}
	a.waking.Store(true)
	a.pool.SetUnloaded(false)
	a.pool.Touch()
	return true
}
