package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/discovery"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// dnsLoop is an external app's lookups of its dns:// and dns+srv://
// upstreams: one goroutine, owned by the app (counted in its WaitGroup),
// stopped by stopDNS or with the app.
type dnsLoop struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// last is each entry's last good answer: what its members are while
	// its lookups fail.
	last map[string][]string
}

// dnsErrorEvery is how often a lookup that keeps failing is reported
// again: its first failure says since when, and the repeats that it still
// does, without an event every min_refresh.
const dnsErrorEvery = time.Minute

// startDNS starts the lookups of cfg's DNS upstreams, if it has any, with
// the answers of a previous loop (carried, by entry) as the last good
// ones, so that a reload does not drain members the names still have.
func (a *App) startDNS(cfg *config.App, carried map[string][]string) {
	entries := cfg.DNSUpstreams()
	if len(entries) == 0 {
		return
	}
	l := &dnsLoop{done: make(chan struct{}), last: map[string][]string{}}
	for _, e := range entries {
		if addrs, ok := carried[e.Entry]; ok {
			l.last[e.Entry] = addrs
		}
	}
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
		a.runDNS(ctx, l, cfg, entries)
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
	return l.last
}

// lookupAdded looks up, once, the DNS entries of next that carried has
// no answer for (those a reload adds), and returns carried with their
// answers: the reload then keeps the members such a name has (a static
// entry replaced by the name that has it) rather than draining them and
// adding them again, unprobed, after the loop's first lookup. An entry
// whose lookup fails is left to the loop.
func (a *App) lookupAdded(ctx context.Context, next *config.App, carried map[string][]string) map[string][]string {
	l := &dnsLoop{last: maps.Clone(carried)}
	if l.last == nil {
		l.last = map[string][]string{}
	}
	var r *discovery.Resolver
	for _, e := range next.DNSUpstreams() {
		if _, ok := l.last[e.Entry]; ok {
			continue
		}
		if r == nil {
			var err error
			if r, err = discovery.New(cmp.Or(next.DNS, config.NewDNS())); err != nil {
				break
			}
		}
		if ans, err := r.Lookup(ctx, e); err == nil {
			a.dnsAnswered(l, e, ans.Addrs)
		}
	}
	return l.last
}

func (a *App) runDNS(ctx context.Context, l *dnsLoop, cfg *config.App, entries []config.DNSUpstream) {
	d := cfg.DNS
	if d == nil {
		d = config.NewDNS() // a config built in code, not validated
	}
	static := cfg.StaticUpstreams()
	var r *discovery.Resolver
	failing := map[string]time.Time{} // entry → when its failure was last reported
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := d.MaxRefresh.D()
		var rerr error
		if r == nil {
			// Again until it works: resolv.conf may be written after
			// gatehouse starts (a container's, say).
			r, rerr = discovery.New(d)
		}
		for _, e := range entries {
			var ans discovery.Answer
			err := rerr
			if err == nil {
				ans, err = r.Lookup(ctx, e)
			}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				a.dnsFailed(l, e, err, failing)
				next = min(next, d.MinRefresh.D())
				continue
			}
			if _, ok := failing[e.Entry]; ok {
				delete(failing, e.Entry)
				a.emitDNS(telemetry.EventDNSRecovered, e.Entry, "", fmt.Sprintf("%s answers again: %d members", e.Entry, len(ans.Addrs)))
			}
			a.dnsAnswered(l, e, ans.Addrs)
			next = min(next, ans.TTL)
		}
		a.reconcileUpstreams(dnsWanted(static, entries, l), nil, false)
		t.Reset(next)
	}
}

// dnsFailed reports a failed lookup of e, when it starts failing and
// every dnsErrorEvery while it does. Its members stay as they were.
func (a *App) dnsFailed(l *dnsLoop, e config.DNSUpstream, err error, failing map[string]time.Time) {
	if at, ok := failing[e.Entry]; ok && time.Since(at) < dnsErrorEvery {
		return
	}
	failing[e.Entry] = time.Now()
	server := ""
	var de *discovery.Error
	if errors.As(err, &de) {
		server = de.Server
	}
	l.mu.Lock()
	n := len(l.last[e.Entry])
	l.mu.Unlock()
	a.emitDNS(telemetry.EventDNSError, e.Entry, server, fmt.Sprintf("%v; %s", err, telemetry.DNSKept(n)))
}

// dnsAnswered records e's answer, with a dns_update event when it
// differs from the last one.
func (a *App) dnsAnswered(l *dnsLoop, e config.DNSUpstream, addrs []string) {
	l.mu.Lock()
	prev, known := l.last[e.Entry]
	l.last[e.Entry] = addrs
	l.mu.Unlock()
	if known && slices.Equal(prev, addrs) {
		return
	}
	var ch []string
	for _, x := range addrs {
		if !slices.Contains(prev, x) {
			ch = append(ch, "+"+x)
		}
	}
	for _, x := range prev {
		if !slices.Contains(addrs, x) {
			ch = append(ch, "-"+x)
		}
	}
	if len(ch) == 0 {
		ch = append(ch, "no members") // a first answer that is empty
	}
	a.emitDNS(telemetry.EventDNSUpdate, e.Entry, "", strings.TrimSuffix(e.Name, ".")+": "+strings.Join(ch, " "))
}

func (a *App) emitDNS(typ, entry, server, detail string) {
	a.sup.opts.Events.Emit(telemetry.Event{App: a.name, Type: typ, Value: entry, Trigger: server, Detail: detail})
}

// upstreamAddr is an address an external app should have a member for,
// and the DNS entry that found it ("" for a static entry).
type upstreamAddr struct{ addr, source string }

// dnsWanted is the static entries and every DNS entry's last good answer,
// each address once (a static entry wins).
func dnsWanted(static []string, entries []config.DNSUpstream, l *dnsLoop) []upstreamAddr {
	seen := map[string]bool{}
	var out []upstreamAddr
	add := func(addr, source string) {
		if !seen[addr] {
			seen[addr] = true
			out = append(out, upstreamAddr{addr, source})
		}
	}
	for _, s := range static {
		add(s, "")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range entries {
		for _, addr := range l.last[e.Entry] {
			add(addr, e.Entry)
		}
	}
	return out
}

// setSource records the entry that wants the upstream now.
func (in *Instance) setSource(source string) {
	in.mu.Lock()
	in.source = source
	in.mu.Unlock()
}

func (in *Instance) sourceOf() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.source
}
