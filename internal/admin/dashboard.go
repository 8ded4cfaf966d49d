package admin

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/history"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

//go:embed web
var webFS embed.FS

// staticFS is web/static, served at /static/: the page's stylesheet and
// script, embedded so that nothing is fetched from elsewhere.
var staticFS, _ = fs.Sub(webFS, "web/static")

var dashboardTmpl = template.Must(template.New("dashboard.html").Funcs(template.FuncMap{
	"uptime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Round(time.Second).String()
	},
	"mib": func(b uint64) string {
		if b == 0 {
			return ""
		}
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	},
	"cpu": func(p *float64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprintf("%.0f%%", *p)
	},
	"eventClass": eventClass,
	"join":       strings.Join,
}).ParseFS(webFS, "web/dashboard.html"))

// dashboard serves the page at / and its live stream. It renders each
// second's fragments once per chart window, however many pages are open,
// and keeps the findings of diagnose (which reads the last hour of logs)
// until a page asks for fresher ones: the stream never runs diagnose.
type dashboard struct {
	d        Deps
	sessions *sessions

	// mu guards updates: the last rendered fragments by window name.
	mu      sync.Mutex
	updates map[string]*update
	// streams counts the open live streams, at most maxStreams.
	streams atomic.Int32

	// fmu guards findings and computing (the diagnose under way, whose
	// channel closes when it is done).
	fmu       sync.Mutex
	findings  findings
	computing chan struct{}
}

func newDashboard(d Deps, s *sessions) *dashboard {
	return &dashboard{d: d, sessions: s, updates: map[string]*update{}}
}

// findings are diagnose's last report.
type findings struct {
	Report *diagnose.Report
	Err    string
	At     time.Time
	// lastEvent is the newest event when diagnose ran: a newer one (an
	// exit, a failed probe) is evidence it has not seen.
	lastEvent time.Time
	// gen counts recomputations, for the stream to tell what changed.
	gen int
}

// A page load uses findings up to findingsPageAge old; its "run again"
// link, up to findingsFreshAge. An open page's stream has them run again
// when an event came since, at most every findingsEventAge: events (an
// exit, a failed probe) are few, where 5xx under load can be thousands a
// second, and diagnose reads the last hour of the access log.
const (
	findingsPageAge  = time.Minute
	findingsFreshAge = 5 * time.Second
	findingsEventAge = 30 * time.Second
)

// window is a span a chart covers and how many seconds each of its
// points sums up.
type window struct {
	Name string
	Span time.Duration
	Step int
}

// chartSlots is how many points every chart has: a window's span divided
// by its step.
const chartSlots = 300

var windows = []window{
	{"5m", 5 * time.Minute, 1},
	{"15m", 15 * time.Minute, 3},
	{"1h", time.Hour, 12},
}

func windowNamed(name string) window {
	for _, w := range windows {
		if w.Name == name {
			return w
		}
	}
	return windows[0]
}

// dashboardData is what the page shows.
type dashboardData struct {
	Now      time.Time
	Window   window
	Windows  []window
	Draining bool
	// Session: the admin API has a token and the page was opened with
	// the session cookie, so it offers to sign out.
	Session  bool
	Overview appView
	Apps     []appView
	Alerts   []FiringAlert
	Findings findings
	Events   []telemetry.Event
}

// appView is one app's section: its status and its charts.
type appView struct {
	Name   string
	Status supervisor.AppStatus
	Charts []template.HTML
	// Refused are the answers the app's route rules gave instead of it
	// in the last hour, by cause (access_denied, rate_limited, …),
	// whatever the charts' window: the hour diagnose reads too.
	Refused []history.CauseCount
}

// markPast returns the findings marked past against the apps shown:
// diagnose marked them against the state it read, which may be up to
// findingsPageAge older than the page (an instance scaled away since).
// The cached report is shared by every page and stream, so the marks go
// on a copy.
func (f findings) markPast(apps []appView) findings {
	if f.Report == nil {
		return f
	}
	s := diagnose.Snapshot{At: time.Now()}
	for _, a := range apps {
		as := diagnose.AppSnap{Name: a.Name}
		for _, in := range a.Status.Instances {
			as.Instances = append(as.Instances, diagnose.InstanceSnap{InstanceStatus: in})
		}
		s.Apps = append(s.Apps, as)
	}
	rep := *f.Report
	rep.Findings = slices.Clone(rep.Findings)
	rep.MarkPast(s)
	f.Report = &rep
	return f
}

// summary is the top of the page: what needs someone now (apps not
// ready, alerts firing, current critical findings), so that a crash loop
// is on the first screen and not below the charts.
type summary struct {
	NotReady []appHealth
	Alerts   []FiringAlert
	Critical []diagnose.Finding
	// FindingsErr is why diagnose has no findings to show.
	FindingsErr string
	// Apps and Ready count what is well, for the line that says so.
	Apps, Ready int
}

// appHealth is an app with instances that should serve and do not.
type appHealth struct {
	Name         string
	Ready, Total int
	// Others are its instances not ready, with their state.
	Others []supervisor.InstanceStatus
}

// Well: nothing to report.
func (s summary) Well() bool {
	return len(s.NotReady) == 0 && len(s.Alerts) == 0 && len(s.Critical) == 0 && s.FindingsErr == ""
}

// Summary gathers the page's summary. Instances draining or stopped are
// on their way out (a reload, a scale-down) and count neither way; an
// app with none (unloaded for idleness, scaled to zero) is not unwell.
func (d dashboardData) Summary() summary {
	s := summary{Apps: len(d.Apps), Alerts: d.Alerts, FindingsErr: d.Findings.Err}
	for _, a := range d.Apps {
		h := appHealth{Name: a.Name}
		for _, in := range a.Status.Instances {
			switch in.State {
			case "draining", "stopped":
				continue
			case "ready":
				h.Ready++
			default:
				h.Others = append(h.Others, in)
			}
			h.Total++
		}
		s.Ready += h.Ready
		if len(h.Others) > 0 {
			s.NotReady = append(s.NotReady, h)
		}
	}
	if rep := d.Findings.Report; rep != nil {
		for _, f := range rep.Findings {
			if f.Severity == diagnose.Critical && !f.Past {
				s.Critical = append(s.Critical, f)
			}
		}
	}
	return s
}

// dashboardEvents is how many recent events the page lists.
const dashboardEvents = 40

// page serves GET /: every section rendered on the server, so that the
// tables work without JavaScript; the script then keeps them live.
// ?findings=now asks for findings at most findingsFreshAge old.
func (db *dashboard) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	data := db.data(windowNamed(r.URL.Query().Get("window")))
	age := findingsPageAge
	if r.URL.Query().Get("findings") == "now" {
		age = findingsFreshAge
	}
	data.Findings = db.currentFindings(age).markPast(data.Apps)
	c, err := r.Cookie(sessionCookie)
	data.Session = err == nil && db.sessions != nil && db.sessions.valid(c.Value)
	pageHeaders(w)
	if err := dashboardTmpl.Execute(w, data); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
	}
}

// faviconSVG is the pages' icon (linked as /static/favicon.svg).
var faviconSVG, _ = fs.ReadFile(staticFS, "favicon.svg")

// favicon serves GET /favicon.ico, which browsers ask for on their own
// (for the JSON of /api/status opened in a tab, too): the same SVG, so
// that they find an icon rather than log a 404.
func favicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "max-age=86400")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(faviconSVG)
}

// pageHeaders keep the page from being framed (its buttons restart
// apps) and from running any script but its own.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// data gathers what the page shows but the findings.
func (db *dashboard) data(win window) dashboardData {
	status := db.d.Supervisor.Status()
	data := dashboardData{Now: time.Now(), Window: win, Windows: windows, Overview: appView{Name: "all apps"}}
	if db.d.Health != nil {
		data.Draining = db.d.Health.Draining()
	}
	if db.d.Alerts != nil {
		data.Alerts = db.d.Alerts()
	}
	for _, as := range status {
		data.Apps = append(data.Apps, appView{Name: as.Name, Status: as})
	}
	if rec := db.d.History; rec != nil {
		data.Overview.Charts = charts(overviewID, rec.Window(history.Overall, win.Span), win, true, false)
		for i, a := range data.Apps {
			data.Apps[i].Charts = charts(a.Name, rec.Window(a.Name, win.Span), win, false, external(a.Status))
			data.Apps[i].Refused = rec.Refused(a.Name, time.Hour)
		}
	}
	data.Events = db.d.Events.Last(dashboardEvents)
	return data
}

// external reports whether an app is an external pool: every instance
// is an upstream address, none a process of gatehouse's.
func external(as supervisor.AppStatus) bool {
	return len(as.Instances) > 0 && !slices.ContainsFunc(as.Instances, func(in supervisor.InstanceStatus) bool { return in.Upstream == "" })
}

// overviewID prefixes the ids of the all-apps section: an app name
// cannot start with "_", so no app's ids can clash with it.
const overviewID = "_all"

// cachedFindings are the last findings, however old.
func (db *dashboard) cachedFindings() findings {
	db.fmu.Lock()
	defer db.fmu.Unlock()
	return db.findings
}

// currentFindings returns findings at most maxAge old, running diagnose
// when the cached ones are older. One diagnose runs at a time; whoever
// asks meanwhile waits for its result.
func (db *dashboard) currentFindings(maxAge time.Duration) findings {
	if db.d.Diagnose == nil {
		return findings{}
	}
	db.fmu.Lock()
	if f := db.findings; !f.At.IsZero() && time.Since(f.At) < maxAge {
		db.fmu.Unlock()
		return f
	}
	if ch := db.computing; ch != nil {
		db.fmu.Unlock()
		<-ch
		return db.cachedFindings()
	}
	ch := make(chan struct{})
	db.computing = ch
	gen := db.findings.gen + 1
	db.fmu.Unlock()

	f := findings{At: time.Now(), gen: gen}
	if last := db.d.Events.Last(1); len(last) > 0 {
		f.lastEvent = last[0].Time
	}
	if rep, err := db.d.Diagnose(time.Now().Add(-time.Hour)); err != nil {
		f.Err = err.Error()
	} else {
		f.Report = &rep
	}
	db.fmu.Lock()
	db.findings, db.computing = f, nil
	db.fmu.Unlock()
	close(ch)
	return f
}

// refreshOnEvents runs diagnose again when an event came since it last
// ran and its findings are findingsEventAge old (see currentFindings: one
// runs at a time).
func (db *dashboard) refreshOnEvents() {
	if db.d.Diagnose == nil {
		return
	}
	last := db.d.Events.Last(1)
	f := db.cachedFindings()
	if len(last) == 0 || !last[0].Time.After(f.lastEvent) || time.Since(f.At) < findingsEventAge {
		return
	}
	db.currentFindings(findingsEventAge)
}

// eventClass is how the timeline marks an event: bad for exits and
// failures, warn for what may lead to one, and plain otherwise.
func eventClass(e telemetry.Event) string {
	switch e.Type {
	case telemetry.EventExit, telemetry.EventStartTimeout, telemetry.EventCertFailed, telemetry.EventDNSError, telemetry.EventUpgradeAbort,
		telemetry.EventPortMismatch:
		return "bad"
	case telemetry.EventUnhealthy, telemetry.EventAutoHeal, telemetry.EventRecycle, telemetry.EventCertExpiring,
		telemetry.EventCertChainIncomplete, telemetry.EventUpgradePredecessorGone:
		return "warn"
	case telemetry.EventAlert:
		if e.Trigger == "resolved" {
			return ""
		}
		return "bad"
	}
	return ""
}
