package autoheal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// An outage: every probe fails (a database every /healthz checks is
// down), so after health.recycle_after auto-heal recycles both instances,
// and the first recycle's replacement, failing its probes too, could wait
// out a long start_timeout. What the operator runs then to fix it (a
// deploy's reload, a restart, a scale, a stop, a recycle of their own, an
// upgrade, a shutdown) must not wait behind auto-heal: the recycles give
// way, the replacement is stopped, an auto_heal event says why the
// instance was not recycled, and the operator's operation proceeds at
// once. The fix in this test: processes started after it pass their
// probes.
func TestOperatorOperationsPreemptAutoHealRecycles(t *testing.T) {
	const startTimeout = 2 * time.Minute
	// Well before start_timeout; generous for a busy machine.
	const bound = 30 * time.Second
	for _, tc := range []struct {
		name string
		// by is how auto-heal's event names the operation.
		by string
		op func(ctx context.Context, t *testing.T, g *harness.Gatehouse, a *supervisor.App, old []string) error
	}{
		{"reload", "an operator's reload", func(ctx context.Context, _ *testing.T, _ *harness.Gatehouse, a *supervisor.App, _ []string) error {
			next := *a.Config()
			next.Env = map[string]string{"RELEASE": "2"}
			return a.Reload(ctx, &next, quiet)
		}},
		{"restart", "an operator's restart", func(ctx context.Context, _ *testing.T, _ *harness.Gatehouse, a *supervisor.App, _ []string) error {
			return a.Restart(ctx, quiet)
		}},
		{"restart of an instance", "an operator's restart of web-1", func(ctx context.Context, _ *testing.T, _ *harness.Gatehouse, a *supervisor.App, old []string) error {
			return a.RestartInstance(ctx, old[0], quiet)
		}},
		{"scale", "an operator's scale", func(ctx context.Context, _ *testing.T, _ *harness.Gatehouse, a *supervisor.App, _ []string) error {
			return a.Scale(ctx, 3, quiet)
		}},
		{"stop", "an operator's stop", func(ctx context.Context, _ *testing.T, _ *harness.Gatehouse, a *supervisor.App, _ []string) error {
			return a.Stop(ctx, quiet)
		}},
		{"recycle", "an operator's recycle of web-1", func(ctx context.Context, _ *testing.T, _ *harness.Gatehouse, a *supervisor.App, old []string) error {
			return a.Recycle(ctx, old[0], "requested through the admin API", quiet)
		}},
		{"upgrade's leave", "an upgrade", func(_ context.Context, _ *testing.T, g *harness.Gatehouse, _ *supervisor.App, _ []string) error {
			sup := g.Srv.Supervisor()
			sup.Leave()
			sup.TakeBack() // the successor failed: this gatehouse serves on
			return nil
		}},
		{"shutdown", "gatehouse's shutdown", func(_ context.Context, t *testing.T, g *harness.Gatehouse, _ *supervisor.App, _ []string) error {
			g.Stop(t)
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, fixed := startOutage(t, 2, startTimeout)
			a := g.Srv.Supervisor().App("web")
			var old []string
			for _, in := range g.Instances("web") {
				old = append(old, in.ID)
				setHealth(t, in.Port, 503)
			}
			recycled, replacement := awaitReplacementFailing(t, g, old)
			fixed()

			ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
			defer cancel()
			done := make(chan error, 1)
			began := time.Now()
			go func() { done <- tc.op(ctx, t, g, a, old) }()
			select {
			case err := <-done:
				took := time.Since(began)
				t.Logf("%s took %v", tc.name, took.Round(time.Millisecond))
				if err != nil {
					t.Errorf("%s during auto-heal's recycle: %v\n%s", tc.name, err, harness.DescribeEvents(g.Events()))
				}
			case <-time.After(bound):
				t.Errorf("%s still waits after %v, behind auto-heal's recycle of %s (start_timeout %v)\n%s",
					tc.name, bound, recycled, startTimeout, harness.DescribeEvents(g.Events()))
				g.Stop(t) // ends the recycle, and with it the wait
				<-done
				return
			}
			ev := waitEventWith(t, g, 10*time.Second, telemetry.EventAutoHeal, recycled, "not recycled: ")
			if !strings.Contains(ev.Detail, tc.by+" came first") {
				t.Errorf("auto_heal event %q does not say that %s came first", ev.Detail, tc.by)
			}
			if testutil.ProcessAlive(replacement.PID) {
				t.Errorf("the abandoned replacement %s (pid %d) still runs", replacement.Instance, replacement.PID)
			}
			for _, in := range g.Instances("web") {
				if in.ID == replacement.Instance {
					t.Errorf("the abandoned replacement %s is still an instance: %+v", in.ID, in)
				}
			}
		})
	}
}

// startOutage runs n instances of an app whose processes fail their
// probes from the outage's start, which is now, until fixed is called:
// the ones already ready stay so until their health is set. recycle_after
// is 1s, start_timeout as given.
func startOutage(t *testing.T, n int, startTimeout time.Duration) (g *harness.Gatehouse, fixed func()) {
	t.Helper()
	cfg, app := harness.FaultApp(t, n)
	flag := filepath.Join(t.TempDir(), "outage")
	bin := app.Command[0]
	app.Command = config.Command{"sh", "-c", `if [ -e "$1" ]; then exec "$2" -health-status 503; fi; exec "$2"`, "sh", flag, bin}
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	app.Health.Interval = config.Duration(100 * time.Millisecond)
	app.Health.RecycleAfter = config.Duration(time.Second)
	app.StartTimeout = config.Duration(startTimeout)
	g = harness.Start(t, cfg)
	g.WaitReady(t, "web", n, 15*time.Second)
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return g, func() {
		if err := os.Remove(flag); err != nil {
			t.Fatal(err)
		}
	}
}

// setHealth makes the instance listening on port answer /healthz with
// code.
func setHealth(t *testing.T, port, code int) {
	t.Helper()
	c := client(t, 10*time.Second)
	mustGet(t, c, fmt.Sprintf("http://127.0.0.1:%d/set-health?status=%d", port, code), 200)
}

// awaitReplacementFailing waits until auto-heal recycles one of the
// instances old and its replacement's probes fail (the outage has it
// too), and returns the recycled instance and the replacement's start
// event.
func awaitReplacementFailing(t *testing.T, g *harness.Gatehouse, old []string) (recycled string, started telemetry.Event) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "an auto-heal recycle's replacement to fail its probes", func() bool {
		recycled, started = "", telemetry.Event{}
		for _, e := range g.Events(telemetry.EventRecycle, telemetry.EventStart) {
			switch {
			case e.Type == telemetry.EventRecycle && recycled == "" && slices.Contains(old, e.Instance):
				recycled = e.Instance
			case e.Type == telemetry.EventStart && recycled != "" && started.Instance == "" && !slices.Contains(old, e.Instance):
				started = e
			}
		}
		for _, in := range g.Instances("web") {
			if in.ID == started.Instance && in.State == "starting" && strings.Contains(in.Health, "503") {
				return true
			}
		}
		return false
	})
	return recycled, started
}

// waitEventWith waits for an event of type typ for instance id whose
// detail begins with prefix, and returns the first.
func waitEventWith(t *testing.T, g *harness.Gatehouse, timeout time.Duration, typ, id, prefix string) telemetry.Event {
	t.Helper()
	return g.WaitEvent(t, timeout, typ, id, func(e telemetry.Event) bool { return strings.HasPrefix(e.Detail, prefix) })
}

func quiet(string, ...any) {}

// While an operator's operation holds the app, auto-heal does not try
// again and again: a trigger that keeps firing (an instance still
// unhealthy, in an outage the operation does not fix) waits for the app
// rather than giving way at every check, so each instance's events say
// at most once that the operator came first.
func TestAutoHealWaitsOutAnOperatorsOperation(t *testing.T) {
	const startTimeout = 4 * time.Second
	g, _ := startOutage(t, 2, startTimeout)
	a := g.Srv.Supervisor().App("web")
	var old []string
	for _, in := range g.Instances("web") {
		old = append(old, in.ID)
		setHealth(t, in.Port, 503)
	}
	awaitReplacementFailing(t, g, old)

	// The outage goes on: the reload's instances fail their probes too,
	// and the reload holds the app for its start_timeout, some twenty of
	// auto-heal's checks.
	next := *a.Config()
	next.Env = map[string]string{"RELEASE": "2"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*startTimeout)
	defer cancel()
	if err := a.Reload(ctx, &next, quiet); err == nil {
		t.Fatalf("a reload whose instances never get ready succeeded\n%s", harness.DescribeEvents(g.Events()))
	}
	for _, id := range old {
		n := 0
		for _, e := range g.Events(telemetry.EventAutoHeal) {
			if e.Instance == id && strings.HasSuffix(e.Detail, "came first") {
				n++
			}
		}
		if n > 1 {
			t.Errorf("%s: %d auto_heal events saying the operator came first, want at most 1\n%s", id, n, harness.DescribeEvents(g.Events()))
		}
	}
}

// An auto-heal recycle that waits for the app while the operator
// restarts it (the fix of an outage) does not recycle the restarted
// instance once the restart is done: its trigger fired on the process
// the restart replaced, and the new one, healthy and seconds old, has
// not earned a recycle. Its auto_heal event says it was not recycled.
func TestAutoHealDoesNotRecycleWhatARestartReplaced(t *testing.T) {
	const startTimeout = 2 * time.Minute
	g, fixed := startOutage(t, 2, startTimeout)
	a := g.Srv.Supervisor().App("web")
	var old []string
	for _, in := range g.Instances("web") {
		old = append(old, in.ID)
		setHealth(t, in.Port, 503)
	}
	recycled, _ := awaitReplacementFailing(t, g, old)
	waiting := theOther(old, recycled)
	// The other instance's trigger fired too; its recycle waits for the
	// app, which the first one holds, then the operator.
	waitEventWith(t, g, 20*time.Second, telemetry.EventAutoHeal, waiting, waiting+": ")
	fixed()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := a.Restart(ctx, quiet); err != nil {
		t.Fatalf("restart: %v\n%s", err, harness.DescribeEvents(g.Events()))
	}
	outcome := awaitRecycleOutcome(t, g, waiting)
	if outcome.Type == telemetry.EventRecycle || !strings.Contains(outcome.Detail, "restarted meanwhile") {
		t.Errorf("after the operator's restart, auto-heal's waiting recycle of %s: %s %q; want it not recycled, restarted meanwhile\n%s",
			waiting, outcome.Type, outcome.Detail, harness.DescribeEvents(g.Events()))
	}
}

// An auto-heal recycle for health.recycle_after that waits for the app
// (behind another recycle, then the operator's scale) does not recycle
// its instance once it has the app if a probe passed meanwhile (the
// outage ended): the time starts over when a probe passes, and a healthy
// instance has not earned a recycle.
func TestAutoHealDoesNotRecycleAnInstanceHealthyAgain(t *testing.T) {
	const startTimeout = 2 * time.Minute
	g, fixed := startOutage(t, 2, startTimeout)
	a := g.Srv.Supervisor().App("web")
	var old []string
	ports := map[string]int{}
	for _, in := range g.Instances("web") {
		old = append(old, in.ID)
		ports[in.ID] = in.Port
		setHealth(t, in.Port, 503)
	}
	recycled, _ := awaitReplacementFailing(t, g, old)
	waiting := theOther(old, recycled)
	waitEventWith(t, g, 20*time.Second, telemetry.EventAutoHeal, waiting, waiting+": ")
	// The outage ends: both old instances pass their probes again.
	fixed()
	for _, id := range old {
		setHealth(t, ports[id], 200)
	}
	testutil.WaitFor(t, 20*time.Second, "both old instances to be ready again", func() bool {
		n := 0
		for _, in := range g.Instances("web") {
			if slices.Contains(old, in.ID) && in.State == "ready" {
				n++
			}
		}
		return n == len(old)
	})

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := a.Scale(ctx, 3, quiet); err != nil {
		t.Fatalf("scale: %v\n%s", err, harness.DescribeEvents(g.Events()))
	}
	outcome := awaitRecycleOutcome(t, g, waiting)
	if outcome.Type == telemetry.EventRecycle || !strings.Contains(outcome.Detail, "no longer unhealthy") {
		t.Errorf("auto-heal's waiting recycle of %s, healthy again: %s %q; want it not recycled, no longer unhealthy\n%s",
			waiting, outcome.Type, outcome.Detail, harness.DescribeEvents(g.Events()))
	}
}

// awaitRecycleOutcome waits for how auto-heal's recycle of instance id
// ended: its recycle event, or the auto_heal event saying it was not
// recycled or that the recycle failed.
func awaitRecycleOutcome(t *testing.T, g *harness.Gatehouse, id string) telemetry.Event {
	t.Helper()
	outcome := func(e telemetry.Event) bool {
		return e.Type == telemetry.EventRecycle ||
			strings.HasPrefix(e.Detail, "not recycled: ") || strings.HasPrefix(e.Detail, "recycle failed: ")
	}
	return g.WaitEvent(t, 20*time.Second, "", id, outcome)
}

// theOther is the one of the two instances ids that is not id.
func theOther(ids []string, id string) string {
	if ids[0] == id {
		return ids[1]
	}
	return ids[0]
}
