package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// since= is a duration back from now or a time: a negative duration, a
// time to come, is refused 400 by every route that takes it, rather
// than answered with nothing, which reads as nothing having happened.
func TestSinceRefusesANegativeDuration(t *testing.T) {
	t.Parallel()
	h := admin.NewHandler(admin.Deps{
		Events:   telemetry.NewEvents(nil, 0),
		Recent:   admin.NewRecentLines(0),
		Diagnose: func(time.Time) (diagnose.Report, error) { return diagnose.Report{}, nil },
	})
	for _, tc := range []struct {
		name, path string
		want       int
		wantError  string
	}{
		{"events, negative", "/api/events?since=-1h", http.StatusBadRequest, "must not be negative"},
		{"logs, negative", "/api/logs?since=-10m", http.StatusBadRequest, "must not be negative"},
		{"diagnose, negative", "/api/diagnose?since=-1h", http.StatusBadRequest, "must not be negative"},
		{"events, neither", "/api/events?since=yesterday", http.StatusBadRequest, `since "yesterday"`},
		{"diagnose, neither", "/api/diagnose?since=yesterday", http.StatusBadRequest, `since "yesterday"`},
		{"events, a duration", "/api/events?since=1h", http.StatusOK, ""},
		{"logs, zero", "/api/logs?since=0s", http.StatusOK, ""},
		{"diagnose, a time", "/api/diagnose?since=2026-12-05T10:00:00Z", http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1"+tc.path, nil))
			if w.Code != tc.want {
				t.Fatalf("GET %s: status %d, want %d; body %s", tc.path, w.Code, tc.want, w.Body)
			}
			if tc.wantError == "" {
				return
			}
			if got := apiError(t, w); !strings.Contains(got, tc.wantError) {
				t.Errorf("GET %s: error %q, want it to say %q", tc.path, got, tc.wantError)
			}
		})
	}
}

// apiError is the error an admin API answer names in its JSON body.
func apiError(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return body.Error
}
