package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The recent output GET /api/logs answers from is bounded however long
// gatehouse runs: every reload, recycle and scale-out starts instances
// with new ids, so keeping every instance's lines for good would grow
// without end. What is kept are the last lines of the instances that
// wrote last, each instance within its own bound.
func TestRecentLinesStayBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		per, instances  int
		linesEach       int
		wantInstances   int
		wantPerInstance int
		wantKept        string // an instance whose lines must still be there
	}{
		// A long-running gatehouse whose app was recycled thousands of
		// times: only the instances that wrote last are kept.
		{"instances replaced many times", 10, 4 * admin.MaxRecentInstances, 3, admin.MaxRecentInstances, 3, fmt.Sprintf("web-%d", 4*admin.MaxRecentInstances)},
		// A small per-instance bound is a bound too.
		{"one instance writing on", 2, 1, 50, 1, 2, "web-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recent := admin.NewRecentLines(tc.per)
			start := time.Now().Add(-time.Hour)
			at := start
			for i := 1; i <= tc.instances; i++ {
				for j := range tc.linesEach {
					at = at.Add(time.Millisecond)
					recent.Add(telemetry.LogLine{Time: at, App: "web", Instance: fmt.Sprintf("web-%d", i), Line: fmt.Sprintf("line %d", j)})
				}
			}
			srv := httptest.NewServer(admin.NewHandler(admin.Deps{Events: telemetry.NewEvents(nil, 0), Recent: recent}))
			defer srv.Close()
			c := &http.Client{Timeout: 10 * time.Second}
			defer c.CloseIdleConnections()
			resp, err := c.Get(srv.URL + "/api/logs?lines=0")
			if err != nil {
				t.Fatalf("get /api/logs: %v", err)
			}
			defer resp.Body.Close()
			var body struct{ Lines []admin.LogEntry }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
				t.Fatalf("get /api/logs: %d %v", resp.StatusCode, err)
			}
			per := map[string]int{}
			for _, l := range body.Lines {
				per[l.Instance]++
			}
			if len(per) > tc.wantInstances {
				t.Errorf("lines of %d instances kept, want at most %d", len(per), tc.wantInstances)
			}
			for id, n := range per {
				if n > tc.wantPerInstance {
					t.Errorf("%d lines of %s kept, want at most %d", n, id, tc.wantPerInstance)
				}
			}
			if per[tc.wantKept] == 0 {
				t.Errorf("the lines of %s, which wrote last, are gone", tc.wantKept)
			}
		})
	}
}
