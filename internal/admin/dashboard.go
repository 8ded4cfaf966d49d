package admin

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

//go:embed web/dashboard.html
var webFS embed.FS

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
}).ParseFS(webFS, "web/dashboard.html"))

// dashboardData is what the dashboard page shows.
type dashboardData struct {
	Now         time.Time
	Apps        []supervisor.AppStatus
	Report      *diagnose.Report
	DiagnoseErr string
	Events      []telemetry.Event
}

// dashboardEvents is how many recent events the page lists.
const dashboardEvents = 30

// dashboard serves GET /: status, findings and recent events on one page
// that refreshes itself; no script, nothing fetched from elsewhere.
func (d Deps) dashboard(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	data := dashboardData{Now: time.Now(), Apps: d.Supervisor.Status()}
	if d.Diagnose != nil {
		rep, err := d.Diagnose(time.Now().Add(-time.Hour))
		if err != nil {
			data.DiagnoseErr = err.Error()
		} else {
			data.Report = &rep
		}
	}
	evs := d.Events.Since(time.Now().Add(-24 * time.Hour))
	if len(evs) > dashboardEvents {
		evs = evs[len(evs)-dashboardEvents:]
	}
	slices.Reverse(evs)
	data.Events = evs
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := dashboardTmpl.Execute(w, data); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
	}
}
