package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/dumps"
	"github.com/gatehouse/gatehouse/internal/procdump"
)

// Dumps is what the admin API needs of the process dumps: take one, list
// them, open and remove one.
type Dumps interface {
	Take(ctx context.Context, r dumps.Request) (dumps.Meta, error)
	List() ([]dumps.Meta, error)
	Open(name string) (*os.File, dumps.Meta, error)
	Remove(name, by string) error
}

// DumpsResponse is GET /api/dumps.
type DumpsResponse struct {
	Dumps []dumps.Meta `json:"dumps"`
}

func registerDumps(mux *http.ServeMux, d Deps) {
	if d.Dumps == nil {
		return
	}
	x := dumpAPI{d.Dumps, who(d)}
	mux.HandleFunc("POST /api/instances/{id}/dump", func(w http.ResponseWriter, r *http.Request) {
		x.take(w, r, "", r.PathValue("id"))
	})
	mux.HandleFunc("POST /api/apps/{app}/dump", func(w http.ResponseWriter, r *http.Request) {
		x.take(w, r, r.PathValue("app"), "")
	})
	mux.HandleFunc("GET /api/dumps", x.list)
	mux.HandleFunc("GET /api/dumps/{name}", x.download)
	mux.HandleFunc("DELETE /api/dumps/{name}", x.remove)
}

type dumpAPI struct {
	d   Dumps
	who string
}

// who names an admin client in events: with a token only its holder can
// be one.
func who(d Deps) string {
	if d.Token != "" {
		return "the admin token holder"
	}
	return "a loopback admin client"
}

// take serves POST …/dump?kind=core|stacks|heap[&allow_exit=true]; the
// form's body is read too, so the dashboard's buttons work without
// script.
func (x dumpAPI) take(w http.ResponseWriter, r *http.Request, app, id string) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	kind := r.FormValue("kind")
	if kind == "" {
		kind = string(procdump.KindStacks)
	}
	allowExit := false
	if v := r.FormValue("allow_exit"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, OpLine{Error: "allow_exit must be true or false"})
			return
		}
		allowExit = b
	}
	// A client that leaves does not cut the dump short: the process may
	// be paused already, and the dump is kept for --list and --get.
	ctx := context.WithoutCancel(r.Context())
	m, err := x.d.Take(ctx, dumps.Request{App: app, Instance: id, Kind: procdump.Kind(kind), AllowExit: allowExit,
		By: fmt.Sprintf("%s (%s)", x.who, r.RemoteAddr)})
	if err != nil {
		msg := err.Error()
		var unsupported *procdump.UnsupportedError
		if errors.As(err, &unsupported) && unsupported.NeedsAllowExit {
			msg += "; allow_exit=true (gatehouse dump --allow-exit) takes them, and gatehouse starts the instance again; kind=core (--kind core) takes a core without ending it"
		}
		writeJSON(w, dumpStatus(err), OpLine{Error: msg})
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// dumpStatus is the HTTP status of a dump that failed, by its error's
// type.
func dumpStatus(err error) int {
	var refused *dumps.Error
	var missing *procdump.MissingToolError
	var unsupported *procdump.UnsupportedError
	var noSpace *procdump.NoSpaceError
	switch {
	case errors.As(err, &noSpace):
		return http.StatusInsufficientStorage
	case errors.As(err, &refused):
		return refused.Status
	case errors.As(err, &missing), errors.As(err, &unsupported):
		return http.StatusUnprocessableEntity
	case errors.Is(err, procdump.ErrExited):
		return http.StatusGone
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func (x dumpAPI) list(w http.ResponseWriter, r *http.Request) {
	ds, err := x.d.List()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, OpLine{Error: err.Error()})
		return
	}
	if ds == nil {
		ds = []dumps.Meta{}
	}
	writeJSON(w, http.StatusOK, DumpsResponse{Dumps: ds})
}

func (x dumpAPI) download(w http.ResponseWriter, r *http.Request) {
	f, m, err := x.d.Open(r.PathValue("name"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, OpLine{Error: err.Error()})
		return
	}
	defer f.Close()
	ct := "application/octet-stream"
	if strings.HasSuffix(m.Name, ".txt") {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", `attachment; filename="`+m.Name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", m.Created, f)
}

func (x dumpAPI) remove(w http.ResponseWriter, r *http.Request) {
	err := x.d.Remove(r.PathValue("name"), fmt.Sprintf("%s (%s)", x.who, r.RemoteAddr))
	switch {
	case errors.Is(err, dumps.ErrNotFound):
		writeJSON(w, http.StatusNotFound, OpLine{Error: err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, OpLine{Error: err.Error()})
	default:
		writeJSON(w, http.StatusOK, OpLine{OK: true})
	}
}
