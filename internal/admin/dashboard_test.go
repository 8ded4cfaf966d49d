package admin_test

import (
	"net/http"
	"regexp"
	"time"

	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestDashboard checks that the page a person opens on the admin address
// shows every instance with its state and probe detail, the findings of
// the last hour, recent events and the charts, all rendered on the server
// (the tables need no script), with the answers its route rules gave,
// that it refreshes itself without script, and that it loads nothing from
// elsewhere.
func TestDashboard(t *testing.T) {
	t.Parallel()
	g := start(t, 2, withDeniedRoute)
	c := client(t)
	// An app error gives the findings section something to show.
	resp, err := c.Get(g.URL + "/status?code=500")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	getBody(t, c, g.URL+"/private/x", http.StatusForbidden)
	// The charts show a second once it has ended.
	var body string
	testutil.WaitFor(t, 10*time.Second, "the 500 on the 5xx chart, the 403 among the rules' answers", func() bool {
		body = string(getBody(t, c, g.AdminURL+"/", http.StatusOK))
		return strings.Contains(body, `data-series="app_error"`) && strings.Contains(body, `data-cause="access_denied"`)
	})
	for _, want := range []string{
		`<noscript><meta http-equiv="refresh"`,
		`id="_all-rps"`, `id="web-errors"`, `data-series="app_error"`, `id="web-cpu"`, `<tr data-instance="web-1">`,
		"web-1", "web-2", `class="state ready"`, "200 OK in",
		"app_errors", "/status 500: 1 response",
		"ready in",
		`<div id="rules-web"><p class="rules" data-rules>Answered by route rules in the last hour:`,
		`<span data-cause="access_denied"><b>1</b> access_denied</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	for _, src := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if !strings.HasPrefix(src[1], "/") || strings.HasPrefix(src[1], "//") {
			t.Errorf("dashboard refers to %q, not to itself", src[1])
		}
	}
	// Its one script is its own, from /static/ (the CSP allows no other).
	if n := strings.Count(body, "<script"); n != 1 || !strings.Contains(body, `<script src="/static/dashboard.js"`) {
		t.Errorf("dashboard has %d scripts; want only /static/dashboard.js", n)
	}
	getBody(t, c, g.AdminURL+"/nope", http.StatusNotFound)
}

// withDeniedRoute gives web a route that refuses loopback clients, the
// tests' own: a request to /private/ is a 403 access_denied.
func withDeniedRoute(cfg *config.Config) {
	app := cfg.Apps["web"]
	app.Routes = append(app.Routes, config.Route{Match: "/private/", Deny: []string{"127.0.0.0/8", "::1"}})
}
