package diagnose

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// unresponsive: probes time out while the process is alive, typically
// with a core busy: the blocked event loop of the articles. An instance
// that answers its probes again, and whose requests no longer time out,
// is past: what it did is evidence, but the figures of now (its health,
// its CPU) no longer tell why.
func unresponsive(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	timeouts := map[string][]telemetry.Event{}
	for _, e := range eventsOf(ev, telemetry.EventUnhealthy) {
		if strings.Contains(e.Detail, "timeout after") {
			timeouts[e.Instance] = append(timeouts[e.Instance], e)
		}
	}
	for _, ai := range instances(ev) {
		in := ai.in
		evs := timeouts[in.ID]
		nowTimingOut := strings.Contains(in.Health, "timeout after") && (in.State == "unhealthy" || in.State == "ready")
		if (len(evs) == 0 && !nowTimingOut) || in.PID == 0 || covered(found, ai.app.Name, in.ID) {
			continue
		}
		affected := accessWhere(ev, func(a *Access) bool {
			return a.Instance == in.ID && (a.Cause == "upstream_timeout" || a.Cause == "client_closed")
		})
		f := Finding{
			ID: "unresponsive", Severity: Critical, App: ai.app.Name, Instance: in.ID,
			Title:            fmt.Sprintf("%s is alive but not answering", in.ID),
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
		}
		if len(evs) > 0 {
			f.FirstSeen, f.LastSeen = evs[0].Time, evs[len(evs)-1].Time
		}
		var marked []string
		for _, e := range evs {
			marked = append(marked, fmt.Sprintf("%s marked unhealthy: %s", clock(e.Time), e.Detail))
		}
		fix := "the app stops answering while alive: look for long synchronous work, a deadlock or an exhausted thread pool"
		now := fmt.Sprintf("the process (pid %d) is alive but its probe times out: %s", in.PID, in.Health)
		backEv, wellSince := backSince(ev, in.ID, f.LastSeen, telemetry.EventHealthy, telemetry.EventReady)
		switch {
		case nowTimingOut || in.State != "ready":
		case !wellSince && !ev.State.At.After(f.LastSeen):
			// The snapshot (written every sample_interval) is older
			// than the last failed probe, and nothing since says the
			// instance is well: its ready state is not a recovery.
			now = fmt.Sprintf("the process (pid %d) is alive and its probe timed out at %s, after the last snapshot of its state (%s: %s)",
				in.PID, clock(f.LastSeen), clock(ev.State.At), in.Health)
		default:
			// A probe that passes is one moment; requests that time out
			// after it say the instance still blocks between probes.
			back := f.LastSeen
			if wellSince {
				back = backEv.Time
			}
			var still []*Access
			for _, a := range affected {
				if a.Cause == "upstream_timeout" && a.Time.After(back) {
					still = append(still, a)
				}
			}
			if len(still) == 0 {
				f.Past = true
				f.Title = fmt.Sprintf("%s was alive but not answering its probes, and answers them again", in.ID)
				f.Evidence = append([]string{recoveredWords(ev, in.ID, f.LastSeen, in.Health)}, marked...)
				f.Fix = fix
				out = append(out, f)
				continue
			}
			_, f.LastSeen = span(still)
			now = fmt.Sprintf("the process (pid %d) answers its probe again (%s), but requests to it still time out: %d since %s",
				in.PID, in.Health, len(still), clock(back))
		}
		f.Evidence = append([]string{now}, marked...)
		if in.CPUPercent >= 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("CPU at the last sample: %.0f%% of a core", in.CPUPercent))
		}
		if in.CPUPercent >= 80 {
			fix = "a CPU-bound, synchronous operation " + ev.hints(ai.app.Name).blocked + " (" + fmt.Sprintf("%.0f%%", in.CPUPercent) +
				" of a core while probes time out): move it to a worker thread or process, or break it up; auto_heal slow_requests can recycle the instance meanwhile"
		}
		f.Fix = fix
		out = append(out, f)
	}
	return out
}

// recoveredWords says that instance id answers its probes again: when it
// was marked healthy (or ready, once restarted) after failing at from,
// and what its probe says now.
func recoveredWords(ev *Evidence, id string, from time.Time, health string) string {
	if back, ok := backSince(ev, id, from, telemetry.EventHealthy, telemetry.EventReady); ok {
		return fmt.Sprintf("past: %s recovered: healthy again at %s; its probe now: %s", id, clock(back.Time), health)
	}
	return fmt.Sprintf("past: %s recovered: its probe now: %s", id, health)
}

// backSince is the first event of instance id of one of types after
// from: when it was well again.
func backSince(ev *Evidence, id string, from time.Time, types ...string) (telemetry.Event, bool) {
	for _, e := range eventsOf(ev, types...) {
		if e.Instance == id && e.Time.After(from) {
			return e, true
		}
	}
	return telemetry.Event{}, false
}

// outboundBudget is the articles' SNAT allocation per instance: outbound
// connections to one destination past it start to fail.
const outboundBudget = 128

// outboundExhaustion: many outbound connections from one instance to one
// remote address, the SNAT port exhaustion of the articles.
func outboundExhaustion(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	for _, ai := range instances(ev) {
		in := ai.in
		if in.Stats == nil || covered(found, ai.app.Name, in.ID) {
			continue
		}
		perRemote := map[string]int{}
		for _, g := range in.Stats.Outbound {
			perRemote[g.Remote] += g.Count
		}
		// The most connections; of as many, the first by name, so that
		// the same evidence always names the same destination.
		top := ""
		for r, n := range perRemote {
			if top == "" || n > perRemote[top] || n == perRemote[top] && r < top {
				top = r
			}
		}
		n := perRemote[top]
		if n < outboundBudget/2 {
			continue
		}
		sev := Warning
		if n >= outboundBudget {
			sev = Critical
		}
		evd := []string{fmt.Sprintf("%s has %d outbound connections to %s (budget %d per destination)", in.ID, n, top, outboundBudget)}
		for _, g := range in.Stats.Outbound {
			if g.Remote == top {
				evd = append(evd, fmt.Sprintf("%d in %s", g.Count, g.State))
			}
		}
		evd = append(evd, fmt.Sprintf("%d outbound connections in all", in.Stats.OutboundTotal))
		out = append(out, Finding{
			ID: "outbound_exhaustion", Severity: sev, App: ai.app.Name, Instance: in.ID,
			Title:    fmt.Sprintf("%s opens too many connections to %s", in.ID, top),
			Evidence: evd,
			Fix:      "pool and reuse outbound connections: " + ev.hints(ai.app.Name).outbound,
		})
	}
	return out
}

// memoryPressure: memory recycles, and instances whose memory keeps
// growing.
func memoryPressure(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	recycles := map[string][]healFiring{}
	for _, f := range memoryFirings(ev) {
		recycles[f.App] = append(recycles[f.App], f)
	}
	for app, fs := range recycles {
		evd := []string{}
		recycled := 0
		for _, f := range fs {
			what := "recycled"
			if f.recycled {
				recycled++
			} else {
				// Why, as auto-heal said it: the recycle failed, or
				// something came first.
				what = f.notRecycled()
			}
			evd = append(evd, fmt.Sprintf("%s %s (pid %d): %s, %s", clock(f.Time), f.Instance, f.PID, f.Value, what))
		}
		title := fmt.Sprintf("auto-heal recycled %s for memory", plural(recycled, "instance", "instances"))
		fix := "the app's memory grows until it is recycled: take a heap profile (a heap snapshot) to find the leak; meanwhile keep the memory trigger so users do not notice"
		switch {
		case recycled == 0:
			title = fmt.Sprintf("%s over auto-heal's memory limit and %s not recycled", plural(len(fs), "instance went", "instances went"), verb(len(fs), "was", "were"))
			fix = "the app's memory grows past the memory trigger: take a heap profile (a heap snapshot) to find the leak; " +
				"meanwhile auto_heal action recycle (the default) replaces an instance before it runs out, within max_recycles"
		case recycled < len(fs):
			title = fmt.Sprintf("auto-heal recycled %d of %s over its memory limit", recycled, plural(len(fs), "instance", "instances"))
		}
		out = append(out, Finding{
			ID: "memory_pressure", Severity: Warning, App: app,
			Title:    title,
			Evidence: evd,
			Fix:      fix,
		})
	}
	out = sorted(out)
	for _, ai := range instances(ev) {
		in := ai.in
		if in.Stats == nil || in.First == nil || covered(found, ai.app.Name, in.ID) || len(recycles[ai.app.Name]) > 0 {
			continue
		}
		grew := int64(in.Stats.RSS) - int64(in.First.RSS)
		if grew < memoryGrowthMin || in.Stats.RSS < 2*in.First.RSS {
			continue
		}
		age := in.Stats.At.Sub(in.First.At).Round(time.Second)
		out = append(out, Finding{
			ID: "memory_pressure", Severity: Warning, App: ai.app.Name, Instance: in.ID,
			Title:    fmt.Sprintf("%s's memory grew from %s to %s in %s", in.ID, mib(in.First.RSS), mib(in.Stats.RSS), age),
			Evidence: []string{fmt.Sprintf("resident memory %s → %s, private %s", mib(in.First.RSS), mib(in.Stats.RSS), mib(in.Stats.Private))},
			Fix:      "find what the app retains (a cache without bounds, listeners never removed); set memory_limit and an auto_heal memory trigger to recycle it before it runs out",
		})
	}
	return out
}

const memoryGrowthMin = 100 << 20

// memoryFirings are the processes auto-heal's memory triggers (memory,
// proactive_memory) fired on, each once, in order: a trigger fires again
// on a process it did not recycle (action log_event or custom, a recycle
// that failed).
func memoryFirings(ev *Evidence) []healFiring {
	return healFirings(ev, func(trigger string) bool { return strings.Contains(trigger, "memory") })
}
