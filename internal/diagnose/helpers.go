package diagnose

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// detector finds one kind of problem; it sees the findings of the
// detectors before it, to leave alone what they already explained.
type detector func(ev *Evidence, found []Finding) []Finding

// detectors run in order of priority (see finding.go).
var detectors = []detector{
	commandNotExecutable, appDirUnusable, portMismatch, upstreamTLS, probeRejected, restartLoop, startFailure, crash, unresponsive,
	unhealthyRecycled, outboundExhaustion, memoryPressure, keepaliveRace, overload, slowRequests, coldStart, appErrors, certificates,
	dnsLookups, authUnavailable, rateLimited, accessDenied,
}

func eventsOf(ev *Evidence, types ...string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range ev.Events {
		for _, t := range types {
			if e.Type == t {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

func accessWhere(ev *Evidence, keep func(a *Access) bool) []*Access {
	var out []*Access
	for i := range ev.Access {
		if keep(&ev.Access[i]) {
			out = append(out, &ev.Access[i])
		}
	}
	return out
}

// accessByApp is accessWhere's entries grouped by app.
func accessByApp(ev *Evidence, keep func(a *Access) bool) map[string][]*Access {
	byApp := map[string][]*Access{}
	for _, a := range accessWhere(ev, keep) {
		byApp[a.App] = append(byApp[a.App], a)
	}
	return byApp
}

// covered reports whether an earlier current finding already names
// instance (or its whole app, when instance is ""). A past one (an
// instance that recovered) explains nothing that goes wrong now.
func covered(found []Finding, app, instance string) bool {
	for _, f := range found {
		if !f.Past && f.App == app && (f.Instance == instance || f.Instance == "" || instance == "") {
			return true
		}
	}
	return false
}

// sampleIDs returns up to 5 request ids.
func sampleIDs(as []*Access) []string {
	var ids []string
	for _, a := range as {
		if len(ids) == 5 {
			break
		}
		ids = append(ids, a.RequestID)
	}
	return ids
}

func span(as []*Access) (first, last time.Time) {
	for _, a := range as {
		if first.IsZero() || a.Time.Before(first) {
			first = a.Time
		}
		if a.Time.After(last) {
			last = a.Time
		}
	}
	return first, last
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

// countBy counts keys and returns them most frequent first.
func countBy(keys []string) []kv {
	m := map[string]int{}
	for _, k := range keys {
		m[k]++
	}
	out := make([]kv, 0, len(m))
	for k, n := range m {
		out = append(out, kv{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].k < out[j].k
	})
	return out
}

type kv struct {
	k string
	n int
}

func mib(b uint64) string { return strconv.FormatUint(b>>20, 10) + " MiB" }

// statusCode extracts a leading HTTP status from a probe detail such as
// "starting: 403 Forbidden from GET /".
func statusCode(detail string) int {
	detail = strings.TrimPrefix(detail, "starting: ")
	if len(detail) < 3 {
		return 0
	}
	n, err := strconv.Atoi(detail[:3])
	if err != nil || (len(detail) > 3 && detail[3] != ' ') {
		return 0
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// instances lists every instance of the snapshot with its app.
func instances(ev *Evidence) []appInstance {
	var out []appInstance
	for i := range ev.State.Apps {
		a := &ev.State.Apps[i]
		for j := range a.Instances {
			out = append(out, appInstance{a, &a.Instances[j]})
		}
	}
	return out
}

type appInstance struct {
	app *AppSnap
	in  *InstanceSnap
}

func (ev *Evidence) app(name string) *AppSnap {
	for i := range ev.State.Apps {
		if ev.State.Apps[i].Name == name {
			return &ev.State.Apps[i]
		}
	}
	return nil
}

// readyCount is how many instances of app were ready at the snapshot.
func (ev *Evidence) readyCount(app string) int {
	n := 0
	if a := ev.app(app); a != nil {
		for _, in := range a.Instances {
			if in.State == "ready" {
				n++
			}
		}
	}
	return n
}
