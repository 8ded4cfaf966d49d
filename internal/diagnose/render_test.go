package diagnose_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Render's output for people, for a fixed report. The times are built in
// the local zone, which Render prints in, so the golden file holds on any
// machine.
func TestRenderGolden(t *testing.T) {
	since := time.Date(2026, 6, 15, 10, 0, 0, 0, time.Local)
	rep := diagnose.Report{
		Since: since, Until: since.Add(time.Hour), Requests: 1200, Errors: 131,
		Findings: []diagnose.Finding{
			{
				ID: "port_mismatch", Severity: diagnose.Critical, App: "web", Instance: "web-1",
				Title: "web-1 listens on 127.0.0.1:3000, but was given PORT=41873",
				Evidence: []string{
					"process 4242 listens on 127.0.0.1:3000 (from /proc)",
					"gatehouse gave it PORT=41873 and WEBSITES_PORT=41873, and probes that port: starting: connection refused on port 41873",
					"web-1 is starting",
				},
				Fix:              "bind to the PORT environment variable instead of a fixed port",
				RequestsAffected: 120, SampleRequestIDs: []string{"a1", "a2"},
			},
			{
				ID: "app_errors", Severity: diagnose.Warning, App: "web",
				Title:            "the app itself answered 5xx 1 time",
				Evidence:         []string{"/status 500: 1 response"},
				Fix:              "these errors come from the app's code",
				RequestsAffected: 1,
			},
			{
				ID: "cold_start", Severity: diagnose.Info, App: "web",
				Title:    "web woke from idle 1 time; requests waited up to 1.2s",
				Evidence: []string{"idle_timeout 20m0s unloads the app; the next request starts it and waits"},
				Fix:      "set idle_timeout: 0 to keep the app always on, or make its startup faster",
			},
		},
	}
	var got bytes.Buffer
	diagnose.Render(&got, rep)
	testutil.Golden(t, filepath.Join("testdata", "render.golden"), got.String())

	got.Reset()
	diagnose.Render(&got, diagnose.Report{Since: since, Until: since.Add(10 * time.Minute), Requests: 5})
	testutil.Golden(t, filepath.Join("testdata", "render_empty.golden"), got.String())

	// A group names its instances; past findings come last, apart.
	got.Reset()
	diagnose.Render(&got, diagnose.Report{
		Since: since, Until: since.Add(time.Hour), Requests: 40, Errors: 12,
		Findings: []diagnose.Finding{
			{
				ID: "probe_rejected", Severity: diagnose.Critical, App: "site", Instances: []string{"site-1", "site-2"},
				Title:            "2 instances of site (site-1 and site-2) have their health probe rejected",
				Evidence:         []string{"the health probe of site-1 is rejected: 403 Forbidden", "the health probe of site-2 is rejected: 403 Forbidden"},
				Fix:              "the probe path /healthz needs login",
				RequestsAffected: 12,
			},
			{
				ID: "restart_loop", Severity: diagnose.Critical, App: "web", Instance: "web-1", Past: true,
				Title:    "web-1 keeps dying soon after it starts (3 exits)",
				Evidence: []string{"past: web is no longer configured (renamed or removed)", "3 exits between 10:01:00 and 10:01:07"},
				Fix:      "the app exits during or right after startup",
			},
		},
	})
	testutil.Golden(t, filepath.Join("testdata", "render_past.golden"), got.String())
}
