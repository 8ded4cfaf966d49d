package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// startAutoscaled runs web, two ready instances, with autoscale min 1,
// max 3 and no rules: autoscale itself never acts, its bounds do.
func startAutoscaled(t *testing.T) (*harness.Gatehouse, *supervisor.App) {
	t.Helper()
	cfg, app := harness.FaultApp(t, 2)
	app.Autoscale = &config.Autoscale{Min: 1, Max: 3, Interval: config.Duration(time.Second),
		CooldownOut: config.Duration(time.Minute), CooldownIn: config.Duration(time.Minute)}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 15*time.Second)
	return g, g.Srv.Supervisor().App("web")
}

// With autoscale on, a manual scale is clamped to min..max (0 still stops
// the app), and a reload keeps the count the app runs rather than going
// back to the file's instances, which is only where it starts.
func TestAutoscaleBoundsManualScaleAndReload(t *testing.T) {
	g, a := startAutoscaled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tests := []struct {
		name    string
		n, want int
		says    string
	}{
		{"above max", 9, 3, "9 instances clamped to 3 (min 1, max 3)"},
		{"within", 2, 2, ""},
		{"0 stops", 0, 0, ""},
		{"back within", 1, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Progress is called from each stopping instance's goroutine.
			var mu sync.Mutex
			var said []string
			p := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				said = append(said, fmt.Sprintf(format, args...))
			}
			if err := a.Scale(ctx, tt.n, p); err != nil {
				t.Fatalf("scale %d: %v", tt.n, err)
			}
			if got := a.Config().Instances; got != tt.want {
				t.Errorf("scale %d: instances = %d, want %d", tt.n, got, tt.want)
			}
			g.WaitReady(t, "web", tt.want, 15*time.Second)
			mu.Lock()
			all := strings.Join(said, "\n")
			mu.Unlock()
			if tt.says != "" && !strings.Contains(all, tt.says) {
				t.Errorf("scale %d said:\n%s\nwant %q", tt.n, all, tt.says)
			}
		})
	}

	if err := a.Scale(ctx, 3, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	g.WaitReady(t, "web", 3, 15*time.Second)
	app := g.Config.Apps["web"]
	next := *app
	next.Instances = 1
	next.HoldTimeout = config.Duration(7 * time.Second) // a setting: no new processes
	as := *app.Autoscale
	as.Max = 2
	next.Autoscale = &as
	if err := a.Reload(ctx, &next, func(string, ...any) {}); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// 3 running, the file says 1 and max 2: the count is kept, within
	// the new max.
	if got := a.Config().Instances; got != 2 {
		t.Errorf("after a reload with instances 1, max 2 at 3 instances: instances = %d, want 2", got)
	}
	g.WaitReady(t, "web", 2, 15*time.Second)
}

// An autoscale decision is carried out behind whatever holds the app's
// lock (a reload's rolling restart, an operator's scale or stop): if the
// app changed meanwhile, the stale decision must not undo it, restart a
// stopped app, or go past a max a reload lowered.
func TestAutoscaleStaleDecision(t *testing.T) {
	g, a := startAutoscaled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	quiet := func(string, ...any) {}
	why := &telemetry.Event{Trigger: config.MetricInflight, Detail: "autoscale: test"}

	tests := []struct {
		name     string
		setup    func(t *testing.T)
		from, to int
		stale    bool
		want     int
	}{
		{"taken at a count the app no longer runs", func(t *testing.T) {}, 1, 3, true, 2},
		{"current", func(t *testing.T) {}, 2, 3, false, 3},
		{"beyond a max lowered since", func(t *testing.T) {
			app := g.Config.Apps["web"]
			next := *app
			as := *app.Autoscale
			as.Max = 2
			next.Autoscale = &as
			if err := a.Reload(ctx, &next, quiet); err != nil {
				t.Fatalf("reload: %v", err)
			}
		}, 2, 3, true, 2},
		{"the app was stopped meanwhile", func(t *testing.T) {
			if err := a.Stop(ctx, quiet); err != nil {
				t.Fatalf("stop: %v", err)
			}
		}, 2, 1, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(t)
			err := a.ScaleFor(ctx, tt.from, tt.to, why, quiet)
			if got := errors.Is(err, supervisor.ErrStaleDecision); got != tt.stale || (!tt.stale && err != nil) {
				t.Fatalf("ScaleFor %d → %d: %v; want stale %v", tt.from, tt.to, err, tt.stale)
			}
			if got := a.Config().Instances; got != tt.want {
				t.Errorf("instances = %d, want %d", got, tt.want)
			}
			g.WaitReady(t, "web", tt.want, 15*time.Second)
			if n := len(g.Instances("web")); n != tt.want {
				t.Errorf("%d instances running, want %d", n, tt.want)
			}
		})
	}
}

// A stopped app with autoscale stays stopped through a reload, with its
// settings changed or not: the file's instances (and autoscale's min)
// are where it starts, not a count a reload brings it back to; gatehouse
// start does, with the count it had.
func TestAutoscaledStoppedAppStaysStoppedOnReload(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.App)
	}{
		{"settings changed", func(a *config.App) { a.HoldTimeout = config.Duration(7 * time.Second) }},
		{"config unchanged", func(*config.App) {}},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			g, a := startAutoscaled(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			quiet := func(string, ...any) {}
			if err := a.Stop(ctx, quiet); err != nil {
				t.Fatalf("stop: %v", err)
			}
			next := *g.Config.Apps["web"]
			tt.edit(&next)
			if err := a.Reload(ctx, &next, quiet); err != nil {
				t.Fatalf("reload: %v", err)
			}
			if got, n := a.Config().Instances, len(g.Instances("web")); got != 0 || n != 0 {
				t.Fatalf("after a reload of the stopped app: instances = %d, %d running; want it stopped", got, n)
			}
			if err := a.Start(ctx, quiet); err != nil {
				t.Fatalf("start: %v", err)
			}
			g.WaitReady(t, "web", 2, 15*time.Second)
		})
	}
}
