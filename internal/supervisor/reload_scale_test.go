package supervisor_test

// A reload that changes only `instances` scales (starts or drains the
// difference, as `gatehouse scale` does) and says so; one that changes the
// instance count and the command replaces every instance, as before.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

func TestReloadInstancesOnlyScales(t *testing.T) {
	fc := newFileConfig(t)
	cfg := fc.write(t, 2, nil, nil)
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 10*time.Second)
	before := snapshot(g)
	l := startLoad(t, g.URL, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	reloadEvents := func() string {
		var d []string
		for _, e := range g.Events("reload") {
			d = append(d, e.Detail)
		}
		return strings.Join(d, "\n")
	}
	// 2 → 3: the two running instances stay, one is started.
	fc.write(t, 3, nil, nil)
	if err := g.Srv.Reload(ctx, "web", progress(t)); err != nil {
		t.Fatalf("reload 2 → 3: %v\nevents:\n%s", err, describeEvents(g.Events()))
	}
	g.WaitReady(t, "web", 3, 10*time.Second)
	up := snapshot(g)
	for id, pid := range before {
		if up[id] != pid {
			t.Errorf("reload 2 → 3 replaced %s (pid %d → %d); want it kept: %s", id, pid, up[id], states(g))
		}
	}
	if len(up) != 3 {
		t.Errorf("after reload 2 → 3: %s; want 3 instances", states(g))
	}
	if ev := reloadEvents(); !strings.Contains(ev, "instances 2 → 3: scaled") || strings.Contains(ev, "config unchanged") || strings.Contains(ev, "rolling reload") {
		t.Errorf("reload events after 2 → 3:\n%s\nwant \"instances 2 → 3: scaled\" and no rolling reload", ev)
	}
	if n := len(g.Events("stop")); n != 0 {
		t.Errorf("%d instances stopped by a reload that only added one:\n%s", n, describeEvents(g.Events()))
	}

	// 3 → 2: the newest drains and stops; the first two stay.
	fc.write(t, 2, nil, nil)
	if err := g.Srv.Reload(ctx, "web", progress(t)); err != nil {
		t.Fatalf("reload 3 → 2: %v", err)
	}
	down := snapshot(g)
	if !maps.Equal(down, before) {
		t.Errorf("after reload 3 → 2: %v; want the first two instances %v, unchanged", down, before)
	}
	var stopped []string
	for _, e := range g.Events("stop") {
		stopped = append(stopped, e.Instance)
	}
	if len(stopped) != 1 {
		t.Errorf("stopped %v on reload 3 → 2; want the one added", stopped)
	}
	requireDrainBeforeStop(t, g, stopped)
	if ev := reloadEvents(); !strings.Contains(ev, "instances 3 → 2: scaled") {
		t.Errorf("reload events:\n%s\nwant \"instances 3 → 2: scaled\"", ev)
	}
	for id, pid := range up {
		if _, kept := down[id]; !kept {
			testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("drained %s (pid %d) to exit", id, pid), func() bool { return !testutil.ProcessAlive(pid) })
		}
	}
	l.requireNoFailures(t, "two reloads that scale")

	// Instances and env: every instance is replaced, then the count met.
	fc.write(t, 3, nil, map[string]string{"RELEASE": "2"})
	if err := g.Srv.Reload(ctx, "web", progress(t)); err != nil {
		t.Fatalf("reload 2 → 3 with a new env: %v", err)
	}
	g.WaitReady(t, "web", 3, 10*time.Second)
	after := snapshot(g)
	for id := range before {
		if _, ok := after[id]; ok {
			t.Errorf("%s survived a reload that changed the env: %s", id, states(g))
		}
	}
	if len(after) != 3 {
		t.Errorf("after the env reload: %s; want 3 instances", states(g))
	}
	ev := reloadEvents()
	if !strings.Contains(ev, "rolling reload of 2 instances: env changed; instances 2 → 3") {
		t.Errorf("reload events:\n%s\nwant a rolling reload naming the env and the instance count", ev)
	}
	ids := slices.Sorted(maps.Keys(after))
	t.Logf("after the env reload: %v", ids)
}

// What was done at run time holds through a reload whose file leaves
// instances as it was (another setting changed, or nothing), as it does
// through an upgrade: a gatehouse scale stays, a stopped app stays
// stopped (gatehouse start brings back its count). A file whose
// instances changed since it was last read wins.
func TestRunTimeCountHoldsThroughAReload(t *testing.T) {
	tests := []struct {
		name string
		// run is done at run time; file is the instances the file then
		// says, with another setting changed (HOLD env); want is the
		// count running after the reload.
		run        func(ctx context.Context, a *supervisor.App) error
		file, want int
	}{
		{"scaled up, another setting changed", func(ctx context.Context, a *supervisor.App) error {
			return a.Scale(ctx, 3, quietProgress)
		}, 2, 3},
		{"stopped, another setting changed", func(ctx context.Context, a *supervisor.App) error {
			return a.Stop(ctx, quietProgress)
		}, 2, 0},
		{"scaled up, then the file's instances changed", func(ctx context.Context, a *supervisor.App) error {
			return a.Scale(ctx, 3, quietProgress)
		}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			fc, g, a := startFromFile(t, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := tt.run(ctx, a); err != nil {
				t.Fatal(err)
			}
			fc.write(t, tt.file, nil, map[string]string{"RELOADED": "1"})
			if err := g.Srv.Reload(ctx, "web", quietProgress); err != nil {
				t.Fatalf("reload: %v\nevents:\n%s", err, describeEvents(g.Events()))
			}
			if tt.want > 0 {
				g.WaitReady(t, "web", tt.want, 15*time.Second)
			}
			if got, n := a.Config().Instances, len(g.Instances("web")); got != tt.want || n != tt.want {
				t.Fatalf("after the reload: instances %d, %d running; want %d\nevents:\n%s", got, n, tt.want, describeEvents(g.Events()))
			}
			if tt.want == 0 {
				if err := a.Start(ctx, quietProgress); err != nil {
					t.Fatalf("start: %v", err)
				}
				g.WaitReady(t, "web", 2, 15*time.Second)
			}
		})
	}
}

func quietProgress(string, ...any) {}

// startFromFile runs web's n instances from a config file (which the test
// may write again and reload) until they are ready.
func startFromFile(t *testing.T, n int) (*fileConfig, *harness.Gatehouse, *supervisor.App) {
	t.Helper()
	fc := newFileConfig(t)
	g := harness.Start(t, fc.write(t, n, nil, nil))
	g.WaitReady(t, "web", n, 10*time.Second)
	return fc, g, g.Srv.Supervisor().App("web")
}

// A request to a stopped app (gatehouse stop, or scaled to 0) is
// answered at once with a 503 that says so and names the way back,
// rather than held for hold_timeout for an instance nobody starts; once
// started, the app serves again.
func TestStoppedAppAnswersAtOnceNamingTheWayBack(t *testing.T) {
	t.Parallel()
	_, g, a := startFromFile(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Stop(ctx, quietProgress); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	began := time.Now()
	resp, err := c.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(began)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "web is stopped") ||
		!strings.Contains(string(body), "gatehouse start web") {
		t.Errorf("a stopped app's answer: %d %q; want 503 saying it is stopped and how to start it", resp.StatusCode, body)
	}
	if took > 3*time.Second { // hold_timeout is 5s
		t.Errorf("the stopped app's answer took %v; want it at once, not after hold_timeout", took)
	}
	if err := a.Start(ctx, quietProgress); err != nil {
		t.Fatal(err)
	}
	g.WaitReady(t, "web", 1, 15*time.Second)
	resp, err = c.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after gatehouse start: %d, want 200", resp.StatusCode)
	}
}
