package diagnose_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// A DNS entry whose last word is a failed lookup is a finding, naming the
// app, entry, server, error, since when and the members kept; a later
// recovery closes it.
func TestDetectorDNSLookups(t *testing.T) {
	now := time.Now()
	const entry = "dns://nodes.test:8080"
	failed := func(sec int, app, value string, kept int) telemetry.Event {
		return telemetry.Event{Time: now.Add(time.Duration(sec) * time.Second), App: app, Type: telemetry.EventDNSError,
			Value: value, Trigger: "10.96.0.10:53",
			Detail: "lookup nodes.test. A at 10.96.0.10:53: read udp 10.0.0.2:40000->10.96.0.10:53: i/o timeout; " + telemetry.DNSKept(kept)}
	}
	recovered := func(sec int, app, value string) telemetry.Event {
		return telemetry.Event{Time: now.Add(time.Duration(sec) * time.Second), App: app, Type: telemetry.EventDNSRecovered, Value: value,
			Detail: value + " answers again: 3 members"}
	}
	updated := func(sec int, app, value string) telemetry.Event {
		return telemetry.Event{Time: now.Add(time.Duration(sec) * time.Second), App: app, Type: telemetry.EventDNSUpdate, Value: value,
			Detail: "nodes.test: +10.0.0.7:8080"}
	}
	reloaded := func(sec int, app string) telemetry.Event {
		return telemetry.Event{Time: now.Add(time.Duration(sec) * time.Second), App: app, Type: telemetry.EventReload,
			Detail: "upstreams: " + entry}
	}
	type got struct {
		ID       string
		Severity diagnose.Severity
		App      string
		Evidence int
	}
	tests := []struct {
		name   string
		events []telemetry.Event
		want   []got
	}{
		{"recovered", []telemetry.Event{failed(1, "web", entry, 3), recovered(2, "web", entry)}, nil},
		{"failing", []telemetry.Event{failed(1, "web", entry, 3)}, []got{{"dns_lookup_failed", diagnose.Warning, "web", 2}}},
		{"failing again after a recovery", []telemetry.Event{
			failed(1, "web", entry, 3), recovered(2, "web", entry), failed(3, "web", entry, 3), failed(63, "web", entry, 3),
		}, []got{{"dns_lookup_failed", diagnose.Warning, "web", 3}}},
		{"never answered: no member", []telemetry.Event{failed(1, "web", entry, 0)}, []got{{"dns_lookup_failed", diagnose.Critical, "web", 2}}},
		{"another app's recovery closes nothing", []telemetry.Event{failed(1, "web", entry, 3), recovered(2, "api", entry)},
			[]got{{"dns_lookup_failed", diagnose.Warning, "web", 2}}},
		// A restarted or upgraded gatehouse's lookups start afresh: their
		// first answer is a dns_update, never a dns_recovered.
		{"an answer after the failure closes it", []telemetry.Event{failed(1, "web", entry, 3), updated(2, "web", entry)}, nil},
		// A reload restarts the lookups (the entry may be gone, or the
		// resolvers fixed): one that still fails reports again at once.
		{"a reload of the app closes it", []telemetry.Event{failed(1, "web", entry, 3), reloaded(2, "web")}, nil},
		{"failing again after a reload", []telemetry.Event{failed(1, "web", entry, 3), reloaded(2, "web"), failed(3, "web", entry, 3)},
			[]got{{"dns_lookup_failed", diagnose.Warning, "web", 2}}},
		{"another app's reload closes nothing", []telemetry.Event{failed(1, "web", entry, 3), reloaded(2, "api")},
			[]got{{"dns_lookup_failed", diagnose.Warning, "web", 2}}},
		{"other entries count on their own", []telemetry.Event{
			failed(1, "web", entry, 3), failed(1, "web", "dns://other.test:80", 2), recovered(2, "web", "dns://other.test:80"),
		}, []got{{"dns_lookup_failed", diagnose.Warning, "web", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := diagnose.Run(&diagnose.Evidence{Since: now.Add(-time.Hour), Until: now.Add(2 * time.Minute), Events: tt.events})
			var out []got
			for _, f := range r.Findings {
				out = append(out, got{f.ID, f.Severity, f.App, len(f.Evidence)})
				for _, want := range []string{"web", entry, "10.96.0.10:53", "keeps serving", "since "} {
					if !strings.Contains(f.Title, want) {
						t.Errorf("title %q does not say %q", f.Title, want)
					}
				}
				if !strings.Contains(strings.Join(f.Evidence, "\n"), "i/o timeout") {
					t.Errorf("evidence %q does not give the error", f.Evidence)
				}
				if !strings.Contains(f.Fix, "dns.resolvers") || !strings.Contains(f.Fix, "reachable") || !strings.Contains(f.Fix, "record name") {
					t.Errorf("fix %q: want the resolver address, reachability and the record name", f.Fix)
				}
			}
			if d := cmp.Diff(tt.want, out); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}
		})
	}
	r := diagnose.Run(&diagnose.Evidence{Since: now.Add(-time.Hour), Until: now.Add(time.Minute), Events: []telemetry.Event{failed(1, "web", entry, 3)}})
	if want := "fail since " + now.Add(time.Second).UTC().Format("15:04:05") + "; gatehouse keeps serving the last good set of 3 members"; len(r.Findings) != 1 || !strings.Contains(r.Findings[0].Title, want) {
		t.Errorf("findings %+v: want one whose title says %q", r.Findings, want)
	}
}
