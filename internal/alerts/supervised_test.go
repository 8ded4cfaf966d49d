package alerts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/alerts"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// New reads a real supervisor's apps, to a real webhook on loopback: the
// autoscale_at_max alert of an app (no process started) fires when its
// autoscale status says at max and resolves when it no longer does. The
// rules themselves are the synctest tests' and the evaluator's.
func TestManagerReadsTheSupervisor(t *testing.T) {
	cfg, err := config.Parse("g.yaml", []byte("apps:\n  web:\n    command: x\n    instances: 2\n    autoscale:\n      max: 2\n      out: [{metric: inflight_per_instance, above: 4}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	hook := testutil.NewWebhook(t)
	ac := config.NewAlerts()
	rc := config.NewReceiver()
	rc.Name, rc.URL = "ops", hook.URL
	ac.Receivers = []*config.Receiver{rc}
	events := telemetry.NewEvents(nil, 0)
	sup := supervisor.New(cfg, supervisor.Options{Events: events})
	m := alerts.New(ac, sup, events, alerts.Options{Every: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	web := sup.Apps()[0]
	web.SetAutoscaleStatus(&supervisor.AutoscaleStatus{Min: 1, Max: 2, AtMax: true, LastDecision: "at max: inflight_per_instance 6 > 4 for 30s"})
	testutil.WaitFor(t, 10*time.Second, "the firing notification", func() bool { return len(hook.Statuses(t, alerts.AutoscaleAtMax)) == 1 })
	web.SetAutoscaleStatus(&supervisor.AutoscaleStatus{Min: 1, Max: 2})
	testutil.WaitFor(t, 10*time.Second, "the resolved notification", func() bool { return len(hook.Statuses(t, alerts.AutoscaleAtMax)) == 2 })
	if got, want := strings.Join(hook.Statuses(t, alerts.AutoscaleAtMax), ","), alerts.Firing+","+alerts.Resolved; got != want {
		t.Errorf("autoscale_at_max notifications %s, want %s", got, want)
	}
}
