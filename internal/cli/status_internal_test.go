package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// gatehouse status says, per autoscaled app, its bounds, the count it
// wants, whether it is at max, and its last decision.
func TestStatusPrintsAutoscale(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	st := &admin.StatusResponse{Apps: []supervisor.AppStatus{
		{Name: "web", Instances: []supervisor.InstanceStatus{}, Autoscale: &supervisor.AutoscaleStatus{
			Min: 1, Max: 4, Desired: 4, AtMax: true,
			LastDecision: "at max: inflight_per_instance 16 > 4 for 1s", LastDecisionAt: now.Add(-12 * time.Second)}},
		{Name: "api", Instances: []supervisor.InstanceStatus{}, Autoscale: &supervisor.AutoscaleStatus{Min: 2, Max: 6, Desired: 2}},
		{Name: "plain", Instances: []supervisor.InstanceStatus{}},
	}}
	var b strings.Builder
	printAutoscale(&b, st, now)
	want := "autoscale web: min 1, max 4, desired 4; AT MAX (a scale-out rule still holds); last: at max: inflight_per_instance 16 > 4 for 1s (12s ago)\n" +
		"autoscale api: min 2, max 6, desired 2\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("autoscale lines (-want +got):\n%s", diff)
	}
}

// gatehouse status says, per app, its last recycle: the instance, its
// replacement, when, and why, so that an instance replaced for staying
// unhealthy (or any auto-heal trigger) is seen without reading events.
func TestStatusPrintsLastRecycle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	st := &admin.StatusResponse{Apps: []supervisor.AppStatus{
		{Name: "web", Instances: []supervisor.InstanceStatus{}, LastRecycle: &supervisor.RecycleStatus{
			Instance: "web-1", Replacement: "web-3", At: now.Add(-5 * time.Minute),
			Reason: "auto-heal unhealthy: unhealthy for 1h0m0s (health.recycle_after 1h0m0s); last probe: 503 Service Unavailable in 2ms"}},
		{Name: "api", Instances: []supervisor.InstanceStatus{}},
	}}
	var b strings.Builder
	printRecycles(&b, st, now)
	want := "last recycle web: web-1 replaced by web-3 5m0s ago: auto-heal unhealthy: unhealthy for 1h0m0s (health.recycle_after 1h0m0s); last probe: 503 Service Unavailable in 2ms\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("recycle lines (-want +got):\n%s", diff)
	}
}

// gatehouse status lists the HTTPS listener's certificates after the
// instances: where each comes from, when it ends, and its last failure.
func TestStatusPrintsCertificates(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	st := &admin.StatusResponse{Certificates: []certs.Status{
		{Names: []string{"app.example.com"}, Managed: true, Issuer: "Pebble Intermediate CA", NotAfter: now.Add(60*24*time.Hour + time.Hour)},
		{Names: []string{"api.example.com"}, Managed: true, LastError: "obtaining: dial tcp: connection refused"},
		{Names: []string{"old.example.com"}, CertFile: "/etc/old.pem", Issuer: "Old CA", NotAfter: now.Add(-time.Hour)},
		{Names: []string{"soon.example.com"}, CertFile: "/etc/soon.pem", Issuer: "Old CA", NotAfter: now.Add(5 * time.Hour)},
	}}
	var b strings.Builder
	printStatus(&b, st, now)
	testutil.Golden(t, "testdata/status_certificates.golden", b.String())
}

// gatehouse status shows each instance's CPU use, as the JSON has it
// ("-" before it could be measured), and counts held requests in words
// that agree with the number.
func TestStatusPrintsCPUAndHeldRequests(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	busy := 37.5
	st := &admin.StatusResponse{Apps: []supervisor.AppStatus{
		{Name: "web", Waiting: 1, Instances: []supervisor.InstanceStatus{
			{ID: "web-1", PID: 4242, Port: 5001, State: "ready", Health: "200 in 3ms", StartedAt: now.Add(-time.Minute),
				Inflight: 1, RSSBytes: 64 << 20, CPUPercent: &busy},
			{ID: "web-2", PID: 4243, Port: 5002, State: "starting", StartedAt: now.Add(-time.Second)},
		}},
		{Name: "api", Waiting: 3, Instances: []supervisor.InstanceStatus{}},
	}}
	var b strings.Builder
	printStatus(&b, st, now)
	testutil.Golden(t, "testdata/status_instances.golden", b.String())
}
