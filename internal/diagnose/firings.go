package diagnose

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// healFiring is an auto-heal trigger firing on one process: whether a
// recycle replaced it, and what became of the attempts that did not.
type healFiring struct {
	telemetry.Event
	recycled bool
	// attempts counts its firings: a trigger fires again on a process it
	// did not recycle.
	attempts int
	// outcome is the last word of an attempt that replaced nothing ("recycle
	// failed: …"), "" when there was none.
	outcome string
}

// healFirings are the processes auto-heal fired on for a trigger that
// keep accepts, each once, in order. A process was recycled when a
// recycle event for such a trigger names it and no failure of that
// attempt follows: the recycle event comes as the recycle begins, before
// its replacement is started, and a replacement that never becomes ready
// ends the attempt with "recycle failed", the process still running.
func healFirings(ev *Evidence, keep func(trigger string) bool) []healFiring {
	type key struct {
		instance string
		pid      int
	}
	index := map[key]int{}
	var out []healFiring
	for _, e := range eventsOf(ev, telemetry.EventAutoHeal, telemetry.EventRecycle) {
		k := key{e.Instance, e.PID}
		if e.Type == telemetry.EventRecycle {
			if i, seen := index[k]; seen && keep(recycleTrigger(e.Detail)) {
				out[i].recycled = true
			}
			continue
		}
		if !keep(e.Trigger) {
			continue
		}
		i, seen := index[k]
		if !seen {
			i = len(out)
			index[k] = i
			out = append(out, healFiring{Event: e})
		}
		// A failure first: it quotes the replacement's last output, in
		// which the app may well have written "; action ".
		switch {
		case strings.HasPrefix(e.Detail, "recycle failed: "), strings.HasPrefix(e.Detail, "not recycled: "):
			// The attempt replaced nothing, whatever its recycle event said.
			out[i].outcome = e.Detail
			out[i].recycled = false
		case strings.Contains(e.Detail, "; action "):
			out[i].attempts++
		}
	}
	return out
}

// recycleTrigger is the auto-heal trigger a recycle event's reason names
// ("auto-heal memory: …"), "" for a recycle auto-heal did not ask for.
func recycleTrigger(reason string) string {
	rest, ok := strings.CutPrefix(reason, "auto-heal ")
	if !ok {
		return ""
	}
	trigger, _, ok := strings.Cut(rest, ": ")
	if !ok {
		return ""
	}
	return trigger
}

// notRecycled says how a firing that replaced nothing ended: "not
// recycled", after how many attempts, and the last attempt's own words
// ("not recycled: …" said once).
func (f healFiring) notRecycled() string {
	what := "not recycled"
	if f.attempts > 1 {
		what += fmt.Sprintf(" after %d attempts", f.attempts)
	}
	if f.outcome != "" {
		what += ": " + strings.TrimPrefix(f.outcome, "not recycled: ")
	}
	return what
}
