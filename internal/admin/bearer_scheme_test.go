package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The Bearer scheme's name is case-insensitive (RFC 9110 section 11.1):
// the right token is accepted however the client writes it, and only in
// the Authorization header of that scheme.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	h := requireToken("right", newSessions(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"Bearer", "Bearer right", http.StatusOK},
		{"bearer", "bearer right", http.StatusOK},
		{"BEARER", "BEARER right", http.StatusOK},
		{"two spaces", "Bearer  right", http.StatusOK},
		{"wrong token", "bearer wrong", http.StatusUnauthorized},
		{"another scheme", "Basic right", http.StatusUnauthorized},
		{"no token", "Bearer", http.StatusUnauthorized},
		{"the token alone", "right", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/status", nil)
			r.Header.Set("Authorization", tc.auth)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("Authorization: %s: status %d, want %d", tc.auth, w.Code, tc.want)
			}
		})
	}
	// A token in the query is not one: it would be written to access
	// logs and browser histories.
	r := httptest.NewRequest("GET", "/api/status?token=right&access_token=right", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("a token in the query: status %d, want 401", w.Code)
	}
}
