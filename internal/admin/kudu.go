package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/procstat"
)

// ProcessInfo is one instance in GET /api/processes.
type ProcessInfo struct {
	App        string          `json:"app"`
	Instance   string          `json:"instance"`
	PID        int             `json:"pid"`
	Port       int             `json:"port"`
	State      string          `json:"state"`
	CPUPercent float64         `json:"cpu_percent"`
	Stats      *procstat.Stats `json:"stats"`
}

func (d Deps) processes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.processList())
}

// processList samples every instance now and lists its process tree; the
// answer of GET /api/processes and the dump's processes.json.
func (d Deps) processList() map[string][]ProcessInfo {
	d.Supervisor.SampleNow()
	out := []ProcessInfo{}
	for _, a := range d.Supervisor.Apps() {
		for _, in := range a.Instances() {
			st := in.Status()
			out = append(out, ProcessInfo{App: a.Name(), Instance: st.ID, PID: st.PID, Port: st.Port, State: st.State,
				CPUPercent: in.CPUPercent(), Stats: in.Stats()})
		}
	}
	return map[string][]ProcessInfo{"processes": out}
}

// Redact hides the value of a secret-looking variable; URLs keep their
// shape with the password replaced. It is config.RedactValue, the one rule
// for values that are secret by their name.
func Redact(key, value string) string { return config.RedactValue(key, value) }

func (d Deps) env(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("app")
	var apps []string
	for _, a := range d.Supervisor.Apps() {
		if name == "" || a.Name() == name {
			apps = append(apps, a.Name())
		}
	}
	if len(apps) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no app %q", name)})
		return
	}
	out := map[string]map[string]string{}
	for _, n := range apps {
		vars := map[string]string{}
		for _, kv := range d.Supervisor.App(n).Environ() {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = config.RedactValue(k, v)
		}
		out[n] = vars
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": out})
}

// logstream serves instance output and events as server-sent events, as
// they happen, filtered by app and instance, with a heartbeat so that
// proxies and clients see the stream is alive; an app that is not one is
// 404.
func (d Deps) logstream(w http.ResponseWriter, r *http.Request) {
	app, inst := r.URL.Query().Get("app"), r.URL.Query().Get("instance")
	if msg, ok := d.unknownApp(app); ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": msg})
		return
	}
	lines, cancelLines := d.Lines.Subscribe(1024)
	defer cancelLines()
	events, cancelEvents := d.Events.Subscribe(256)
	defer cancelEvents()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	beat := time.NewTicker(LogStreamHeartbeat)
	defer beat.Stop()
	match := func(a, i string) bool { return (app == "" || a == app) && (inst == "" || i == inst) }
	for {
		var typ string
		var v any
		select {
		case <-r.Context().Done():
			// The client went away, or gatehouse is stopping: say so,
			// and end the response properly so the client sees an end,
			// not a cut connection.
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			return
		case <-d.HandedOver:
			// The successor reads the instances' output from now on:
			// the client is to follow its stream, not to stop.
			fmt.Fprintf(w, "event: end\ndata: {\"reason\":%q}\n\n", EndHandover)
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			rc.Flush()
			continue
		case l, ok := <-lines:
			if !ok || !match(l.App, l.Instance) {
				continue
			}
			typ, v = "log", l
		case e, ok := <-events:
			if !ok || !match(e.App, e.Instance) {
				continue
			}
			typ, v = "event", e
		}
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b); err != nil {
			return
		}
		rc.Flush()
	}
}

// LogStreamHeartbeat is how often a log stream sends a comment when it
// has nothing else to send: a client that hears nothing for several of
// them can take the connection for lost.
const LogStreamHeartbeat = 15 * time.Second

// maxLogStreams bounds the log streams open at once; the next one is
// answered 503. Each holds one of the admin listener's connections for
// as long as it follows: without a bound, followers (gatehouse logs -f,
// dashboard tails, a script gone wrong) could hold them all, and then
// gatehouse status, the operations and the systemd watchdog's own check
// of the admin API would wait in the listener's queue.
const maxLogStreams = 32

// limitStreams serves h to at most n requests at once, and answers the
// others 503.
func limitStreams(n int32, h http.HandlerFunc) http.HandlerFunc {
	var open atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if open.Add(1) > n {
			open.Add(-1)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{
				"error": fmt.Sprintf("too many log streams open (%d); try again when one ends", n)})
			return
		}
		defer open.Add(-1)
		h(w, r)
	}
}

// EndHandover is the reason of a log stream's end event when a successor
// serves in this gatehouse's place; an end without a reason is
// gatehouse stopping, or the client leaving.
const EndHandover = "handover"

// diagnoseHandler serves GET /api/diagnose?since=1h.
func (d Deps) diagnoseHandler(w http.ResponseWriter, r *http.Request) {
	since := time.Now().Add(-time.Hour)
	if s := r.URL.Query().Get("since"); s != "" {
		t, err := parseSince(s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		since = t
	}
	rep, err := d.Diagnose(since)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
