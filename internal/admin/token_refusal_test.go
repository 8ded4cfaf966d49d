package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A request without a token and one with the wrong token are both
// refused 401 with the Bearer challenge, and the answer says which of
// the two it was: the fixes differ.
func TestTokenRefusalSaysMissingOrWrong(t *testing.T) {
	t.Parallel()
	h := requireToken("right", newSessions(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, tc := range []struct {
		name, auth, want string
	}{
		{"no token", "", "admin token required"},
		{"not a bearer token", "Basic dXNlcjpwYXNz", "admin token required"},
		{"wrong token", "Bearer wrong", "admin token not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/status", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", w.Code)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="gatehouse"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			var body struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if !strings.HasPrefix(body.Error, tc.want+":") {
				t.Errorf("error %q, want it to start %q", body.Error, tc.want)
			}
		})
	}
}
