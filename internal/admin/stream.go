package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// FiringAlert is an alert firing now, for the dashboard's header.
type FiringAlert struct {
	Alert, App string
	Firing     int
}

// maxStreams bounds the live streams open at once; the next one is
// answered 503 (its page still works, without updates).
const maxStreams = 32

// update is one second's fragments for one chart window: element id →
// that element's inner HTML.
type update struct {
	seq   uint64
	frags map[string]string
	// apps are the apps shown, sent with every event (as "_apps", one
	// name per line) whether or not their fragments changed: the page
	// reloads itself when the set changes.
	apps string
}

// stream serves GET /api/dashboard/stream: after every sample of the
// history (once a second), one server-sent event "update" whose data is a
// JSON object from element id to that element's new inner HTML, holding
// only the fragments that changed since this client's last event: the
// summary at the top, the charts, the route rules' refusals, the
// instance tables, the header, the events, and the findings when new
// ones were made (a page load, "run again", or an event since the last
// ones: see refreshOnEvents). The
// server renders every fragment (one renderer for the page with and
// without script), once per second and window for all clients. A client
// that reads too slowly is cut off by the write deadline rather than
// holding gatehouse's memory.
func (db *dashboard) stream(w http.ResponseWriter, r *http.Request) {
	if db.d.History == nil {
		http.Error(w, "no history", http.StatusNotFound)
		return
	}
	if db.streams.Add(1) > maxStreams {
		db.streams.Add(-1)
		http.Error(w, fmt.Sprintf("too many dashboard streams open (%d)", maxStreams), http.StatusServiceUnavailable)
		return
	}
	defer db.streams.Add(-1)
	win := windowNamed(r.URL.Query().Get("window"))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A browser reconnects this long after the stream ends (a gatehouse
	// upgrade, or a stop): sooner than its default of a few seconds.
	fmt.Fprint(w, "retry: 1000\n\n")
	rc.Flush()
	sent := map[string]string{}
	var buf bytes.Buffer
	for {
		select {
		case <-r.Context().Done():
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			return
		case <-db.d.History.Next():
		}
		if db.d.History.Stopped() {
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			return
		}
		db.refreshOnEvents()
		u, err := db.update(win)
		if err != nil {
			return
		}
		changed := map[string]string{"_apps": u.apps}
		for id, html := range u.frags {
			if sent[id] != html {
				changed[id] = html
				sent[id] = html
			}
		}
		buf.Reset()
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // the values are HTML; \u003c would only grow them
		if err := enc.Encode(changed); err != nil {
			return
		}
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		// Encode ends the JSON with a newline: one blank line more ends
		// the event.
		if _, err := fmt.Fprintf(w, "event: update\ndata: %s\n", buf.Bytes()); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// update returns the fragments of the history's latest sample for win,
// rendering them if no stream did yet.
func (db *dashboard) update(win window) (*update, error) {
	seq := db.d.History.Seq()
	db.mu.Lock()
	defer db.mu.Unlock()
	if u := db.updates[win.Name]; u != nil && u.seq == seq {
		return u, nil
	}
	data := db.data(win)
	data.Findings = db.cachedFindings().markPast(data.Apps)
	frags, err := db.fragments(data)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(data.Apps))
	for i, a := range data.Apps {
		names[i] = a.Name
	}
	u := &update{seq: seq, frags: frags, apps: strings.Join(names, "\n")}
	db.updates[win.Name] = u
	return u, nil
}

// fragments renders the page's live parts.
func (db *dashboard) fragments(data dashboardData) (map[string]string, error) {
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
	if err := render("summary", "summary", data); err != nil {
		return nil, err
	}
	if err := render("charts-"+overviewID, "charts", data.Overview); err != nil {
		return nil, err
	}
	for _, a := range data.Apps {
		if err := render("charts-"+a.Name, "charts", a); err != nil {
			return nil, err
		}
		if err := render("instances-"+a.Name, "instances", a); err != nil {
			return nil, err
		}
		if err := render("rules-"+a.Name, "rules", a); err != nil {
			return nil, err
		}
	}
	if err := render("events", "events", data); err != nil {
		return nil, err
	}
	if err := render("findings", "findings", data); err != nil {
		return nil, err
	}
	return out, nil
}
