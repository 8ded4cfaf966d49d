package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// FiringAlert is an alert firing now, for the dashboard's header.
type FiringAlert struct {
	Alert, App string
	Firing     int
}

// streamFindingsEvery is how often the stream asks whether the findings
// are stale (currentFindings then decides whether diagnose runs).
const streamFindingsEvery = 10 * time.Second

// stream serves GET /api/dashboard/stream: after every sample of the
// history (once a second), one server-sent event "update" whose data is a
// JSON object from element id to that element's new inner HTML: the
// charts, the instance tables, the header, the events, and the findings
// when they changed. The page's script swaps them in; the server renders
// every fragment, so there is one renderer for the page with and without
// script. A client that reads too slowly is cut off by the write
// deadline rather than holding gatehouse's memory.
func (db *dashboard) stream(w http.ResponseWriter, r *http.Request) {
	if db.d.History == nil {
		http.Error(w, "no history", http.StatusNotFound)
		return
	}
	win := windowNamed(r.URL.Query().Get("window"))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A browser reconnects after this long when the stream ends (a
	// gatehouse upgrade): sooner than its default of a few seconds.
	fmt.Fprint(w, "retry: 1000\n\n")
	rc.Flush()
	sentFindings, lastFindingsCheck := 0, time.Time{}
	for {
		select {
		case <-r.Context().Done():
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			return
		case <-db.d.History.Next():
		}
		check := time.Since(lastFindingsCheck) >= streamFindingsEvery
		if check {
			lastFindingsCheck = time.Now()
		}
		data := db.data(win, check)
		newFindings := check && data.Findings.gen != sentFindings
		frags, err := db.fragments(data, newFindings)
		if err != nil {
			return
		}
		if newFindings {
			sentFindings = data.Findings.gen
		}
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: update\ndata: %s\n\n", frags); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// fragments renders the page's live parts as a JSON object (one line:
// json escapes the newlines in the HTML).
func (db *dashboard) fragments(data dashboardData, withFindings bool) ([]byte, error) {
	out := map[string]string{}
	render := func(id, tmpl string, v any) error {
		var b bytes.Buffer
		if err := dashboardTmpl.ExecuteTemplate(&b, tmpl, v); err != nil {
			return fmt.Errorf("render %s: %w", tmpl, err)
		}
		out[id] = b.String()
		return nil
	}
	if err := render("banner", "banner", data); err != nil {
		return nil, err
	}
	if err := render("charts-all", "charts", data.Overview); err != nil {
		return nil, err
	}
	for _, a := range data.Apps {
		if err := render("charts-"+a.Name, "charts", a); err != nil {
			return nil, err
		}
		if err := render("instances-"+a.Name, "instances", a); err != nil {
			return nil, err
		}
	}
	if err := render("events", "events", data); err != nil {
		return nil, err
	}
	if withFindings {
		if err := render("findings", "findings", data); err != nil {
			return nil, err
		}
	}
	return json.Marshal(out)
}
