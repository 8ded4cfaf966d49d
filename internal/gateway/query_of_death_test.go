package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestCrashingGETNotHeldForRestart: a GET that crashes the one instance
// of its app on its own is not retried on that instance's restart (where
// it would crash it again, each client waiting through restart and
// back-off): it gets 502 upstream_reset at once, and the app exits once.
func TestCrashingGETNotHeldForRestart(t *testing.T) {
	t.Parallel()
	g := startFault(t, 1, nil)
	c := newClient(t, g, 15*time.Second)
	start := time.Now()
	r := c.get("/crash")
	took := time.Since(start)
	if r.status != http.StatusBadGateway || r.cause != "upstream_reset" {
		t.Fatalf("%v; want 502 upstream_reset", r)
	}
	if took > 2*time.Second {
		t.Errorf("the 502 came after %v; want it at once, not after the instance's restart", took.Round(time.Millisecond))
	}
	// The instance restarts by itself; it must not be sent the GET again.
	testutil.WaitFor(t, 15*time.Second, "the instance restarted and ready", func() bool {
		in := g.Instances("web")
		return len(in) == 1 && in[0].State == "ready" && in[0].Restarts >= 1
	})
	if exits := g.Events("exit"); len(exits) != 1 {
		t.Errorf("%d exits; want 1 (the GET reached one instance once)", len(exits))
	}
}
