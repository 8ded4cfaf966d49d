package supervisor_test

// Races between operations, crash restarts and shutdown.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// `gatehouse restart web` restarts every instance and reports success:
// it must not time out waiting for an instance that restarted while the
// operation was still waiting for the one before it.
func TestRestartAppWithSeveralInstances(t *testing.T) {
	g := startWeb(t, 3, nil)
	before := snapshot(g)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	if err := webApp(t, g).Restart(ctx, progress(t)); err != nil {
		t.Fatalf("restart web after %v: %v\n%s", time.Since(began).Round(time.Millisecond), err, describeEvents(g.Events()))
	}
	for _, in := range g.Instances("web") {
		if in.PID == before[in.ID] || in.State != "ready" || in.Restarts != 1 {
			t.Errorf("%s after restart: pid %d (was %d), %s, restarts %d; want a new ready process, restarts 1", in.ID, in.PID, before[in.ID], in.State, in.Restarts)
		}
	}
}

// A restart asked for while an instance waits out its crash back-off
// starts it at once, and leaves no restart request behind to hard-stop the
// next process.
func TestRestartDuringCrashBackoffIsImmediate(t *testing.T) {
	cfg, app := harness.FaultApp(t, 1)
	tune(app)
	flag := filepath.Join(t.TempDir(), "ok")
	app.Command = config.Command{"sh", "-c", fmt.Sprintf("test -e %s && exec %s; echo not yet >&2; exit 3", flag, app.Command[0])}
	g := harness.Start(t, cfg)
	// Crashes 1..4 back off 0, 1s, 2s, then 4s.
	testutil.WaitFor(t, 15*time.Second, "4 restarts", func() bool {
		ins := g.Instances("web")
		return len(ins) == 1 && ins[0].Restarts >= 4
	})
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	err := webApp(t, g).RestartInstance(ctx, "web-1", progress(t))
	took := time.Since(began)
	if err != nil {
		t.Fatalf("restart web-1: %v\n%s", err, describeEvents(g.Events()))
	}
	if took > 2*time.Second {
		t.Errorf("restart during a 4s back-off took %v; want it to skip the back-off", took.Round(time.Millisecond))
	}
	ins := g.Instances("web")
	pid := ins[0].PID
	// Deliberately a while: a restart request left behind would
	// hard-stop the new process at its watch's first turn, which nothing
	// outside the instance shows.
	time.Sleep(time.Second)
	if ins := g.Instances("web"); len(ins) != 1 || ins[0].PID != pid || ins[0].State != "ready" {
		t.Errorf("after the restart: %s; want web-1 still ready with pid %d\n%s", states(g), pid, describeEvents(g.Events()))
	}
}

// Once gatehouse has stopped its instances, an operation still running
// (an admin request, a SIGHUP reload, a wake) must not start new ones.
func TestNoInstanceStartsAfterShutdown(t *testing.T) {
	g := startWeb(t, 1, nil)
	a := webApp(t, g)
	g.Stop(t)
	starts := len(g.Events("start"))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Scale(ctx, 3, progress(t)); err == nil {
		t.Errorf("scale after shutdown succeeded")
	}
	next := *a.Config()
	next.Env = map[string]string{"RELEASE": "2"}
	if err := a.Reload(ctx, &next, progress(t)); err == nil {
		t.Errorf("reload after shutdown succeeded")
	}
	if n := len(g.Events("start")) - starts; n > 0 {
		t.Errorf("%d processes started after shutdown:\n%s", n, describeEvents(g.Events()))
	}
	if ins := g.Instances("web"); len(ins) != 0 {
		t.Errorf("instances after shutdown: %s", states(g))
	}
}

// Reloading an app from a command to upstreams (or back) must not leave a
// pool that mixes supervised processes with external upstreams.
func TestReloadBetweenCommandAndUpstreamsDoesNotMix(t *testing.T) {
	g := startWeb(t, 2, nil)
	a := webApp(t, g)

	next := *a.Config()
	next.Command = nil
	next.Upstreams = []string{fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := a.Reload(ctx, &next, progress(t))
	// Reload has done what it does by the time it returns: a switch is
	// refused before anything changes.
	t.Logf("reload to upstreams: %v", err)
	var procs, ups []string
	for _, in := range g.Instances("web") {
		if in.Upstream != "" {
			ups = append(ups, in.ID)
		} else {
			procs = append(procs, in.ID)
		}
	}
	if len(procs) > 0 && len(ups) > 0 {
		t.Errorf("after reloading to upstreams: processes %v and upstreams %v in one pool: %s", procs, ups, states(g))
	}
	if err == nil && len(procs) > 0 {
		t.Errorf("reload to upstreams succeeded but processes %v still run", procs)
	}
	if err != nil && (len(procs) != 2 || a.Config().External()) {
		t.Errorf("reload to upstreams failed (%v) but changed the app: %s", err, states(g))
	}
	if err != nil && !strings.Contains(err.Error(), "restart gatehouse") {
		t.Errorf("error %q does not say what to do", err)
	}
}

// A scale beyond config.MaxInstances (a slip: 1000 for 10) is refused
// before anything starts; the count the app runs stays.
func TestScaleBeyondTheBoundIsRefused(t *testing.T) {
	g := startWeb(t, 1, nil)
	a := webApp(t, g)
	starts := len(g.Events("start"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := a.Scale(ctx, config.MaxInstances+1, progress(t))
	if err == nil || !strings.Contains(err.Error(), "between 0 and 256") {
		t.Errorf("scale to %d: %v; want refused, naming the bound", config.MaxInstances+1, err)
	}
	if n := len(g.Events("start")) - starts; n > 0 {
		t.Errorf("%d processes started by a refused scale", n)
	}
	if got := a.Config().Instances; got != 1 {
		t.Errorf("instances after a refused scale: %d, want 1", got)
	}
}
