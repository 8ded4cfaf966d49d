package admin

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sync"
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
}).ParseFS(webFS, "web/dashboard.html"))

// dashboard serves the page at / and its live stream. It caches the
// findings of diagnose, which reads the last hour of logs, so that neither
// a page load nor a stream runs it more often than the evidence changes.
type dashboard struct {
	d Deps

	mu       sync.Mutex
	findings findings
}

// findings are diagnose's last report and what it was computed from.
type findings struct {
	Report *diagnose.Report
	Err    string
	at     time.Time
	// errors and lastEvent are the evidence it saw: a new 5xx or a new
	// event makes it stale.
	errors    uint64
	lastEvent time.Time
	// gen counts recomputations, for the stream to tell what changed.
	gen int
}

// Findings are recomputed at most this often, and at least this often
// when the evidence changed.
const (
	findingsMinAge = 10 * time.Second
	findingsMaxAge = 5 * time.Minute
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
}

// dashboardEvents is how many recent events the page lists.
const dashboardEvents = 40

// page serves GET /: every section rendered on the server, so that the
// tables work without JavaScript; the script then keeps them live.
func (db *dashboard) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	data := db.data(windowNamed(r.URL.Query().Get("window")), true)
	_, err := r.Cookie(sessionCookie)
	data.Session = db.d.Token != "" && err == nil
	pageHeaders(w)
	if err := dashboardTmpl.Execute(w, data); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
	}
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

// data gathers what the page shows; the findings are looked at only when
// withFindings (currentFindings may run diagnose), else left empty.
func (db *dashboard) data(win window, withFindings bool) dashboardData {
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
		data.Overview.Charts = charts("all", rec.Window(history.Overall, win.Span), win, true)
		for i := range data.Apps {
			data.Apps[i].Charts = charts(data.Apps[i].Name, rec.Window(data.Apps[i].Name, win.Span), win, false)
		}
	}
	data.Events = db.recentEvents()
	if withFindings {
		data.Findings = db.currentFindings(data.Events)
	}
	return data
}

func (db *dashboard) recentEvents() []telemetry.Event {
	return db.d.Events.Last(dashboardEvents)
}

// currentFindings returns the cached findings, recomputed first when new
// evidence arrived (and the cache is older than findingsMinAge) or when
// the cache is older than findingsMaxAge. events are the recent events,
// newest first.
func (db *dashboard) currentFindings(events []telemetry.Event) findings {
	if db.d.Diagnose == nil {
		return findings{}
	}
	var errs uint64
	if db.d.History != nil {
		errs = db.d.History.Errors()
	}
	var last time.Time
	if len(events) > 0 {
		last = events[0].Time
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	f := db.findings
	age := time.Since(f.at)
	changed := errs != f.errors || !last.Equal(f.lastEvent)
	if !f.at.IsZero() && age < findingsMaxAge && (!changed || age < findingsMinAge) {
		return f
	}
	f = findings{at: time.Now(), errors: errs, lastEvent: last, gen: f.gen + 1}
	if rep, err := db.d.Diagnose(time.Now().Add(-time.Hour)); err != nil {
		f.Err = err.Error()
	} else {
		f.Report = &rep
	}
	db.findings = f
	return f
}

// eventClass is how the timeline marks an event: bad for exits and
// failures, warn for what may lead to one, and plain otherwise.
func eventClass(e telemetry.Event) string {
	switch e.Type {
	case telemetry.EventExit, telemetry.EventStartTimeout, telemetry.EventCertFailed, telemetry.EventDNSError, telemetry.EventUpgradeAbort:
		return "bad"
	case telemetry.EventUnhealthy, telemetry.EventAutoHeal, telemetry.EventRecycle, telemetry.EventCertExpiring:
		return "warn"
	case telemetry.EventAlert:
		if e.Trigger == "resolved" {
			return ""
		}
		return "bad"
	}
	return ""
}
