package diagnose_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
)

// Requests that were slow because their client was (a trickled body, a
// head that never ended) or that never reached the app are not the app's
// slow path: a flood of them raises no slow_requests finding.
func TestSlowRequestsLeaveOutClientSide(t *testing.T) {
	now := time.Now()
	for _, c := range []string{"client_closed", "client_timeout", "bad_request", "request_too_large", "headers_too_large"} {
		t.Run(c, func(t *testing.T) {
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now}
			for i := range 50 {
				ev.Access = append(ev.Access, diagnose.Access{
					Time: now.Add(-time.Minute), RequestID: fmt.Sprint(i), App: "web", Method: "POST", Path: "/upload",
					Status: 408, DurationMS: 60_000, Cause: c,
				})
			}
			for _, f := range diagnose.Run(ev).Findings {
				if f.ID == "slow_requests" {
					t.Errorf("%s requests gave a slow_requests finding: %s %v", c, f.Title, f.Evidence)
				}
			}
		})
	}
	// And the same requests with no cause (the app's own slowness) do.
	ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now}
	for i := range 50 {
		ev.Access = append(ev.Access, diagnose.Access{Time: now.Add(-time.Minute), RequestID: fmt.Sprint(i), App: "web",
			Method: "POST", Path: "/upload", Status: 200, DurationMS: 60_000, UpstreamMS: 60_000, Attempts: 1})
	}
	found := false
	for _, f := range diagnose.Run(ev).Findings {
		found = found || f.ID == "slow_requests"
	}
	if !found {
		t.Error("slow requests of the app's own raised no slow_requests finding: the test proves nothing")
	}
}
