package supervisor_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Issue 16: with autoscale on, a manual scale is clamped to min..max (0
// still stops the app), and a reload keeps the count the app runs rather
// than going back to the file's instances, which is only where it starts.
func TestAutoscaleBoundsManualScaleAndReload(t *testing.T) {
	cfg, app := harness.FaultApp(t, 2)
	// No rules: autoscale itself never acts here.
	app.Autoscale = &config.Autoscale{Min: 1, Max: 3, Interval: config.Duration(time.Second),
		CooldownOut: config.Duration(time.Minute), CooldownIn: config.Duration(time.Minute)}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 15*time.Second)
	a := g.Srv.Supervisor().App("web")
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
			var said []string
			p := func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }
			if err := a.Scale(ctx, tt.n, p); err != nil {
				t.Fatalf("scale %d: %v", tt.n, err)
			}
			if got := a.Config().Instances; got != tt.want {
				t.Errorf("scale %d: instances = %d, want %d", tt.n, got, tt.want)
			}
			g.WaitReady(t, "web", tt.want, 15*time.Second)
			if all := strings.Join(said, "\n"); tt.says != "" && !strings.Contains(all, tt.says) {
				t.Errorf("scale %d said:\n%s\nwant %q", tt.n, all, tt.says)
			}
		})
	}

	if err := a.Scale(ctx, 3, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	g.WaitReady(t, "web", 3, 15*time.Second)
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
