package extpool

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

// Member is an address an external app should have a member for, and the
// DNS entry that found it ("" for a static entry).
type Member struct{ Addr, Source string }

// Members owns an external pool's members: Want adds one for each address
// it has none for and drains the others, at once (a lookup must not stall
// on a slow drain).
type Members interface {
	Want([]Member)
}

// Events receives the watch's dns_* events.
type Events interface {
	Emit(telemetry.Event)
}

// Watch is an external app's lookups of its dns:// and dns+srv://
// upstreams.
type Watch struct {
	app     string
	cfg     *config.App
	entries []config.DNSUpstream
	events  Events
	members Members

	mu sync.Mutex
	// last is each entry's last good answer: what its members are while
	// its lookups fail.
	last map[string][]string
}

// errorEvery is how often a lookup that keeps failing is reported again:
// its first failure says since when, and the repeats that it still does,
// without an event every min_refresh.
const errorEvery = time.Minute

// NewWatch prepares the lookups of cfg's DNS upstreams for app, with the
// answers of a previous watch (carried, by entry) as the last good ones,
// so that a reload does not drain members the names still have; nil when
// cfg has no DNS upstream.
func NewWatch(app string, cfg *config.App, carried map[string][]string, events Events, members Members) *Watch {
	entries := cfg.DNSUpstreams()
	if len(entries) == 0 {
		return nil
	}
	w := &Watch{app: app, cfg: cfg, entries: entries, events: events, members: members, last: map[string][]string{}}
	for _, e := range entries {
		if addrs, ok := carried[e.Entry]; ok {
			w.last[e.Entry] = addrs
		}
	}
	return w
}

// Last is each entry's last good answer.
func (w *Watch) Last() map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.last)
}

// LookupAdded looks up, once, the DNS entries of next that carried has
// no answer for (those a reload adds), and returns carried with their
// answers: the reload then keeps the members such a name has (a static
// entry replaced by the name that has it) rather than draining them and
// adding them again, unprobed, after the watch's first lookup. An entry
// whose lookup fails is left to the watch.
func LookupAdded(ctx context.Context, app string, next *config.App, carried map[string][]string, events Events) map[string][]string {
	w := &Watch{app: app, events: events, last: maps.Clone(carried)}
	if w.last == nil {
		w.last = map[string][]string{}
	}
	var r *discovery.Resolver
	for _, e := range next.DNSUpstreams() {
		if _, ok := w.last[e.Entry]; ok {
			continue
		}
		if r == nil {
			var err error
			if r, err = discovery.New(cmp.Or(next.DNS, config.NewDNS())); err != nil {
				break
			}
		}
		if ans, err := r.Lookup(ctx, e); err == nil {
			w.answered(e, ans.Addrs)
		}
	}
	return w.last
}

// Run looks the entries up until ctx ends, each round as soon as the
// shortest TTL (within min_refresh..max_refresh) or min_refresh after a
// failure, and hands the wanted members to Members after each.
func (w *Watch) Run(ctx context.Context) {
	d := w.cfg.DNS
	if d == nil {
		d = config.NewDNS() // a config built in code, not validated
	}
	static := w.cfg.StaticUpstreams()
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
		for _, e := range w.entries {
			var ans discovery.Answer
			err := rerr
			if err == nil {
				ans, err = r.Lookup(ctx, e)
			}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				w.failed(e, err, failing)
				next = min(next, d.MinRefresh.D())
				continue
			}
			if _, ok := failing[e.Entry]; ok {
				delete(failing, e.Entry)
				w.emit(telemetry.EventDNSRecovered, e.Entry, "", fmt.Sprintf("%s answers again: %d members", e.Entry, len(ans.Addrs)))
			}
			w.answered(e, ans.Addrs)
			next = min(next, ans.TTL)
		}
		w.members.Want(wanted(static, w.entries, w.Last()))
		t.Reset(next)
	}
}

// failed reports a failed lookup of e, when it starts failing and every
// errorEvery while it does. Its members stay as they were.
func (w *Watch) failed(e config.DNSUpstream, err error, failing map[string]time.Time) {
	if at, ok := failing[e.Entry]; ok && time.Since(at) < errorEvery {
		return
	}
	failing[e.Entry] = time.Now()
	server := ""
	var de *discovery.Error
	if errors.As(err, &de) {
		server = de.Server
	}
	w.mu.Lock()
	n := len(w.last[e.Entry])
	w.mu.Unlock()
	w.emit(telemetry.EventDNSError, e.Entry, server, fmt.Sprintf("%v; %s", err, telemetry.DNSKept(n)))
}

// answered records e's answer, with a dns_update event when it differs
// from the last one.
func (w *Watch) answered(e config.DNSUpstream, addrs []string) {
	w.mu.Lock()
	prev, known := w.last[e.Entry]
	w.last[e.Entry] = addrs
	w.mu.Unlock()
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
	w.emit(telemetry.EventDNSUpdate, e.Entry, "", strings.TrimSuffix(e.Name, ".")+": "+strings.Join(ch, " "))
}

func (w *Watch) emit(typ, entry, server, detail string) {
	w.events.Emit(telemetry.Event{App: w.app, Type: typ, Value: entry, Trigger: server, Detail: detail})
}

// Wanted is cfg's static entries and every DNS entry's answer in last,
// each address once (a static entry wins).
func Wanted(cfg *config.App, last map[string][]string) []Member {
	return wanted(cfg.StaticUpstreams(), cfg.DNSUpstreams(), last)
}

func wanted(static []string, entries []config.DNSUpstream, last map[string][]string) []Member {
	seen := map[string]bool{}
	var out []Member
	add := func(addr, source string) {
		if !seen[addr] {
			seen[addr] = true
			out = append(out, Member{addr, source})
		}
	}
	for _, s := range static {
		add(s, "")
	}
	for _, e := range entries {
		for _, addr := range last[e.Entry] {
			add(addr, e.Entry)
		}
	}
	return out
}

// Static is addrs, each a static entry.
func Static(addrs []string) []Member {
	out := make([]Member, len(addrs))
	for i, addr := range addrs {
		out[i] = Member{Addr: addr}
	}
	return out
}
