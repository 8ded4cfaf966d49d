package supervisor_test

import (
	"io"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// TestIdleClockFromReadiness: an app woken from idle by a request is
// idle for idle_timeout from when its instance became ready (and from its
// last request), not from the request that woke it: with a start longer
// than most of idle_timeout, the old clock unloaded the instance a moment
// after it was ready.
func TestIdleClockFromReadiness(t *testing.T) {
	const idle = 2 * time.Second
	cfg, app := harness.FaultApp(t, 1, "-start-delay", "1500ms")
	tune(app)
	app.IdleTimeout = config.Duration(idle)
	app.HoldTimeout = config.Duration(10 * time.Second)
	g := harness.Start(t, cfg)
	// Its ready event, not its state: on a busy machine a poll of the
	// state can miss the idle_timeout it is ready for before its unload.
	testutil.WaitFor(t, 15*time.Second, "the instance ready", func() bool { return len(g.Events("ready")) > 0 })
	testutil.WaitFor(t, 10*time.Second, "the first idle_unload", func() bool { return len(g.Events("idle_unload")) > 0 })

	c := harness.Client(15 * time.Second)
	resp, err := c.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the waking request got %d", resp.StatusCode)
	}
	testutil.WaitFor(t, 10*time.Second, "the second idle_unload", func() bool { return len(g.Events("idle_unload")) > 1 })
	var ready time.Time
	for _, e := range g.Events("ready") {
		ready = e.Time // the last: the woken instance's
	}
	unload := g.Events("idle_unload")[1].Time
	if after := unload.Sub(ready); after < idle*9/10 {
		t.Errorf("the woken instance was unloaded %v after it became ready; want idle_timeout %v from readiness", after.Round(time.Millisecond), idle)
	}
}
