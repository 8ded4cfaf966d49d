package diagnose

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

func hasCause(a *Access, c string) bool {
	if a.Cause == c {
		return true
	}
	for _, r := range a.RetriedCauses {
		if r == c {
			return true
		}
	}
	return false
}

// keepaliveRace: the app closed pooled keep-alive connections as gatehouse
// reused them.
func keepaliveRace(ev *Evidence, found []Finding) []Finding {
	byApp := accessByApp(ev, func(a *Access) bool { return hasCause(a, "stale_connection") })
	var out []Finding
	for app, as := range byApp {
		failed := 0
		for _, a := range as {
			if a.Cause == "stale_connection" {
				failed++
			}
		}
		sev := Warning
		if failed > 0 {
			sev = Critical
		}
		idle := time.Duration(0)
		if s := ev.app(app); s != nil {
			idle = s.UpstreamIdleTimeout
		}
		f := Finding{
			ID: "keepalive_race", Severity: sev, App: app,
			Title: fmt.Sprintf("the app closed keep-alive connections as they were reused (%d times)", len(as)),
			Evidence: []string{
				fmt.Sprintf("%d requests met a connection the app had just closed; %d of them failed, the rest were retried", len(as), failed),
				fmt.Sprintf("gatehouse closes idle upstream connections after upstream_idle_timeout %s, and earlier when the app sends Keep-Alive: timeout=N; the app closes them sooner", idle),
			},
			Fix:              fmt.Sprintf("make the app keep idle connections open longer than %s (%s), or lower upstream_idle_timeout below the app's keep-alive timeout", idle, ev.hints(app).keepalive),
			RequestsAffected: failed, SampleRequestIDs: sampleIDs(as),
		}
		f.FirstSeen, f.LastSeen = span(as)
		out = append(out, f)
	}
	return sorted(out)
}

// clientSide are the causes of requests whose time was the client's: slow
// to send (client_timeout), gone, or refused before reaching the app.
var clientSide = map[string]bool{"client_closed": true, "client_timeout": true, "bad_request": true,
	"request_too_large": true, "headers_too_large": true, "unsupported_protocol": true, "upgrade_refused": true}

// neverSent are the causes of requests that never reached the app: their
// time was spent waiting for an instance, which is overload's or a start's
// to explain, not the app's slowness.
var neverSent = map[string]bool{"no_ready_instance": true, "instances_busy": true, "queue_full": true, "no_route": true}

// reachedApp reports whether the app worked on a: some attempt was sent,
// and it did not end for want of an instance.
func reachedApp(a *Access) bool {
	return a.Attempts > 0 && !neverSent[a.Cause]
}

// appMS is how long the app took over a: the wait for its response
// (upstream_ms), not the time the request was held for an instance or
// the client took. An entry without upstream_ms falls back to the whole
// request less its hold.
func appMS(a *Access) float64 {
	if a.UpstreamMS > 0 {
		return a.UpstreamMS
	}
	return max(a.DurationMS-a.HeldMS, 0)
}

// slowRequests: the slowest paths, by the time the app took, and requests
// that hit request_timeout. A path whose time was spent queued inside
// the app (overload's) is not the app's slowness: its fix is capacity,
// and recycling an instance would cut off the requests queued in it.
func slowRequests(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	inflight := inflightAtSend(ev)
	for _, app := range appsInAccess(ev) {
		paths, timeouts, ok := slowOf(ev, app)
		if !ok {
			continue
		}
		queued := queuedPaths(ev, app, inflight)
		var evd []string
		if s := ev.app(app); s != nil && len(timeouts) > 0 {
			evd = append(evd, fmt.Sprintf("%d requests got no response headers within request_timeout %s (504 upstream_timeout)", len(timeouts), s.RequestTimeout))
		}
		for i, p := range paths {
			if i == 3 {
				break
			}
			evd = append(evd, fmt.Sprintf("%s: p99 %s in the app over %s", p.path, p.p99.Round(time.Millisecond), plural(p.n, "request", "requests")))
			if q, ok := queued[p.path]; ok {
				evd = append(evd, fmt.Sprintf("%s took %s when sent %s: the rest was waiting inside the app behind other requests (overload)",
					p.path, q.alone.Round(time.Millisecond), aloneWords(q.aloneN)))
			}
		}
		sev := Warning
		if slices.ContainsFunc(timeouts, func(a *Access) bool { return queued[a.Path] == nil }) {
			sev = Critical // timeouts that queueing does not explain
		}
		fix := "make the slow path faster or move its work out of the request (a queue, a background job); raise request_timeout only if the wait is expected; auto_heal slow_requests recycles an instance that gets stuck"
		if queued[paths[0].path] != nil {
			fix = "the slowest path's time is spent waiting inside the app, not working: see overload (max_inflight, more instances, autoscale); " +
				"recycling an instance for it (auto_heal slow_requests) would cut off the requests queued in it"
		}
		f := Finding{
			ID: "slow_requests", Severity: sev, App: app,
			Title:            fmt.Sprintf("slow requests: %s is the slowest path (p99 %s)", paths[0].path, paths[0].p99.Round(time.Millisecond)),
			Evidence:         evd,
			Fix:              fix,
			RequestsAffected: len(timeouts), SampleRequestIDs: sampleIDs(timeouts),
		}
		f.FirstSeen, f.LastSeen = span(timeouts)
		out = append(out, f)
	}
	return out
}

// slowOf is an app's slowest paths by the app's time, and its requests
// that hit request_timeout; ok when that is worth a slow_requests
// finding.
func slowOf(ev *Evidence, app string) (paths []pathStat, timeouts []*Access, ok bool) {
	paths = slowestPaths(accessWhere(ev, func(a *Access) bool { return a.App == app && !clientSide[a.Cause] && reachedApp(a) }))
	timeouts = accessWhere(ev, func(a *Access) bool { return a.App == app && a.Cause == "upstream_timeout" })
	return paths, timeouts, len(paths) > 0 && (len(timeouts) > 0 || paths[0].p99 >= slowP99)
}

// appsInAccess are the apps the access log names, sorted.
func appsInAccess(ev *Evidence) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range ev.Access {
		if a.App != "" && !seen[a.App] {
			seen[a.App] = true
			out = append(out, a.App)
		}
	}
	sort.Strings(out)
	return out
}

// slowP99 is the p99 past which a path is reported even without timeouts.
const slowP99 = 5 * time.Second

type pathStat struct {
	path string
	p99  time.Duration
	n    int
}

func slowestPaths(as []*Access) []pathStat {
	byPath := map[string][]float64{}
	for _, a := range as {
		byPath[a.Path] = append(byPath[a.Path], appMS(a))
	}
	var out []pathStat
	for p, ds := range byPath {
		sort.Float64s(ds)
		i := int(float64(len(ds))*0.99+0.5) - 1
		i = min(max(i, 0), len(ds)-1)
		out = append(out, pathStat{path: p, p99: time.Duration(ds[i] * float64(time.Millisecond)), n: len(ds)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].p99 > out[j].p99 })
	return out
}

// overload: requests refused for lack of capacity, or queued inside the
// app (see queueing) because its instances were sent more at once than
// they serve. Refusals of an app whose own slowness slow_requests names
// are that slowness's.
func overload(ev *Evidence, found []Finding) []Finding {
	inflight := inflightAtSend(ev)
	queued := map[string]map[string]*queueing{}
	for _, app := range appsInAccess(ev) {
		if q := queuedPaths(ev, app, inflight); len(q) > 0 && !covered(found, app, "") {
			queued[app] = q
		}
	}
	byApp := map[string][]*Access{}
	for _, a := range accessWhere(ev, func(a *Access) bool {
		return a.Cause == "queue_full" || a.Cause == "no_ready_instance" || a.Cause == "instances_busy"
	}) {
		if !covered(found, a.App, "") {
			byApp[a.App] = append(byApp[a.App], a)
		}
	}
	for app := range byApp {
		if _, _, slow := slowOf(ev, app); slow && queued[app] == nil {
			delete(byApp, app)
		}
	}
	var out []Finding
	for app, qs := range queued {
		if byApp[app] == nil {
			out = append(out, queueFinding(ev, app, qs))
		}
	}
	for app, as := range byApp {
		var full, held, busy int
		for _, a := range as {
			switch a.Cause {
			case "queue_full":
				full++
			case "no_ready_instance":
				held++
			default:
				busy++
			}
		}
		f := Finding{
			ID: "overload", Severity: Critical, App: app,
			Title: fmt.Sprintf("%d requests were refused for want of a ready instance", len(as)),
			Evidence: []string{
				fmt.Sprintf("%d × 503 queue_full (the hold queue was full)", full),
				fmt.Sprintf("%d × 503 no_ready_instance (held until hold_timeout, no instance became ready)", held),
			},
			Fix:              "add capacity (gatehouse scale " + app + " N), make instances start faster, or raise queue_size / hold_timeout if bursts are short",
			RequestsAffected: len(as), SampleRequestIDs: sampleIDs(as),
		}
		if s := ev.app(app); s != nil && s.MaxInflight > 0 {
			busyOverload(ev, &f, s, as, full)
		} else if busy > 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%d × 503 instances_busy (every instance busy at max_inflight until hold_timeout)", busy))
		}
		f.Evidence = append(f.Evidence, heldFor(ev, app, as))
		if at := atMax(ev, app); len(at) > 0 {
			// Autoscale wanted more and was not allowed: the fix is its max.
			last := at[len(at)-1]
			f.Evidence = append(f.Evidence, fmt.Sprintf("autoscale ran %s at its max instances while a scale-out rule held (%s, at %s): %s",
				app, plural(len(at), "time", "times"), last.Time.UTC().Format("15:04:05"), last.Value))
			f.Fix = "raise autoscale max for " + app + " (it was at max), make instances start faster, or raise queue_size / hold_timeout if bursts are short"
		}
		f.FirstSeen, f.LastSeen = span(as)
		if qs := queued[app]; qs != nil {
			// Refused, and queued inside the app as well: one overload.
			q := queueFinding(ev, app, qs)
			f.Evidence = append(f.Evidence, q.Evidence...)
			if len(atMax(ev, app)) == 0 {
				f.Fix = q.Fix
			}
			f.RequestsAffected += q.RequestsAffected
		}
		out = append(out, f)
	}
	return sorted(out)
}

// busyOverload words overload for an app with max_inflight whose
// instances were up but busy: it names the limit, the instances, and how
// many requests waited for a slot or were turned away. An instances_busy
// is the limit's; a no_ready_instance, held while no instance was ready,
// is a start's or a crash's.
func busyOverload(ev *Evidence, f *Finding, s *AppSnap, as []*Access, full int) {
	busy := 0
	for _, a := range as {
		if a.Cause == "instances_busy" {
			busy++
		}
	}
	held := len(accessWhere(ev, func(a *Access) bool { return a.App == s.Name && a.HeldMS > 0 && a.Cause != "queue_full" }))
	n := len(s.Instances)
	f.Title = fmt.Sprintf("overload: %d requests were refused while %s served at most max_inflight %d each",
		len(as), plural(n, "instance", "instances"), s.MaxInflight)
	f.Evidence = []string{
		fmt.Sprintf("max_inflight %d × %s: at most %d requests at once; the rest wait in the hold queue (queue_size %d, hold_timeout %s)",
			s.MaxInflight, plural(n, "instance", "instances"), s.MaxInflight*n, s.QueueSize, s.HoldTimeout),
		fmt.Sprintf("%d requests were held for a free slot or a ready instance", held),
		fmt.Sprintf("%d × 503 queue_full (the hold queue was full)", full),
		fmt.Sprintf("%d × 503 instances_busy (every instance busy at max_inflight until hold_timeout)", busy),
		fmt.Sprintf("%d × 503 no_ready_instance (held until hold_timeout, no instance became ready)", len(as)-full-busy),
	}
	f.Fix = fmt.Sprintf("add instances (gatehouse scale %s %d, or autoscale), or raise max_inflight if the app can serve more than %d at once; raise queue_size / hold_timeout only if bursts are short",
		s.Name, n+max(1, n/2), s.MaxInflight)
}

// heldFor says how long the app's requests waited in the hold queue
// while it was overloaded (p50, p95, the longest), and how long the
// overload lasted: refused is what was turned away.
func heldFor(ev *Evidence, app string, refused []*Access) string {
	first, last := span(refused)
	var waits []float64
	for _, a := range accessWhere(ev, func(a *Access) bool {
		return a.App == app && a.HeldMS > 0 && !a.Time.Before(first.Add(-time.Minute)) && !a.Time.After(last)
	}) {
		waits = append(waits, a.HeldMS)
	}
	lasted := last.Sub(first).Round(time.Second)
	if len(waits) == 0 {
		return fmt.Sprintf("the overload lasted %s (%s to %s)", lasted, clock(first), clock(last))
	}
	sort.Float64s(waits)
	ms := func(q float64) time.Duration {
		i := min(max(int(float64(len(waits))*q+0.5)-1, 0), len(waits)-1)
		return time.Duration(waits[i] * float64(time.Millisecond)).Round(time.Millisecond)
	}
	return fmt.Sprintf("requests waited for a slot %s at the median, %s at p95, %s at most; the overload lasted %s (%s to %s)",
		ms(0.5), ms(0.95), ms(1), lasted, clock(first), clock(last))
}

// atMax are the app's at_max scale events: autoscale pinned at max while
// a scale-out rule still held.
func atMax(ev *Evidence, app string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range eventsOf(ev, telemetry.EventScale) {
		if e.App == app && e.Trigger == telemetry.ScaleAtMax {
			out = append(out, e)
		}
	}
	return out
}

// coldStart: idle unloads that made requests wait for a start. The
// requests a wake held are those that arrived from just before it (the
// one that woke the app) until an instance was ready; requests held at
// other times (instances crashed, or all busy) are another finding's.
func coldStart(ev *Evidence, found []Finding) []Finding {
	byApp := map[string][]telemetry.Event{}
	for _, e := range eventsOf(ev, telemetry.EventWake) {
		byApp[e.App] = append(byApp[e.App], e)
	}
	var out []Finding
	for app, wakes := range byApp {
		spans := wakeSpans(ev, app, wakes)
		held := accessWhere(ev, func(a *Access) bool {
			return a.App == app && a.HeldMS > 0 && slices.ContainsFunc(spans, func(s [2]time.Time) bool {
				return !a.Time.Before(s[0]) && (s[1].IsZero() || !a.Time.After(s[1]))
			})
		})
		var worst float64
		for _, a := range held {
			worst = max(worst, a.HeldMS)
		}
		idle := time.Duration(0)
		if s := ev.app(app); s != nil {
			idle = s.IdleTimeout
		}
		out = append(out, Finding{
			ID: "cold_start", Severity: Info, App: app,
			Title: fmt.Sprintf("%s woke from idle %s; requests waited up to %s", app, plural(len(wakes), "time", "times"), time.Duration(worst*float64(time.Millisecond)).Round(time.Millisecond)),
			Evidence: []string{
				fmt.Sprintf("idle_timeout %s unloads the app; the next request starts it and waits", idle),
				fmt.Sprintf("%d requests were held during starts", len(held)),
			},
			Fix:              "set idle_timeout: 0 to keep the app always on, or make its startup faster",
			RequestsAffected: len(held), SampleRequestIDs: sampleIDs(held),
		})
	}
	return sorted(out)
}

// wakeLead is how long before its wake event the request that woke an
// app may have arrived: the event is written as that request finds the
// app unloaded.
const wakeLead = time.Second

// wakeSpans are the times each of an app's wakes held requests: from a
// moment before the wake to the first instance ready after it; with no
// end (zero) if none became ready.
func wakeSpans(ev *Evidence, app string, wakes []telemetry.Event) [][2]time.Time {
	var out [][2]time.Time
	for _, w := range wakes {
		var end time.Time
		for _, e := range eventsOf(ev, telemetry.EventReady) {
			if e.App == app && !e.Time.Before(w.Time) {
				end = e.Time
				break
			}
		}
		out = append(out, [2]time.Time{w.Time.Add(-wakeLead), end})
	}
	return out
}

// appErrors: the app's own 5xx, by path.
func appErrors(ev *Evidence, found []Finding) []Finding {
	byApp := accessByApp(ev, func(a *Access) bool { return a.Cause == "app_error" })
	var out []Finding
	for app, as := range byApp {
		var keys []string
		for _, a := range as {
			keys = append(keys, fmt.Sprintf("%s %d", a.Path, a.Status))
		}
		var evd []string
		for i, c := range countBy(keys) {
			if i == 5 {
				break
			}
			evd = append(evd, fmt.Sprintf("%s: %s", c.k, plural(c.n, "response", "responses")))
		}
		f := Finding{
			ID: "app_errors", Severity: Warning, App: app,
			Title:            fmt.Sprintf("the app itself answered 5xx %s", plural(len(as), "time", "times")),
			Evidence:         evd,
			Fix:              "these errors come from the app's code, not from gatehouse: see its output (gatehouse logs --app " + app + ") around the sample request ids",
			RequestsAffected: len(as), SampleRequestIDs: sampleIDs(as),
		}
		f.FirstSeen, f.LastSeen = span(as)
		out = append(out, f)
	}
	return sorted(out)
}

// sorted orders findings of one detector by app, for stable output.
func sorted(fs []Finding) []Finding {
	sort.Slice(fs, func(i, j int) bool { return fs[i].App < fs[j].App })
	return fs
}
