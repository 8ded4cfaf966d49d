package diagnose_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Certificate events become findings while their last word is a failure
// or a warning; a later success closes them.
func TestDetectorCertificates(t *testing.T) {
	now := time.Now()
	ev := func(sec int, typ, name, trigger string) telemetry.Event {
		return telemetry.Event{Time: now.Add(time.Duration(sec) * time.Second), Type: typ, Value: name, Trigger: trigger,
			Detail: fmt.Sprintf("%s: %s %d", name, typ, sec)}
	}
	type got struct {
		ID       string
		Severity diagnose.Severity
		Evidence int
	}
	tests := []struct {
		name   string
		events []telemetry.Event
		want   []got
	}{
		{"obtained after failing", []telemetry.Event{
			ev(1, telemetry.EventCertFailed, "a.test", "obtain"), ev(2, telemetry.EventCertObtained, "a.test", ""),
		}, nil},
		{"never obtained", []telemetry.Event{
			ev(1, telemetry.EventCertFailed, "a.test", "obtain"), ev(2, telemetry.EventCertFailed, "a.test", "obtain"),
			ev(3, telemetry.EventCertFailed, "a.test", "obtain"), ev(4, telemetry.EventCertFailed, "a.test", "obtain"),
		}, []got{{"certificate_failed", diagnose.Critical, 4}}}, // the count and the last 3
		{"renewal failing", []telemetry.Event{
			ev(1, telemetry.EventCertObtained, "a.test", ""), ev(2, telemetry.EventCertFailed, "a.test", "renew"),
		}, []got{{"certificate_failed", diagnose.Warning, 2}}},
		{"renewal failing and expired", []telemetry.Event{
			ev(1, telemetry.EventCertFailed, "a.test", "renew"), ev(2, telemetry.EventCertExpiring, "a.test", "expired"),
		}, []got{{"certificate_expiring", diagnose.Critical, 1}, {"certificate_failed", diagnose.Warning, 2}}},
		{"files broken, then fixed for one name only", []telemetry.Event{
			ev(1, telemetry.EventCertReloadFailed, "a.test", ""), ev(2, telemetry.EventCertReloadFailed, "b.test", ""),
			ev(3, telemetry.EventCertReloaded, "b.test", ""),
		}, []got{{"certificate_reload_failed", diagnose.Warning, 2}}},
		{"file expiring", []telemetry.Event{ev(1, telemetry.EventCertExpiring, "a.test", "file_expiring")},
			[]got{{"certificate_expiring", diagnose.Warning, 1}}},
		{"renewed after the warning", []telemetry.Event{
			ev(1, telemetry.EventCertExpiring, "a.test", "expiring"), ev(2, telemetry.EventCertRenewed, "a.test", ""),
		}, nil},
		{"chain incomplete", []telemetry.Event{
			ev(1, telemetry.EventCertReloaded, "a.test", ""), ev(1, telemetry.EventCertChainIncomplete, "a.test", ""),
		}, []got{{"certificate_chain_incomplete", diagnose.Warning, 1}}},
		{"chain completed by a reload", []telemetry.Event{
			ev(1, telemetry.EventCertChainIncomplete, "a.test", ""), ev(2, telemetry.EventCertReloaded, "a.test", ""),
		}, nil},
		// Every start checks the chain again: one it does not report is
		// complete.
		{"chain incomplete before a restart", []telemetry.Event{
			ev(1, telemetry.EventCertChainIncomplete, "a.test", ""), ev(2, telemetry.EventShutdown, "", ""),
		}, nil},
		{"chain incomplete again after a restart", []telemetry.Event{
			ev(1, telemetry.EventCertChainIncomplete, "a.test", ""), ev(2, telemetry.EventShutdown, "", ""),
			ev(3, telemetry.EventCertChainIncomplete, "a.test", ""),
		}, []got{{"certificate_chain_incomplete", diagnose.Warning, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := diagnose.Run(&diagnose.Evidence{Since: now.Add(-time.Hour), Until: now.Add(time.Minute), Events: tt.events})
			var out []got
			for _, f := range r.Findings {
				out = append(out, got{f.ID, f.Severity, len(f.Evidence)})
				if !strings.Contains(f.Title, "a.test") || f.Fix == "" {
					t.Errorf("finding %s: title %q, fix %q; want the name in the title and a fix", f.ID, f.Title, f.Fix)
				}
			}
			if d := cmp.Diff(tt.want, out); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}
		})
	}
}
