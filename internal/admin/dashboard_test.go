package admin_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDashboard checks that the page a person opens on the admin address
// shows every instance with its state and probe detail, the findings of
// the last hour, and recent events, and that it refreshes itself.
func TestDashboard(t *testing.T) {
	g := start(t, 2, nil)
	c := client(t)
	// An app error gives the findings section something to show.
	resp, err := c.Get(g.URL + "/status?code=500")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	body := string(getBody(t, c, g.AdminURL+"/", http.StatusOK))
	for _, want := range []string{
		`<meta http-equiv="refresh"`,
		"web-1", "web-2", `class="state ready"`, "200 OK in",
		"app_errors", "/status 500: 1 response",
		"ready in",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	// Its one script is its own, from /static/ (the CSP allows no other).
	if n := strings.Count(body, "<script"); n != 1 || !strings.Contains(body, `<script src="/static/dashboard.js"`) || strings.Contains(body, "cdn") {
		t.Errorf("dashboard loads %d scripts or external resources; want only /static/dashboard.js", n)
	}
	getBody(t, c, g.AdminURL+"/nope", http.StatusNotFound)
}
