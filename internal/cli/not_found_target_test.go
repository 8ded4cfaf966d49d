package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/cli"
)

// restart, exec and dump take a bare name for an app, else an instance
// of that id. A name that is neither is an error that names the apps
// there are, as the app's answer does, not only "no instance", which
// says nothing of the app that was likely misspelt.
func TestANameThatIsNeitherAppNorInstanceNamesTheApps(t *testing.T) {
	t.Chdir(t.TempDir()) // no gatehouse.yaml: --admin names the target
	t.Setenv("GATEHOUSE_ADMIN_TOKEN", "")
	notFound := func(w http.ResponseWriter, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(admin.OpLine{Error: msg})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/apps/{app}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		notFound(w, fmt.Sprintf("no app %q (apps: web)", r.PathValue("app")))
	})
	mux.HandleFunc("POST /api/instances/{id}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		notFound(w, fmt.Sprintf("no instance %q", r.PathValue("id")))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()
	for _, args := range [][]string{
		{"restart", "--admin", srv.URL, "wbe"},
		{"exec", "--admin", srv.URL, "wbe", "--", "true"},
		{"dump", "--admin", srv.URL, "wbe"},
	} {
		t.Run(args[0], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli.Main(args, &stdout, &stderr)
			if code != 1 {
				t.Errorf("%s exited %d, want 1; stderr %s", strings.Join(args, " "), code, stderr.String())
			}
			if want := `no app "wbe" (apps: web)`; !strings.Contains(stderr.String(), want) {
				t.Errorf("%s said %q, want it to say %q", strings.Join(args, " "), stderr.String(), want)
			}
		})
	}
}
