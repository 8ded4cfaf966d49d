package diagnose

import (
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// unhealthyRecycled: instances their probes kept out of rotation for
// health.recycle_after, which auto-heal recycled (trigger unhealthy), or
// tried to and could not, or left alone past max_recycles. The instances
// are gone once recycled, so only the events tell it.
func unhealthyRecycled(ev *Evidence, _ []Finding) []Finding {
	byApp := map[string][]healFiring{}
	var apps []string
	for _, f := range unhealthyFirings(ev) {
		if byApp[f.App] == nil {
			apps = append(apps, f.App)
		}
		byApp[f.App] = append(byApp[f.App], f)
	}
	var out []Finding
	for _, app := range apps {
		out = append(out, unhealthyFinding(ev, app, byApp[app]))
	}
	return out
}

func unhealthyFinding(ev *Evidence, app string, fs []healFiring) Finding {
	f := Finding{ID: "unhealthy_recycled", Severity: Warning, App: app, FirstSeen: fs[0].Time, LastSeen: fs[len(fs)-1].Time}
	var ids, kept []string
	recycled := 0
	for _, u := range fs {
		if !slices.Contains(ids, u.Instance) {
			ids = append(ids, u.Instance)
		}
		what := "recycled"
		if u.recycled {
			recycled++
		} else {
			what = u.notRecycled()
			if !slices.Contains(kept, u.Instance) {
				kept = append(kept, u.Instance)
			}
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s %s (pid %d): %s; %s", clock(u.Time), u.Instance, u.PID, u.Value, what))
	}
	for _, e := range eventsOf(ev, telemetry.EventAutoHeal) {
		if e.App == app && e.Trigger == "max_recycles" && !e.Time.Before(f.FirstSeen) {
			f.Evidence = append(f.Evidence, clock(e.Time)+" "+e.Detail)
		}
	}
	if len(ids) == 1 {
		f.Instance = ids[0]
	} else {
		f.Instances = ids
	}
	switch {
	case recycled == len(fs):
		f.Title = fmt.Sprintf("auto-heal recycled %s after %s unhealthy for health.recycle_after", list(ids), verb(len(ids), "it stayed", "they stayed"))
	case recycled == 0:
		f.Title = fmt.Sprintf("%s stayed unhealthy for health.recycle_after and %s not recycled", list(kept), verb(len(kept), "was", "were"))
	default:
		f.Title = fmt.Sprintf("auto-heal recycled %d of %s that stayed unhealthy for health.recycle_after", recycled, plural(len(fs), "instance", "instances"))
	}
	f.Fix = "find why the app stopped passing its health probe while its process ran: the unhealthy events say what the probe got, " +
		"and the instance's log before the recycle (gatehouse logs) what the app did; when its replacements fail the probe too, " +
		"the probe checks something a new process does not fix (a database, another service): fix that, and max_recycles keeps the recycles bounded meanwhile"
	return f
}

// unhealthyFirings are the processes health.recycle_after fired on, each
// once, in order: a recycle that failed leaves the process unhealthy, so
// it fires again.
func unhealthyFirings(ev *Evidence) []healFiring {
	return healFirings(ev, func(trigger string) bool { return trigger == "unhealthy" })
}
