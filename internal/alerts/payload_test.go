package alerts

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Each format's body, for a resolved episode.
func TestRender(t *testing.T) {
	n := &Notification{Key: Key{NoReadyInstance, "web", ""}, Status: Resolved, Summary: "web has no ready instance",
		Description: "since 03:00", StartsAt: t0, EndsAt: t0.Add(90 * time.Second)}
	fp := n.Fingerprint()
	text := "[RESOLVED] no_ready_instance web: web has no ready instance (lasted 1m30s)"
	end := t0.Add(90 * time.Second)
	labels := map[string]string{"alertname": "no_ready_instance", "app": "web", "severity": "critical", "source": "gatehouse"}
	ann := map[string]string{"summary": "web has no ready instance", "description": "since 03:00"}
	tests := []struct {
		format string
		into   func() any
		want   any
	}{
		{config.FormatSlack, func() any { return &map[string]string{} }, &map[string]string{"text": text}},
		{config.FormatJSON, func() any { return &jsonBody{} }, &jsonBody{Receiver: "ops", Status: Resolved, Alert: NoReadyInstance, App: "web",
			Severity: "critical", Summary: n.Summary, Description: n.Description, StartsAt: t0, EndsAt: &end, Fingerprint: fp, Text: text}},
		{config.FormatAlertmanager, func() any { return &AMBody{} }, &AMBody{Version: "4", GroupKey: `{}:{alertname="no_ready_instance", app="web"}`,
			Status: Resolved, Receiver: "ops", GroupLabels: map[string]string{"alertname": "no_ready_instance", "app": "web"},
			CommonLabels: labels, CommonAnnotations: ann,
			Alerts: []AMAlert{{Status: Resolved, Labels: labels, Annotations: ann, StartsAt: t0, EndsAt: end, Fingerprint: fp}}}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			r := config.NewReceiver()
			r.Name, r.Format = "ops", tt.format
			b, err := render(r, n)
			if err != nil {
				t.Fatal(err)
			}
			got := tt.into()
			if err := json.Unmarshal(b, got); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	if len(fp) != 16 {
		t.Errorf("fingerprint %q: want 16 hex digits", fp)
	}
}
