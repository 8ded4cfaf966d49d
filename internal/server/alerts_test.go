package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/alerts"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Alerts: an app that is healthy sends nothing; an episode of no ready
// instance (its instance crashes, then crash-loops at start) sends exactly
// one firing and, once it serves again, one resolved notification, to a
// gatehouse-format receiver and an Alertmanager one alike.
func TestAlertsNoReadyInstanceEpisode(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1)
	flag := filepath.Join(t.TempDir(), "crash")
	// The instance exits at start while the flag file exists.
	app.Command = config.Command{"sh", "-c", `if [ -e "$0" ]; then echo "crashing at start"; exit 3; fi; exec "$@"`, flag, app.Command[0]}
	own, am := testutil.NewWebhook(t), testutil.NewWebhook(t)
	cfg.Alerts = config.NewAlerts()
	cfg.Alerts.NoReadyFor = config.Duration(time.Second)
	for _, r := range []struct{ name, url, format string }{{"own", own.URL, config.FormatJSON}, {"am", am.URL, config.FormatAlertmanager}} {
		rc := config.NewReceiver()
		rc.Name, rc.URL, rc.Format = r.name, r.url, r.format
		cfg.Alerts.Receivers = append(cfg.Alerts.Receivers, rc)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)
	c := client(t, 10*time.Second)

	// Healthy for a few of the alerts' checks (one a second): nothing.
	pace := time.NewTicker(50 * time.Millisecond)
	defer pace.Stop()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); <-pace.C {
		if st, _, _ := get(t, c, g.URL+"/"); st != 200 {
			t.Fatalf("healthy app answered %d", st)
		}
	}
	if ns := own.Notifications(t); len(ns) != 0 {
		t.Fatalf("notifications while healthy: %v", ns)
	}

	// The episode: the instance dies, and every restart exits at once.
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Get(g.URL + "/crash"); err == nil {
		resp.Body.Close()
	}
	testutil.WaitFor(t, 30*time.Second, "a firing no_ready_instance notification", func() bool {
		return len(own.Statuses(t, alerts.NoReadyInstance)) > 0
	})
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 90*time.Second, "a resolved no_ready_instance notification", func() bool {
		return len(own.Statuses(t, alerts.NoReadyInstance)) > 1
	})
	testutil.WaitFor(t, 10*time.Second, "the metrics to show the episode over", func() bool {
		_, body, _ := get(t, c, g.AdminURL+"/metrics")
		return strings.Contains(body, `gatehouse_alerts_firing{alert="no_ready_instance",app="web"} 0`) &&
			strings.Contains(body, `gatehouse_alert_notifications_total{receiver="am",result="sent"}`)
	})
	g.Stop(t) // flushes what is queued
	want := []string{alerts.Firing, alerts.Resolved}
	if got := own.Statuses(t, alerts.NoReadyInstance); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("no_ready_instance notifications %v, want exactly %v", got, want)
	}
	for _, n := range own.Notifications(t) {
		if n["alert"] == alerts.NoReadyInstance && (n["app"] != "web" || n["text"] == "" || n["fingerprint"] == "") {
			t.Errorf("notification %v: want app web, a text and a fingerprint", n)
		}
	}

	// The same episode in Alertmanager's webhook body.
	var bodies []alerts.AMBody
	for _, b := range am.Bodies() {
		var body alerts.AMBody
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("alertmanager body %q: %v", b, err)
		}
		if body.CommonLabels["alertname"] == alerts.NoReadyInstance {
			bodies = append(bodies, body)
		}
	}
	if len(bodies) != 2 {
		t.Fatalf("alertmanager receiver got %d no_ready_instance bodies, want 2", len(bodies))
	}
	for i, b := range bodies {
		a := b.Alerts
		if b.Version != "4" || b.Receiver != "am" || b.Status != want[i] || b.GroupLabels["app"] != "web" ||
			!strings.HasPrefix(b.GroupKey, "{}:{") || len(a) != 1 || a[0].Status != want[i] ||
			a[0].Labels["alertname"] != alerts.NoReadyInstance || a[0].Annotations["summary"] == "" || a[0].Fingerprint == "" {
			t.Errorf("alertmanager body %d: %+v", i, b)
		}
	}
	if f, r := bodies[0].Alerts[0], bodies[1].Alerts[0]; !f.EndsAt.IsZero() || !r.StartsAt.Equal(f.StartsAt) || !r.EndsAt.After(r.StartsAt) {
		t.Errorf("firing %v–%v, resolved %v–%v: want one episode, the firing one without an end", f.StartsAt, f.EndsAt, r.StartsAt, r.EndsAt)
	}

	// gatehouse logs --events shows them.
	var evs []string
	for _, e := range g.Events(telemetry.EventAlert) {
		if e.Value == alerts.NoReadyInstance {
			evs = append(evs, e.Trigger)
		}
	}
	if strings.Join(evs, ",") != strings.Join(want, ",") {
		t.Errorf("alert events %v, want %v", evs, want)
	}
}

// An app the operator stops has no ready instance on purpose: no alert.
func TestAlertsQuietWhenOperatorStops(t *testing.T) {
	t.Parallel()
	cfg, _ := harness.FaultApp(t, 1)
	hook := testutil.NewWebhook(t)
	cfg.Alerts = config.NewAlerts()
	// Longer than a stop takes on a busy machine: while the instance
	// drains, the app still counts as meant to have a ready one.
	cfg.Alerts.NoReadyFor = config.Duration(2 * time.Second)
	rc := config.NewReceiver()
	rc.Name, rc.URL = "own", hook.URL
	cfg.Alerts.Receivers = []*config.Receiver{rc}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)
	if err := g.Srv.Supervisor().App("web").Stop(t.Context(), func(string, ...any) {}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// Several of the alerts' checks (one a second) past no_ready_for.
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); <-pace.C {
		if ns := hook.Notifications(t); len(ns) != 0 {
			t.Fatalf("notifications for an app the operator stopped: %v", ns)
		}
	}
	g.Stop(t)
	if ns := hook.Notifications(t); len(ns) != 0 {
		t.Errorf("notifications for an app the operator stopped: %v", ns)
	}
}

// A receiver that is down (it accepts and never answers) delays nothing:
// requests are answered at once while notifications pile up for it, and
// gatehouse stops within the alerts' short flush bound.
func TestAlertsDownReceiverDelaysNothing(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(hang)
		down.Close()
	})
	cfg, _ := harness.FaultApp(t, 1)
	cfg.Alerts = config.NewAlerts()
	rc := config.NewReceiver()
	rc.Name, rc.URL = "down", down.URL
	rc.Timeout = config.Duration(time.Minute)
	cfg.Alerts.Receivers = []*config.Receiver{rc}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)
	// Episodes of made-up certificates, each a notification for the
	// receiver.
	for i := range 500 {
		g.Srv.Events().Emit(telemetry.Event{Type: telemetry.EventCertExpiring, Value: "cert" + strconv.Itoa(i) + ".example"})
	}
	testutil.WaitFor(t, 10*time.Second, "alert events", func() bool { return len(g.Events(telemetry.EventAlert)) > 0 })
	c := client(t, 10*time.Second)
	for i := range 200 {
		start := time.Now()
		if st, _, _ := get(t, c, g.URL+"/"); st != 200 {
			t.Fatalf("request %d answered %d", i, st)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("request %d took %s with the receiver down", i, d)
		}
	}
	start := time.Now()
	g.Stop(t)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("stopping took %s with the receiver down", d)
	}
}
