package supervisor_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// With idle_timeout the app's processes are stopped after it idles,
// and the next requests (a concurrent burst of GETs and POSTs) are held
// through the cold start and all succeed; the events show idle_unload, then
// wake.
func TestIdleUnloadAndWake(t *testing.T) {
	g := startWeb(t, 2, func(a *config.App) {
		a.IdleTimeout = config.Duration(2 * time.Second)
	}, "-start-delay", "300ms")
	before := snapshot(g)

	// Traffic keeps it loaded, for longer than idle_timeout: deliberately
	// a while, as only time without traffic unloads it.
	l := startLoad(t, g.URL, 2)
	time.Sleep(2500 * time.Millisecond)
	// Taken before the load stops, so at or before its last request's
	// end: a stall of the test after that end cannot shorten the idle
	// time measured below, and an early unload still shows.
	stoppedAt := time.Now()
	l.requireNoFailures(t, "traffic before idling")
	if len(g.Events("idle_unload")) != 0 {
		t.Fatalf("unloaded while requests were flowing:\n%s", describeEvents(g.Events()))
	}

	testutil.WaitFor(t, 8*time.Second, "an idle_unload event", func() bool { return len(g.Events("idle_unload")) > 0 })
	testutil.WaitFor(t, 8*time.Second, "no running instance", func() bool {
		for _, in := range g.Instances("web") {
			if in.State != "stopped" {
				return false
			}
		}
		return true
	})
	unload := g.Events("idle_unload")[0]
	if idled := unload.Time.Sub(stoppedAt); idled < 1500*time.Millisecond {
		t.Errorf("unloaded %v after the load stopped; want about idle_timeout (2s)", idled)
	}
	for id, pid := range before {
		if testutil.ProcessAlive(pid) {
			t.Errorf("%s (pid %d) still running after the idle unload", id, pid)
		}
	}
	if n := len(g.Events("wake")); n != 0 {
		t.Fatalf("woke up with no request (%d wake events)", n)
	}

	// A burst of requests on the cold app: all are held until the new
	// instances are ready, none fails.
	c := harness.Client(10 * time.Second)
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	began := time.Now()
	var slowest time.Duration
	var mu sync.Mutex
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			var resp *http.Response
			var err error
			body := "cold " + string(rune('a'+i))
			if i%2 == 0 {
				resp, err = c.Get(g.URL + "/")
			} else {
				resp, err = c.Post(g.URL+"/echo", "text/plain", strings.NewReader(body))
			}
			if err != nil {
				errs <- err.Error()
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (i%2 == 1 && string(got) != body) {
				errs <- resp.Status + " Gatehouse-Cause " + resp.Header.Get("Gatehouse-Cause") + ": " + trim(string(got))
			}
			mu.Lock()
			slowest = max(slowest, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("request to the idle app failed: %s", e)
	}
	t.Logf("cold burst answered within %v (slowest %v)", time.Since(began).Round(time.Millisecond), slowest.Round(time.Millisecond))
	if slowest < 250*time.Millisecond {
		t.Errorf("slowest cold request took %v; the 300ms start delay was not waited for, so the app was not really unloaded", slowest)
	}

	wakes := g.Events("wake")
	if len(wakes) != 1 {
		t.Fatalf("%d wake events, want 1:\n%s", len(wakes), describeEvents(g.Events()))
	}
	if !wakes[0].Time.After(unload.Time) {
		t.Errorf("wake at %s is not after idle_unload at %s", wakes[0].Time.Format("15:04:05.000"), unload.Time.Format("15:04:05.000"))
	}
	g.WaitReady(t, "web", 2, 5*time.Second)
	for id, pid := range snapshot(g) {
		if before[id] == pid {
			t.Errorf("%s kept pid %d across an idle unload", id, pid)
		}
	}
}

// A reload that turns idle_timeout on, for an app started without one,
// applies it: the app idles and is unloaded, as if it had started with
// it. The idle watcher used to be started only with the app, so the reload
// said "applied" and the setting was lost until gatehouse restarted.
func TestReloadTurnsIdleTimeoutOn(t *testing.T) {
	g := startWeb(t, 1, nil)
	a := webApp(t, g)
	next := *a.Config()
	next.IdleTimeout = config.Duration(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Reload(ctx, &next, progress(t)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	testutil.WaitFor(t, 8*time.Second, "an idle_unload event after idle_timeout was reloaded on", func() bool {
		return len(g.Events("idle_unload")) > 0
	})
}

// A reload that turns idle_timeout off for an app unloaded for idleness
// starts it, as gatehouse starts an app without idle_timeout: always on
// again, not left unloaded until a request comes to wait for its start.
func TestReloadTurnsIdleTimeoutOffWakesTheApp(t *testing.T) {
	g := startWeb(t, 2, func(a *config.App) { a.IdleTimeout = config.Duration(time.Second) })
	testutil.WaitFor(t, 10*time.Second, "an idle_unload event", func() bool { return len(g.Events("idle_unload")) > 0 })
	a := webApp(t, g)
	testutil.WaitFor(t, 10*time.Second, "the app unloaded", func() bool { return a.Pool().Unloaded() && len(g.Instances("web")) == 0 })
	next := *a.Config()
	next.IdleTimeout = 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Reload(ctx, &next, progress(t)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	g.WaitReady(t, "web", 2, 15*time.Second)
	if a.Pool().Unloaded() {
		t.Errorf("instances ready, but the app is still marked unloaded")
	}
	if w := g.Events("wake"); len(w) != 1 || !strings.Contains(w[0].Detail, "idle_timeout") {
		t.Errorf("want one wake event saying idle_timeout was turned off:\n%s", describeEvents(g.Events()))
	}
}

// A stopped app (gatehouse stop) is not also unloaded for idleness once
// idle_timeout passes with no instance to stop: gatehouse start then
// starts it, rather than leave it waiting for a request.
func TestStoppedAppIsNotUnloadedForIdleness(t *testing.T) {
	const idle = 500 * time.Millisecond
	g := startWeb(t, 1, func(a *config.App) { a.IdleTimeout = config.Duration(idle) })
	a := webApp(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Stop(ctx, progress(t)); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// The stopped app idles: time is what this test is about.
	time.Sleep(4 * idle)
	if err := a.Start(ctx, progress(t)); err != nil {
		t.Fatalf("start: %v", err)
	}
	g.WaitReady(t, "web", 1, 15*time.Second)
	for _, e := range g.Events("idle_unload") {
		if strings.Contains(e.Detail, "stopping 0 instances") {
			t.Errorf("a stopped app was unloaded for idleness: %s", e.Detail)
		}
	}
}
