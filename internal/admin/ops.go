package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// Ops are the operations the admin API can start.
type Ops interface {
	Reload(ctx context.Context, app string, p supervisor.Progress) error
	// Upgrade replaces the gatehouse process with a new one started from
	// the same executable path, keeping the sockets and the apps; it
	// returns the new process's pid. timeout bounds how long the new one
	// has to become ready; 0 means the server's default.
	Upgrade(ctx context.Context, timeout time.Duration, p supervisor.Progress) (int, error)
	App(name string) (*supervisor.App, error)
	Instance(id string) (*supervisor.App, error)
	// Drain takes gatehouse out of a load balancer's rotation (/readyz
	// fails, requests are still served) or, on false, puts it back.
	Drain(ctx context.Context, on bool, p supervisor.Progress) error
}

// OpLine is one line of an operation's NDJSON stream: progress lines, then
// one final line with OK or Error.
type OpLine struct {
	Progress string `json:"progress,omitempty"`
	OK       bool   `json:"ok,omitempty"`
	Error    string `json:"error,omitempty"`
}

func registerOps(mux *http.ServeMux, ops Ops) {
	mux.HandleFunc("POST /api/upgrade", func(w http.ResponseWriter, r *http.Request) {
		var timeout time.Duration
		if v := r.URL.Query().Get("timeout"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				writeJSON(w, http.StatusBadRequest, OpLine{Error: "upgrade: ?timeout= needs a positive duration such as 30s"})
				return
			}
			timeout = d
		}
		streamOp(w, r, func(ctx context.Context, p supervisor.Progress) error {
			pid, err := ops.Upgrade(ctx, timeout, p)
			if err == nil {
				p("upgraded: gatehouse pid %d serves", pid)
			}
			return err
		})
	})
	mux.HandleFunc("POST /api/drain", func(w http.ResponseWriter, r *http.Request) {
		streamOp(w, r, func(ctx context.Context, p supervisor.Progress) error { return ops.Drain(ctx, true, p) })
	})
	mux.HandleFunc("POST /api/undrain", func(w http.ResponseWriter, r *http.Request) {
		streamOp(w, r, func(ctx context.Context, p supervisor.Progress) error { return ops.Drain(ctx, false, p) })
	})
	mux.HandleFunc("POST /api/reload", func(w http.ResponseWriter, r *http.Request) {
		streamOp(w, r, func(ctx context.Context, p supervisor.Progress) error { return ops.Reload(ctx, "", p) })
	})
	mux.HandleFunc("POST /api/apps/{app}/reload", func(w http.ResponseWriter, r *http.Request) {
		streamOp(w, r, func(ctx context.Context, p supervisor.Progress) error {
			return ops.Reload(ctx, r.PathValue("app"), p)
		})
	})
	mux.HandleFunc("POST /api/apps/{app}/scale", func(w http.ResponseWriter, r *http.Request) {
		// The query, or a form's body (the dashboard without script).
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		n, err := strconv.Atoi(r.FormValue("instances"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, OpLine{Error: "scale needs ?instances=N"})
			return
		}
		withApp(w, r, ops, func(ctx context.Context, a *supervisor.App, p supervisor.Progress) error { return a.Scale(ctx, n, p) })
	})
	// stop takes an app down without removing it (scale to 0, drain
	// first); start brings back the instances it had.
	mux.HandleFunc("POST /api/apps/{app}/stop", func(w http.ResponseWriter, r *http.Request) {
		withApp(w, r, ops, func(ctx context.Context, a *supervisor.App, p supervisor.Progress) error { return a.Stop(ctx, p) })
	})
	mux.HandleFunc("POST /api/apps/{app}/start", func(w http.ResponseWriter, r *http.Request) {
		withApp(w, r, ops, func(ctx context.Context, a *supervisor.App, p supervisor.Progress) error { return a.Start(ctx, p) })
	})
	mux.HandleFunc("POST /api/apps/{app}/restart", func(w http.ResponseWriter, r *http.Request) {
		withApp(w, r, ops, func(ctx context.Context, a *supervisor.App, p supervisor.Progress) error { return a.Restart(ctx, p) })
	})
	mux.HandleFunc("POST /api/instances/{id}/recycle", func(w http.ResponseWriter, r *http.Request) {
		withInstance(w, r, ops, func(ctx context.Context, a *supervisor.App, id string, p supervisor.Progress) error {
			return a.Recycle(ctx, id, "requested through the admin API", p)
		})
	})
	mux.HandleFunc("POST /api/instances/{id}/restart", func(w http.ResponseWriter, r *http.Request) {
		withInstance(w, r, ops, func(ctx context.Context, a *supervisor.App, id string, p supervisor.Progress) error {
			return a.RestartInstance(ctx, id, p)
		})
	})
}

func withApp(w http.ResponseWriter, r *http.Request, ops Ops, f func(context.Context, *supervisor.App, supervisor.Progress) error) {
	a, err := ops.App(r.PathValue("app"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, OpLine{Error: err.Error()})
		return
	}
	streamOp(w, r, func(ctx context.Context, p supervisor.Progress) error { return f(ctx, a, p) })
}

func withInstance(w http.ResponseWriter, r *http.Request, ops Ops, f func(context.Context, *supervisor.App, string, supervisor.Progress) error) {
	id := r.PathValue("id")
	a, err := ops.Instance(id)
	if err != nil {
		writeJSON(w, http.StatusNotFound, OpLine{Error: err.Error()})
		return
	}
	streamOp(w, r, func(ctx context.Context, p supervisor.Progress) error { return f(ctx, a, id, p) })
}

// streamOp runs an operation and streams its progress as NDJSON. The
// operation is not cancelled when the client goes away: a reload stopped
// halfway because a terminal closed would be worse than one that finishes.
func streamOp(w http.ResponseWriter, r *http.Request, op func(context.Context, supervisor.Progress) error) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The head goes at once: the client bounds its wait for it (see
	// Client.Op), and an operation may take a while to say anything.
	rc.Flush()
	enc := json.NewEncoder(w)
	// Progress may be reported from several goroutines at once (a scale
	// down stops instances in parallel); the response writer is not safe
	// for concurrent use.
	var mu sync.Mutex
	send := func(l OpLine) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(l)
		rc.Flush()
	}
	err := op(context.WithoutCancel(r.Context()), func(format string, args ...any) {
		send(OpLine{Progress: fmt.Sprintf(format, args...)})
	})
	if err != nil {
		send(OpLine{Error: err.Error()})
		return
	}
	send(OpLine{OK: true})
}
