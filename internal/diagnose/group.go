package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// group folds the findings of one kind about several instances of one
// app that share a cause (the same severity and the same fix, all
// current or all past) into one
// finding for the app that names the instances: three instances that
// die at start for one missing variable are one problem to fix, not
// three. The group takes the place of its first member.
func group(fs []Finding) []Finding {
	type key struct {
		id, app, fix string
		sev          Severity
		past         bool
	}
	first := map[key]int{} // index in out of the group's first member
	members := map[int][]Finding{}
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		if f.Instance == "" || f.App == "" {
			out = append(out, f)
			continue
		}
		k := key{f.ID, f.App, f.Fix, f.Severity, f.Past}
		if i, ok := first[k]; ok {
			members[i] = append(members[i], f)
			continue
		}
		first[k] = len(out)
		members[len(out)] = []Finding{f}
		out = append(out, f)
	}
	for i, ms := range members {
		if len(ms) > 1 {
			out[i] = merge(ms)
		}
	}
	return out
}

// groupTitles say what the instances of a group have in common, after
// "3 instances of web (web-1, web-2 and web-3)"; a kind not listed here
// is titled by its first member's title.
var groupTitles = map[string]string{
	"restart_loop":           "keep dying soon after they start",
	"start_failure":          "never became ready",
	"command_not_executable": "cannot run their command's program",
	"app_dir_unusable":       "cannot start in their directory",
	"crash":                  "crashed",
	"port_mismatch":          "listen on another port than the PORT they were given",
	"probe_rejected":         "have their health probe rejected",
	"upstream_tls":           "fail the TLS handshake",
	"unresponsive":           "are alive but not answering",
	"outbound_exhaustion":    "open too many outbound connections",
	"memory_pressure":        "keep growing in memory",
}

// recoveredTitles title a group of instances that all recovered (a
// detector marked each past), as groupTitles do the others.
var recoveredTitles = map[string]string{
	"restart_loop":  "died soon after they started, and have run since",
	"start_failure": "failed to start, then became ready",
	"unresponsive":  "were alive but not answering their probes, and answer them again",
}

// appWide are the kinds whose affected requests are the app's (held for
// a ready instance that never came), the same for each of its instances:
// a group counts them once. Other kinds count each instance's own, which
// a group adds up.
var appWide = map[string]bool{"command_not_executable": true, "app_dir_unusable": true, "restart_loop": true, "start_failure": true, "probe_rejected": true, "port_mismatch": true}

// merge makes one finding of ms, findings of one kind, app, severity and
// fix about different instances, in the order of the instances' numbers.
// Each member's title leads its own evidence, which names its instance.
func merge(ms []Finding) Finding {
	// An app's instance ids differ only in their number: the shorter
	// number is the smaller (web-2 before web-10).
	slices.SortStableFunc(ms, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(len(a.Instance), len(b.Instance)), strings.Compare(a.Instance, b.Instance))
	})
	g := ms[0]
	g.Instance = ""
	g.Instances = nil
	g.Evidence = nil
	g.SampleRequestIDs = nil
	g.RequestsAffected = 0
	seen := map[string]bool{}
	for _, f := range ms {
		g.Instances = append(g.Instances, f.Instance)
		g.Evidence = append(g.Evidence, f.Title)
		for _, e := range f.Evidence {
			if !strings.Contains(e, f.Instance) {
				e = f.Instance + ": " + e
			}
			g.Evidence = append(g.Evidence, e)
		}
		if appWide[f.ID] {
			g.RequestsAffected = max(g.RequestsAffected, f.RequestsAffected)
		} else {
			g.RequestsAffected += f.RequestsAffected
		}
		for _, id := range f.SampleRequestIDs {
			if len(g.SampleRequestIDs) < 5 && !seen[id] {
				seen[id] = true
				g.SampleRequestIDs = append(g.SampleRequestIDs, id)
			}
		}
		if !f.FirstSeen.IsZero() && (g.FirstSeen.IsZero() || f.FirstSeen.Before(g.FirstSeen)) {
			g.FirstSeen = f.FirstSeen
		}
		if f.LastSeen.After(g.LastSeen) {
			g.LastSeen = f.LastSeen
		}
	}
	what := fmt.Sprintf("%d instances of %s (%s)", len(ms), g.App, list(g.Instances))
	titles := groupTitles
	if g.Past {
		titles = recoveredTitles
	}
	if t, ok := titles[g.ID]; ok {
		g.Title = what + " " + t
	} else {
		g.Title = what + ": " + ms[0].Title
	}
	return g
}
