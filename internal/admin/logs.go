package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// LogEntry is one line of an instance's output, as GET /api/logs and
// `gatehouse logs --json` give it. Stream is "output": an instance's
// stdout and stderr share one pipe, so their lines keep their order.
type LogEntry struct {
	Time     time.Time `json:"time"`
	App      string    `json:"app"`
	Instance string    `json:"instance"`
	Stream   string    `json:"stream"`
	Line     string    `json:"line"`
}

// StreamOutput is LogEntry.Stream for an instance's output.
const StreamOutput = "output"

// DefaultRecentLines is how many lines RecentLines keeps per instance when
// NewRecentLines is given 0.
const DefaultRecentLines = 1000

// MaxRecentInstances bounds how many instances RecentLines keeps lines
// of. Every reload, recycle and scale-out starts instances with new ids,
// and the lines of one that is gone are still wanted a while (why was it
// recycled?), but not for as long as gatehouse runs: past the bound, the
// instance that wrote last the longest ago is forgotten. The bound is
// over all apps: it is above what one app runs at once (autoscale's max
// of 256, twice over during a rolling reload), and several large apps
// lose the lines of their quietest instances first.
const MaxRecentInstances = 512

// RecentLines keeps the last lines each instance wrote, with the time
// each arrived, for GET /api/logs: of the MaxRecentInstances instances
// that wrote last.
type RecentLines struct {
	mu  sync.Mutex
	per int
	buf map[string][]telemetry.LogLine // by instance, oldest first
}

// NewRecentLines keeps up to per lines per instance (DefaultRecentLines
// when per is 0 or less).
func NewRecentLines(per int) *RecentLines {
	if per <= 0 {
		per = DefaultRecentLines
	}
	return &RecentLines{per: per, buf: map[string][]telemetry.LogLine{}}
}

// Add records one line.
func (r *RecentLines) Add(l telemetry.LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.buf[l.Instance]
	if !ok && len(r.buf) >= MaxRecentInstances {
		r.forgetQuietest()
	}
	if len(b) == r.per {
		// Drop the oldest quarter at once, so adding is amortised O(1).
		b = append(b[:0], b[max(r.per/4, 1):]...)
	}
	r.buf[l.Instance] = append(b, l)
}

// forgetQuietest drops the lines of the instance whose newest line is
// the oldest: most likely one that is gone.
func (r *RecentLines) forgetQuietest() {
	var quiet string
	var at time.Time
	for id, b := range r.buf {
		if last := b[len(b)-1].Time; quiet == "" || last.Before(at) {
			quiet, at = id, last
		}
	}
	delete(r.buf, quiet)
}

// Query returns the last n lines (all when n is 0 or less) at or after
// since, of app and instance when they are not "", oldest first.
func (r *RecentLines) Query(app, instance string, since time.Time, n int) []telemetry.LogLine {
	r.mu.Lock()
	var out []telemetry.LogLine
	for id, b := range r.buf {
		if instance != "" && id != instance {
			continue
		}
		for _, l := range b {
			if (app == "" || l.App == app) && !l.Time.Before(since) {
				out = append(out, l)
			}
		}
	}
	r.mu.Unlock()
	slices.SortStableFunc(out, func(a, b telemetry.LogLine) int { return a.Time.Compare(b.Time) })
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// logs serves GET /api/logs?app=&instance=&lines=&since=: the recent
// output of the instances, oldest first; lines (default 50, 0 for all
// kept) bounds how many, since (a duration back from now or an RFC 3339
// time) how old. An app that is not one is 404.
func (d Deps) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if msg, ok := d.unknownApp(q.Get("app")); ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": msg})
		return
	}
	n := 50
	if s := q.Get("lines"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "lines must be a whole number ≥ 0, got " + strconv.Quote(s)})
			return
		}
		n = v
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := parseSince(s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		since = t
	}
	lines := d.Recent.Query(q.Get("app"), q.Get("instance"), since, n)
	out := make([]LogEntry, len(lines))
	for i, l := range lines {
		out[i] = LogEntry{Time: l.Time, App: l.App, Instance: l.Instance, Stream: StreamOutput, Line: l.Line}
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": out})
}

// unknownApp says why app names none of the apps, when it is not "".
// The set of apps is fixed while a gatehouse runs (a change to it is
// applied by an upgrade), so no output of such an app is kept: an empty
// answer would hide a misspelt name, and a log stream would wait for
// lines that never come.
func (d Deps) unknownApp(app string) (string, bool) {
	if app == "" || d.Supervisor == nil || d.Supervisor.App(app) != nil {
		return "", false
	}
	var names []string
	for _, a := range d.Supervisor.Apps() {
		names = append(names, a.Name())
	}
	return fmt.Sprintf("no app %q (apps: %s)", app, strings.Join(names, ", ")), true
}
