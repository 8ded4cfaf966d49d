package supervisor

import (
	"context"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/extpool"
	"github.com/gatehouse/gatehouse/internal/instance"
)

// An external app (upstreams:, no command) has an instance per address
// its pool should have (see package extpool), each probed as a process's
// instance is.

// dnsWatch is an external app's lookups of its DNS upstreams, run by one
// goroutine owned by the app (counted in its WaitGroup), stopped by
// stopDNS or with the app.
type dnsWatch struct {
	w      *extpool.Watch
	cancel context.CancelFunc
	done   chan struct{}
}

// startDNS starts the lookups of cfg's DNS upstreams, if it has any, with
// carried as their last good answers (see extpool.NewWatch).
func (a *App) startDNS(cfg *config.App, carried map[string][]string) {
	w := extpool.NewWatch(a.name, cfg, carried, a.sup.opts.Events, poolMembers{a})
	if w == nil {
		return
	}
	l := &dnsWatch{w: w, done: make(chan struct{})}
	// Under mu, as addAt: stopAll either waits for this goroutine or
	// finds it never started.
	a.mu.Lock()
	if a.ctx == nil || a.ctx.Err() != nil {
		a.mu.Unlock()
		return
	}
	var ctx context.Context
	ctx, l.cancel = context.WithCancel(a.ctx)
	a.dns = l
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer close(l.done)
		w.Run(ctx)
	}()
}

// stopDNS stops the app's lookups, if any, and returns their last good
// answers by entry.
func (a *App) stopDNS() map[string][]string {
	a.mu.Lock()
	l := a.dns
	a.dns = nil
	a.mu.Unlock()
	if l == nil {
		return nil
	}
	l.cancel()
	<-l.done
	return l.w.Last()
}

// poolMembers applies what the lookups want to the app's instances.
type poolMembers struct{ a *App }

func (m poolMembers) Want(want []extpool.Member) { m.a.reconcileUpstreams(want, nil, false) }

// reconcileUpstreams adds members for new addresses and drains removed
// ones: at once when wait is false (the DNS lookups, which must not stall
// on a slow drain), else one by one, reporting to p.
func (a *App) reconcileUpstreams(want []extpool.Member, p Progress, wait bool) {
	have := map[string][]*Instance{}
	for _, in := range a.live() {
		have[in.Upstream()] = append(have[in.Upstream()], in)
	}
	var add []extpool.Member
	for _, w := range want {
		if ins := have[w.Addr]; ins != nil {
			// Kept: the entry that wants it now is its source (a static
			// entry replaced by the name that has it, or the reverse).
			for _, in := range ins {
				in.SetSource(w.Source)
			}
			delete(have, w.Addr)
			continue
		}
		add = append(add, w)
	}
	for _, w := range add {
		in := a.addInstance(instance.Setup{Upstream: w.Addr, Source: w.Source})
		if in == nil {
			// Stopping, or leaving to a successor: nothing can be added,
			// but what left the config or DNS still leaves the pool (a
			// leaving gatehouse serves on through it).
			break
		}
		if p != nil {
			p("%s: added upstream %s", in.ID, w.Addr)
		}
	}
	for _, ins := range have {
		for _, in := range ins {
			if wait {
				a.stopAndWait(in, p)
			} else {
				in.Stop(instance.Drain)
			}
		}
	}
}
