package instance

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/probe"
)

// Upstream is the address of an external upstream; "" for a supervised
// process.
func (in *Instance) Upstream() string { return in.upstream }

// SetSource records the entry that wants the upstream now.
func (in *Instance) SetSource(source string) {
	in.mu.Lock()
	in.source = source
	in.mu.Unlock()
}

// Source is the DNS entry that wants the upstream; "" for a static one.
func (in *Instance) Source() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.source
}

// runUpstream supervises an external upstream: no process, but the same
// probes and states as an instance, so the gateway treats both alike.
func (in *Instance) runUpstream(ctx context.Context) {
	m := pool.NewMember(in.ID, in.upstream)
	in.mu.Lock()
	in.member, in.startedAt, in.health = m, time.Now(), "checking "+in.upstream
	in.mu.Unlock()
	in.app.Pool.Add(m)
	in.setState(pool.Starting)
	defer in.app.Pool.Remove(m)
	var count probeCount
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Out of rotation; its in-flight requests finish (a member
			// gone from DNS may still be answering them), then gone.
			in.setState(pool.Draining)
			if in.requestedStop() == Drain {
				awaitInflight(m, in.app.Config().StopTimeout.D())
			}
			in.setState(pool.Stopped)
			return
		case <-m.Kicked():
		case <-t.C:
		}
		cfg := in.app.Config()
		spec := probe.SpecFor(cfg.Health)
		spec.TLS = cfg.UpstreamTLS
		mark := m.EjectionMark()
		r := in.probe(ctx, m.Addr, spec)
		if ctx.Err() != nil {
			continue
		}
		in.judge(&count, r, mark, m, cfg.Health, 0)
		next := jitter(cfg.Health.Interval.D())
		if in.State() != pool.Ready || m.Ejected() {
			next = min(next, time.Second)
		}
		resetTimer(t, next)
	}
}

// awaitInflight waits until m has no in-flight request (tunnels aside,
// as waitDrained), or d passes.
func awaitInflight(m *pool.Member, d time.Duration) {
	deadline := time.Now().Add(d)
	for m.Requests() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}
