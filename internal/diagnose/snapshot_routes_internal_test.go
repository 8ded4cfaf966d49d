package diagnose

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The snapshot records each route's rules in effect, the route's own
// or else the app's, as the edge findings name them in their fixes.
func TestSnapshotRoutesCarryTheRulesInEffect(t *testing.T) {
	app := &config.App{
		RateLimit:   &config.RequestRateLimit{Rate: "10/s", Burst: 20},
		ForwardAuth: &config.ForwardAuth{URL: "http://127.0.0.1:9091/verify", Timeout: config.Duration(2 * time.Second)},
		Routes: []config.Route{
			{Match: "/"},
			{Match: "/api/", RateLimit: &config.RequestRateLimit{Rate: "600/m", Burst: 5, Key: "user"}},
			{Match: "/public/", RateLimit: &config.RequestRateLimit{Off: true}, ForwardAuth: &config.ForwardAuth{Off: true}},
		},
	}
	want := []RouteSnap{
		{Match: "/", RateLimit: "10/s burst 20 key client_ip", ForwardAuthURL: "http://127.0.0.1:9091/verify", ForwardAuthTimeout: 2 * time.Second},
		{Match: "/api/", RateLimit: "600/m burst 5 key user", ForwardAuthURL: "http://127.0.0.1:9091/verify", ForwardAuthTimeout: 2 * time.Second},
		{Match: "/public/"},
	}
	if d := cmp.Diff(want, routeSnaps(app)); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}
}
