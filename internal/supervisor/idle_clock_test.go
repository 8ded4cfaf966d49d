package supervisor_test

import (
	"io"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// An app is idle for idle_timeout from when its instance became ready
// (and from its last request), and not while an instance starts: with a
// start longer than idle_timeout, neither the first start nor a wake is
// cut short by an unload, and each unload comes idle_timeout after the
// readiness before it.
func TestIdleClockFromReadiness(t *testing.T) {
	const idle = time.Second
	cfg, app := harness.FaultApp(t, 1, "-start-delay", "2s")
	tune(app)
	app.IdleTimeout = config.Duration(idle)
	app.HoldTimeout = config.Duration(10 * time.Second)
	g := harness.Start(t, cfg)
	testutil.WaitFor(t, 15*time.Second, "the first idle_unload", func() bool { return len(g.Events("idle_unload")) > 0 })
	assertUnloadAfterReady(t, g, 0, idle)

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
	assertUnloadAfterReady(t, g, 1, idle)
}

// assertUnloadAfterReady checks that the app's i-th idle_unload came at
// least idle after the ready event before it.
func assertUnloadAfterReady(t *testing.T, g *harness.Gatehouse, i int, idle time.Duration) {
	t.Helper()
	unload := g.Events("idle_unload")[i].Time
	var ready time.Time
	for _, e := range g.Events("ready") {
		if e.Time.Before(unload) {
			ready = e.Time
		}
	}
	if ready.IsZero() {
		t.Fatalf("idle_unload %d came before any instance was ready: %v", i, g.Events())
	}
	if after := unload.Sub(ready); after < idle*9/10 {
		t.Errorf("idle_unload %d came %v after the instance became ready; want idle_timeout %v from readiness", i, after.Round(time.Millisecond), idle)
	}
}

// An app's idle time runs from its last request's end: a request longer
// than idle_timeout does not leave the app idle the moment it ends, to be
// unloaded under the client's next request.
func TestIdleClockFromRequestEnd(t *testing.T) {
	const idle = 2 * time.Second
	g := startWeb(t, 1, func(a *config.App) { a.IdleTimeout = config.Duration(idle) })
	c := harness.Client(30 * time.Second)
	defer c.CloseIdleConnections()
	began := time.Now()
	resp, err := c.Get(g.URL + "/sleep?d=4s")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ended := time.Now()
	if resp.StatusCode != 200 {
		t.Fatalf("the long request got %d", resp.StatusCode)
	}
	// The first unload after the request began: one before it (a stall
	// of the test past idle_timeout after readiness) is not this one.
	var unload time.Time
	testutil.WaitFor(t, 15*time.Second, "an idle_unload after the long request", func() bool {
		for _, e := range g.Events("idle_unload") {
			if e.Time.After(began) {
				unload = e.Time
				return true
			}
		}
		return false
	})
	if after := unload.Sub(ended); after < idle*3/4 {
		t.Errorf("unloaded %v after a %v request ended; want idle_timeout %v from its end", after.Round(time.Millisecond), ended.Sub(began).Round(time.Millisecond), idle)
	}
}
