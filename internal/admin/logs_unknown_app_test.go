package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The output of an app that is not one of gatehouse's is refused 404,
// naming the apps there are, as every other route that takes an app
// does: an empty answer would hide a misspelt name (gatehouse logs wbe
// printed nothing and exited 0), and a stream would wait for lines that
// never come (gatehouse logs -f wbe waited for good).
func TestLogsOfAnUnknownAppAreNotFound(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Apps = map[string]*config.App{"web": config.NewApp("web")}
	cfg.Order = []string{"web"}
	h := admin.NewHandler(admin.Deps{
		Supervisor: supervisor.New(cfg, supervisor.Options{}),
		Events:     telemetry.NewEvents(nil, 0),
		Lines:      telemetry.NewLines(),
		Recent:     admin.NewRecentLines(0),
	})
	for _, tc := range []struct {
		name, path string
		want       int
		wantError  string
	}{
		{"logs of an unknown app", "/api/logs?app=wbe", http.StatusNotFound, `no app "wbe" (apps: web)`},
		{"log stream of an unknown app", "/api/logstream?app=wbe", http.StatusNotFound, `no app "wbe" (apps: web)`},
		{"logs of the app", "/api/logs?app=web", http.StatusOK, ""},
		{"logs of every app", "/api/logs", http.StatusOK, ""},
		{"log stream of the app", "/api/logstream?app=web", http.StatusOK, ""},
		// An instance that is gone may still have lines kept.
		{"logs of an instance that is gone", "/api/logs?instance=web-9", http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A client already gone: the stream answers and ends at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "http://127.0.0.1"+tc.path, nil))
			if w.Code != tc.want {
				t.Fatalf("GET %s: status %d, want %d; body %s", tc.path, w.Code, tc.want, w.Body)
			}
			if tc.wantError == "" {
				return
			}
			if got := apiError(t, w); got != tc.wantError {
				t.Errorf("GET %s: error %q, want %q", tc.path, got, tc.wantError)
			}
		})
	}
}
