package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/history"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Instances is what the admin API needs of the supervisor: the status it
// reports, a fresh sample of the processes before listing them,
// and the apps with their instances and environment.
type Instances interface {
	Status() []supervisor.AppStatus
	SampleNow()
	Apps() []*supervisor.App
	App(name string) *supervisor.App
}

// Deps is what the admin API reads.
type Deps struct {
	Supervisor Instances
	Events     *telemetry.Events
	// Writers reports the health of the log writers.
	Writers func() map[string]telemetry.WriterStats
	// Metrics serves /metrics; nil disables it.
	Metrics http.Handler
	// Ops starts reloads, scales, restarts and recycles; nil disables them.
	Ops Ops
	// Lines is the live instance output, for the log stream.
	Lines *telemetry.Lines
	// Recent is the instances' recent output, for GET /api/logs; nil
	// disables it.
	Recent *RecentLines
	// Diagnose runs diagnose over the evidence since a time.
	Diagnose func(since time.Time) (diagnose.Report, error)
	// Config is the running config; it leaves the process only as
	// Config.Redacted() (the dump's config.json).
	Config *config.Config
	// DataDir holds the logs a dump includes.
	DataDir string
	// Token, if set, is required on every route but /healthz.
	Token string
	// Certificates reports the HTTPS listener's certificates; nil when
	// there is none.
	Certificates func() []certs.Status
	// Health answers /livez and /readyz, with no token needed; nil
	// leaves them out.
	Health Health
	// History is the last hour of samples the dashboard charts; nil
	// leaves the charts empty and the live stream out.
	History *history.Recorder
	// Alerts lists the alerts firing now; nil when there is no alerts:
	// block.
	Alerts func() []FiringAlert
	// Dumps takes and keeps process dumps; nil leaves /api/dumps out.
	Dumps Dumps
	// HandedOver is closed once a successor serves in this gatehouse's
	// place (gatehouse upgrade): the log streams end then, saying so,
	// for their clients to follow the successor's. nil: never.
	HandedOver <-chan struct{}
}

// StatusResponse is GET /api/status.
type StatusResponse struct {
	Apps []supervisor.AppStatus `json:"apps"`
	// Logs reports log writers that dropped or failed lines.
	Logs map[string]telemetry.WriterStats `json:"logs,omitempty"`
	// Certificates are the HTTPS listener's, when it has a tls: block.
	Certificates []certs.Status `json:"certificates,omitempty"`
	// Draining: gatehouse is out of rotation (gatehouse drain, or
	// stopping): /readyz fails while requests are still served.
	Draining bool `json:"draining,omitempty"`
}

// NewHandler returns the admin API's handler.
func NewHandler(d Deps) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		resp := StatusResponse{Apps: d.Supervisor.Status()}
		if d.Writers != nil {
			resp.Logs = d.Writers()
		}
		if d.Certificates != nil {
			resp.Certificates = d.Certificates()
		}
		if d.Health != nil {
			resp.Draining = d.Health.Draining()
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		var since time.Time
		if s := r.URL.Query().Get("since"); s != "" {
			t, err := parseSince(s)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			since = t
		}
		evs := d.Events.Since(since)
		if evs == nil {
			evs = []telemetry.Event{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	})
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics)
	}
	if d.Ops != nil {
		registerOps(mux, d.Ops)
	}
	mux.HandleFunc("GET /api/processes", d.processes)
	mux.HandleFunc("GET /api/env", d.env)
	if d.Lines != nil {
		mux.HandleFunc("GET /api/logstream", limitStreams(maxLogStreams, d.logstream))
	}
	if d.Recent != nil {
		mux.HandleFunc("GET /api/logs", d.logs)
	}
	if d.Diagnose != nil {
		mux.HandleFunc("GET /api/diagnose", d.diagnoseHandler)
	}
	mux.HandleFunc("GET /api/dump", d.dump)
	registerExec(mux, d)
	registerDumps(mux, d)
	var sess *sessions
	if d.Token != "" {
		sess = newSessions()
		registerLogin(mux, d.Token, sess)
	}
	db := newDashboard(d, sess)
	mux.HandleFunc("GET /{$}", db.page)
	mux.HandleFunc("GET /api/dashboard/stream", db.stream)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	mux.HandleFunc("GET /favicon.ico", favicon)
	registerPprof(mux)
	// Operations are POSTs: refuse them from a browser on another origin,
	// or any web page could restart the app through a loopback admin
	// listener that has no token.
	var h http.Handler = http.NewCrossOriginProtection().Handler(mux)
	if d.Token != "" {
		h = requireToken(d.Token, sess, h)
	} else {
		h = loopbackHostOnly(h)
	}
	if d.Health != nil {
		h = withProbes(d.Health, h)
	}
	return h
}

// parseSince accepts an RFC 3339 time or a duration back from now ("1h").
// A negative duration is refused: it would name a time to come, and the
// empty answer would read as "nothing happened".
func parseSince(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("since %q: a duration back from now must not be negative", s)
		}
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %q: want a duration back from now (1h) or an RFC 3339 time: %w", s, err)
	}
	return t, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
