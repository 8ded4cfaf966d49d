package diagnose

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// inflightAtSend reconstructs, from the access log alone, how many
// requests were in flight to each request's instance when it was sent,
// itself included. Every entry has its arrival, its hold, its duration
// and its instance: the requests an instance had at a moment are those
// sent to it before and not ended yet. Requests never sent, and upgrades
// (a tunnel is no request once switched), are not counted.
func inflightAtSend(ev *Evidence) map[*Access]int {
	type occupancy struct {
		a        *Access
		from, to time.Time
	}
	byInstance := map[[2]string][]occupancy{}
	for i := range ev.Access {
		a := &ev.Access[i]
		if a.Instance == "" || a.Attempts == 0 || neverSent[a.Cause] || a.Status == 101 {
			continue
		}
		to := a.Time.Add(millis(a.DurationMS))
		from := a.Time.Add(millis(a.HeldMS))
		if a.Attempts > 1 && a.UpstreamMS > 0 {
			// Only the last attempt went to a.Instance: it was sent at
			// the latest when the wait for its answer began.
			from = to.Add(-millis(a.UpstreamMS))
		}
		k := [2]string{a.App, a.Instance}
		byInstance[k] = append(byInstance[k], occupancy{a, from, to})
	}
	out := map[*Access]int{}
	for _, occ := range byInstance {
		froms, tos := make([]time.Time, len(occ)), make([]time.Time, len(occ))
		for i, o := range occ {
			froms[i], tos[i] = o.from, o.to
		}
		sort.Slice(froms, func(i, j int) bool { return froms[i].Before(froms[j]) })
		sort.Slice(tos, func(i, j int) bool { return tos[i].Before(tos[j]) })
		for _, o := range occ {
			sent := sort.Search(len(froms), func(i int) bool { return froms[i].After(o.from) })
			ended := sort.Search(len(tos), func(i int) bool { return tos[i].After(o.from) })
			out[o.a] = max(sent-ended, 1)
		}
	}
	return out
}

func millis(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// queueing is one slow path's evidence that its time was spent waiting
// inside the app for earlier requests rather than working: sent alone it
// is fast, sent while others are in flight to the same instance it takes
// longer the more there are.
type queueing struct {
	path string
	// alone is the median time in the app of the requests sent with at
	// most aloneN in flight (1: alone); crowded that of those sent with
	// crowdN or more.
	alone, crowded time.Duration
	aloneN, crowdN int
	// serves is how many requests an instance works on at once.
	serves int
	// most is the most requests in flight to one instance.
	most     int
	buckets  []inflightBucket
	timeouts []*Access
	// timeoutN is the median in flight when the timed-out requests were
	// sent.
	timeoutN int
}

// sentSample is one request's time in the app and the requests in
// flight to its instance when it was sent.
type sentSample struct {
	d        time.Duration
	n        int
	timedOut bool
}

type inflightBucket struct {
	lo, hi int // in flight, both included
	median time.Duration
	n      int
}

// Queueing is judged on enough requests of both kinds: at least aloneMin
// sent with at most aloneMost in flight (as few as make aloneMin), and as
// many sent with crowdFactor times that; the crowded must have taken
// queuedRatio times as long as those sent (nearly) alone at the median,
// and few of them about as long (see rarelyFast). Requests that took as
// long whatever was in flight are a slow path, not a queue.
const (
	aloneMin    = 3
	aloneMost   = 3
	crowdFactor = 4
	queuedRatio = 3
)

// queuedPaths finds the app's slow paths whose slowness is queueing in
// the app (see queueing), keyed by path.
func queuedPaths(ev *Evidence, app string, inflight map[*Access]int) map[string]*queueing {
	byPath := map[string][]sentSample{}
	timeouts := map[string][]*Access{}
	for i := range ev.Access {
		a := &ev.Access[i]
		if a.App != app || clientSide[a.Cause] || !reachedApp(a) || inflight[a] == 0 {
			continue
		}
		byPath[a.Path] = append(byPath[a.Path], sentSample{millis(appMS(a)), inflight[a], a.Cause == "upstream_timeout"})
		if a.Cause == "upstream_timeout" {
			timeouts[a.Path] = append(timeouts[a.Path], a)
		}
	}
	var timeout time.Duration
	if s := ev.app(app); s != nil {
		timeout = s.RequestTimeout
	}
	out := map[string]*queueing{}
	for path, ss := range byPath {
		all := make([]time.Duration, len(ss))
		for i, s := range ss {
			all[i] = s.d
		}
		if len(timeouts[path]) == 0 && quantile(all, 0.99) < slowP99 {
			continue // not slow: nothing to explain
		}
		sort.Slice(ss, func(i, j int) bool { return ss[i].n < ss[j].n })
		q := &queueing{path: path, timeouts: timeouts[path], most: ss[len(ss)-1].n}
		// The fewest in flight that still make aloneMin requests.
		var alone []time.Duration
		for _, s := range ss {
			if s.n > aloneMost || len(alone) >= aloneMin && s.n > q.aloneN {
				break
			}
			alone, q.aloneN = append(alone, s.d), s.n
		}
		if len(alone) < aloneMin {
			continue
		}
		q.crowdN = crowdFactor * q.aloneN
		var crowded []time.Duration
		for _, s := range ss {
			if s.n >= q.crowdN {
				crowded = append(crowded, s.d)
			}
		}
		q.alone, q.crowded = quantile(alone, 0.5), quantile(crowded, 0.5)
		if len(crowded) < aloneMin || q.crowded < queuedRatio*q.alone || !rarelyFast(q.alone, crowded) {
			continue
		}
		q.buckets, q.serves = inflightBuckets(ss), serves(q.alone, timeout, q.crowdN, ss)
		ns := make([]int, 0, len(q.timeouts))
		for _, a := range q.timeouts {
			ns = append(ns, inflight[a])
		}
		sort.Ints(ns)
		if len(ns) > 0 {
			q.timeoutN = ns[(len(ns)-1)/2]
		}
		out[path] = q
	}
	return out
}

// inflightBuckets groups the samples by in flight in powers of two: 1,
// 2–3, 4–7 ..., with each group's median time.
func inflightBuckets(ss []sentSample) []inflightBucket {
	byBucket := map[int][]time.Duration{}
	for _, s := range ss {
		b := 0
		for 1<<(b+1) <= s.n {
			b++
		}
		byBucket[b] = append(byBucket[b], s.d)
	}
	var out []inflightBucket
	for b := 0; len(byBucket) > 0; b++ {
		ds, ok := byBucket[b]
		if !ok {
			continue
		}
		delete(byBucket, b)
		out = append(out, inflightBucket{lo: 1 << b, hi: 1<<(b+1) - 1, median: quantile(ds, 0.5), n: len(ds)})
	}
	return out
}

// serves estimates how many requests an instance works on at once, two
// ways, and takes the lower: a request that jumped the queue inside the
// app (as a freed lock's newcomer does) misleads each of them alone.
//   - By in flight: up to c in flight, a request takes its time alone;
//     the estimate is the most in flight, counted up from 2, whose median
//     stayed within half again of the time alone.
//   - By rounds: c at once serve n in flight in about ceil(n/c) rounds
//     of the time alone, so each crowded request answered gives c ≈
//     n/rounds; the estimate is their (lower) median. A request cut off
//     by request_timeout, or close to it, says nothing of its rounds.
//
// The time alone is the lower of alone and the median of the requests
// sent with nothing else in flight.
func serves(alone, timeout time.Duration, crowdN int, ss []sentSample) int {
	byN := map[int][]time.Duration{}
	top := 0
	for _, s := range ss {
		byN[s.n] = append(byN[s.n], s.d)
		top = max(top, s.n)
	}
	if ones, ok := byN[1]; ok {
		alone = min(alone, quantile(ones, 0.5))
	}
	if alone <= 0 {
		return 1
	}
	byInflight := 1
	for n := 2; n <= top; n++ {
		if ds, ok := byN[n]; ok {
			if quantile(ds, 0.5) > alone*3/2 {
				break
			}
			byInflight = n
		}
	}
	var cs []int
	for _, s := range ss {
		if s.n < crowdN || s.timedOut || timeout > 0 && s.d >= timeout*9/10 {
			continue
		}
		rounds := max(1, int(float64(s.d)/float64(alone)+0.5))
		cs = append(cs, (s.n+rounds-1)/rounds)
	}
	if len(cs) == 0 {
		return byInflight
	}
	sort.Ints(cs)
	return min(byInflight, cs[(len(cs)-1)/2])
}

// rarelyFast reports whether few of the crowded took about the time
// alone (at most half again): in a queue only a request that jumped it
// inside the app does, while uneven work sent at random moments has its
// fast requests among the crowded as among the rest.
func rarelyFast(alone time.Duration, crowded []time.Duration) bool {
	fast := 0
	for _, d := range crowded {
		if d <= alone*3/2 {
			fast++
		}
	}
	return fast*4 < len(crowded)
}

// quantile is the q-quantile of ds (nearest rank); ds is sorted in place.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := min(max(int(float64(len(ds))*q+0.5)-1, 0), len(ds)-1)
	return ds[i]
}

// queueFinding is overload for an app whose instances were sent more at
// once than they serve: the requests waited inside the app, where
// request_timeout counts the wait, and timed out there.
func queueFinding(ev *Evidence, app string, qs map[string]*queueing) Finding {
	paths := make([]*queueing, 0, len(qs))
	for _, q := range qs {
		paths = append(paths, q)
	}
	sort.Slice(paths, func(i, j int) bool {
		if len(paths[i].timeouts) != len(paths[j].timeouts) {
			return len(paths[i].timeouts) > len(paths[j].timeouts)
		}
		return paths[i].path < paths[j].path
	})
	q := paths[0]
	var timeouts []*Access
	most, serve := 0, q.serves
	for _, p := range paths {
		timeouts = append(timeouts, p.timeouts...)
		most = max(most, p.most)
		serve = min(serve, p.serves)
	}
	f := Finding{
		ID: "overload", Severity: Warning, App: app,
		Title: fmt.Sprintf("overload: requests wait inside the app for their turn: %s took %s when sent %s, %s with %d or more in flight to its instance",
			q.path, q.alone.Round(time.Millisecond), aloneWords(q.aloneN), q.crowded.Round(time.Millisecond), q.crowdN),
		RequestsAffected: len(timeouts), SampleRequestIDs: sampleIDs(timeouts),
	}
	if len(timeouts) > 0 {
		f.Severity = Critical
	}
	for _, p := range paths {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s, its time in the app by the requests in flight to its instance when it was sent (itself included): %s",
			p.path, bucketWords(p.buckets)))
	}
	s := ev.app(app)
	f.Evidence = append(f.Evidence, fmt.Sprintf("the time grows with how many requests an instance is sent at once, not with the work: an instance seems to serve about %s at once, and the rest queue inside it",
		plural(serve, "request", "requests")))
	if s != nil && len(timeouts) > 0 {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%d requests got no response headers within request_timeout %s (504 upstream_timeout), most of it spent waiting: they were sent with %d in flight at the median",
			len(timeouts), s.RequestTimeout, q.timeoutN))
	}
	n := 1
	if s != nil {
		n = max(len(s.Instances), 1)
		if s.MaxInflight == 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("max_inflight is not set: gatehouse sent one instance up to %d requests at once (%s)", most, plural(n, "instance", "instances")))
		} else {
			f.Evidence = append(f.Evidence, fmt.Sprintf("max_inflight %d: gatehouse sent one instance up to %d requests at once (%s)", s.MaxInflight, most, plural(n, "instance", "instances")))
		}
	}
	limit := fmt.Sprintf("set max_inflight for %s to what one instance serves at once (about %d by these times; 1 for an app that serves one request at a time)", app, serve)
	if s != nil && s.MaxInflight > serve {
		limit = fmt.Sprintf("lower max_inflight for %s from %d to what one instance serves at once (about %d by these times)", app, s.MaxInflight, serve)
	}
	f.Fix = fmt.Sprintf("%s, so that the rest wait in gatehouse's hold queue (queue_size, hold_timeout) instead of inside the app, where request_timeout runs out; "+
		"add instances to serve the load (gatehouse scale %s %d, or autoscale out on inflight_per_instance above %d or on held); or let one instance serve more at once (more workers or threads) if the app can",
		limit, app, n+max(1, n/2), serve)
	f.FirstSeen, f.LastSeen = span(timeouts)
	return f
}

func aloneWords(n int) string {
	if n == 1 {
		return "alone"
	}
	return fmt.Sprintf("with at most %d in flight", n)
}

// bucketWords: "1: 203ms (6), 2–3: 704ms (2), 8–15: 2s (17)".
func bucketWords(bs []inflightBucket) string {
	parts := make([]string, 0, len(bs))
	for _, b := range bs {
		r := fmt.Sprint(b.lo)
		if b.hi > b.lo {
			r = fmt.Sprintf("%d–%d", b.lo, b.hi)
		}
		parts = append(parts, fmt.Sprintf("%s: %s (%d)", r, b.median.Round(time.Millisecond), b.n))
	}
	return strings.Join(parts, ", ")
}
