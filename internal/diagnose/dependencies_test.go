package diagnose_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Findings about what gatehouse reaches beyond the app's processes: its
// own certificates, the DNS entries that find an external pool's members,
// and TLS to external upstreams.

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

// An external HTTPS upstream whose certificate is expired is shown
// unhealthy with the probe's detail, and diagnose names it first, with the
// date and the fix, live and through the admin API.
func TestDetectorUpstreamTLS(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	expiredOn := time.Now().Add(-30 * 24 * time.Hour).UTC()
	addr := testutil.ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{
		ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}, NotBefore: expiredOn.Add(-time.Hour), NotAfter: expiredOn}),
	}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	g, since := start(t, 1, func(_ *config.Config, a *config.App) {
		a.Command = nil
		a.Upstreams = []string{addr}
		a.UpstreamTLS = &config.UpstreamTLS{CAFile: ca.File(t)}
		a.Health.Interval = config.Duration(200 * time.Millisecond)
		a.Health.UnhealthyThreshold = 2
		a.HoldTimeout = config.Duration(200 * time.Millisecond)
	})
	want := "certificate expired on " + expiredOn.Format(time.DateOnly)
	testutil.WaitFor(t, 10*time.Second, "the upstream shown unhealthy with "+want, func() bool {
		in := g.Instances("web")
		return len(in) == 1 && in[0].State == "unhealthy" && in[0].Health == want
	})
	c := client(t, 10*time.Second)
	do(c, http.MethodGet, g.URL+"/")
	f := expectFirst(t, g, since, "upstream_tls", "upstream web-1 ("+addr+"): "+want, "marked unhealthy")
	if f.Severity != diagnose.Critical || !strings.Contains(f.Fix, "renew the certificate") {
		t.Errorf("upstream_tls with no ready upstream: severity %s, fix %q; want critical, renew the certificate", f.Severity, f.Fix)
	}
}

// Each TLS failure a probe names gets its own fix; one that
// insecure_skip_verify lets pass is a warning; a process's instance is
// not an upstream and gets no such finding.
func TestUpstreamTLSFindings(t *testing.T) {
	tests := []struct {
		name     string
		in       supervisor.InstanceStatus
		ready    bool // another upstream is ready
		want     diagnose.Severity
		wantFix  string
		affected int
	}{
		{"expired", upstreamStatus("unhealthy", "certificate expired on 2026-11-30"), false, diagnose.Critical, "renew the certificate that 10.0.0.5:443 serves", 2},
		{"expired while starting", upstreamStatus("starting", "starting: certificate expired on 2026-11-30"), true, diagnose.Warning, "renew", 2},
		{"not yet valid", upstreamStatus("unhealthy", "certificate not yet valid (valid from 2027-01-01)"), true, diagnose.Warning, "clocks", 2},
		{"unknown authority", upstreamStatus("unhealthy", `unknown authority (certificate issued by "Corp CA")`), false, diagnose.Critical, "apps.api.upstream_tls.ca_file", 2},
		{"name mismatch", upstreamStatus("unhealthy", "name mismatch (certificate is for api.example, not 10.0.0.5)"), false, diagnose.Critical, "apps.api.upstream_tls.server_name", 2},
		{"client certificate", upstreamStatus("unhealthy", "client certificate refused: bad certificate"), false, diagnose.Critical, "apps.api.upstream_tls.cert_file and key_file", 2},
		{"plain HTTP", upstreamStatus("unhealthy", "not TLS (the upstream answered plain HTTP)"), false, diagnose.Critical, "speaks plain HTTP", 2},
		{"closed in the handshake", upstreamStatus("unhealthy", "handshake failed: the upstream closed the connection (is it TLS on that port?)"), false, diagnose.Critical, "is it TLS on that port", 2},
		{"insecure_skip_verify", upstreamStatus("ready", "200 OK in 3ms (insecure_skip_verify: certificate expired on 2026-11-30)"), false, diagnose.Warning, "turn apps.api.upstream_tls.insecure_skip_verify off", 2},
		{"not an upstream", supervisor.InstanceStatus{ID: "api-1", PID: 4001, State: "unhealthy", Health: "certificate expired on 2026-11-30"}, false, "", "", 0},
		{"healthy", upstreamStatus("ready", "200 OK in 3ms"), false, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			ev := &diagnose.Evidence{Since: now.Add(-time.Hour), Until: now}
			ins := []diagnose.InstanceSnap{{InstanceStatus: tt.in}}
			if tt.ready {
				ins = append(ins, diagnose.InstanceSnap{InstanceStatus: supervisor.InstanceStatus{ID: "api-2", Upstream: "10.0.0.6:443", State: "ready", Health: "200 OK in 2ms"}})
			}
			ev.State = diagnose.Snapshot{At: now, Apps: []diagnose.AppSnap{{Name: "api", HealthPath: "/healthz", Instances: ins}}}
			ev.Access = []diagnose.Access{
				{Time: now, RequestID: "r1", App: "api", Instance: "api-2", Status: 200, Attempts: 2, RetriedCauses: []string{"upstream_tls"}},
				{Time: now, RequestID: "r2", App: "api", Instance: "api-1", Status: 502, Attempts: 1, Cause: "upstream_tls"},
				{Time: now, RequestID: "r3", App: "api", Instance: "api-2", Status: 200, Attempts: 1},
			}
			ev.Events = []telemetry.Event{{Time: now, App: "api", Instance: "api-1", Type: telemetry.EventUnhealthy, Detail: "10.0.0.5:443: " + tt.in.Health}}
			rep := diagnose.Run(ev)
			var f *diagnose.Finding
			for i := range rep.Findings {
				if rep.Findings[i].ID == "upstream_tls" {
					f = &rep.Findings[i]
				}
			}
			if tt.want == "" {
				if f != nil {
					t.Errorf("finding for %q: %+v", tt.in.Health, *f)
				}
				return
			}
			if f == nil {
				t.Fatalf("no upstream_tls finding for %q:\n%s", tt.in.Health, render(rep))
			}
			title := "upstream api-1 (10.0.0.5:443): " + strings.TrimPrefix(tt.in.Health, "starting: ")
			if tt.name == "insecure_skip_verify" {
				title = "upstream api-1 (10.0.0.5:443): certificate expired on 2026-11-30, accepted only because of insecure_skip_verify"
			}
			if f.Severity != tt.want || !strings.Contains(f.Fix, tt.wantFix) || f.RequestsAffected != tt.affected || f.Instance != "api-1" || f.Title != title {
				t.Errorf("finding %+v\nwant %q, severity %s, a fix with %q, %d requests affected", *f, title, tt.want, tt.wantFix, tt.affected)
			}
		})
	}
}

func upstreamStatus(state, health string) supervisor.InstanceStatus {
	return supervisor.InstanceStatus{ID: "api-1", Upstream: "10.0.0.5:443", State: state, Health: health}
}

// Two upstreams that fail their handshakes at different times: each is
// credited only with the requests whose failed attempt it can have been
// (the access log names where a request ended, not where a retried
// attempt failed), a request that could have failed on either is
// credited to neither but said, and the evidence quotes when the latest
// episode began.
func TestUpstreamTLSCreditsTheUpstreamHit(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const expired = "certificate expired on 2026-11-30"
	marked := func(d time.Duration, id, addr string) telemetry.Event {
		return telemetry.Event{Time: at(d), App: "api", Instance: id, Type: telemetry.EventUnhealthy, Detail: addr + ": " + expired + " (3 failed probes in a row)"}
	}
	healthy := func(d time.Duration, id, addr string) telemetry.Event {
		return telemetry.Event{Time: at(d), App: "api", Instance: id, Type: telemetry.EventHealthy, Detail: addr + ": 200 OK in 2ms"}
	}
	retried := func(d time.Duration, id string, failed int) diagnose.Access {
		a := diagnose.Access{Time: at(d), RequestID: id, App: "api", Instance: "api-3", Status: 200, Attempts: failed + 1, DurationMS: 40}
		for range failed {
			a.RetriedCauses = append(a.RetriedCauses, "upstream_tls")
		}
		return a
	}
	ev := &diagnose.Evidence{Since: t0.Add(-time.Minute), Until: at(time.Hour)}
	ev.State = diagnose.Snapshot{At: at(time.Hour), Apps: []diagnose.AppSnap{{Name: "api", HealthPath: "/healthz", Instances: []diagnose.InstanceSnap{
		{InstanceStatus: supervisor.InstanceStatus{ID: "api-1", Upstream: "10.0.0.5:443", State: "unhealthy", Health: expired}},
		{InstanceStatus: supervisor.InstanceStatus{ID: "api-2", Upstream: "10.0.0.6:443", State: "unhealthy", Health: expired}},
		{InstanceStatus: supervisor.InstanceStatus{ID: "api-3", Upstream: "10.0.0.7:443", State: "ready", Health: "200 OK in 2ms"}},
	}}}}
	ev.Events = []telemetry.Event{
		marked(time.Second, "api-1", "10.0.0.5:443"), healthy(5*time.Minute, "api-1", "10.0.0.5:443"),
		marked(10*time.Minute+time.Second, "api-2", "10.0.0.6:443"), healthy(15*time.Minute, "api-2", "10.0.0.6:443"),
		marked(20*time.Minute+time.Second, "api-1", "10.0.0.5:443"), marked(20*time.Minute+2*time.Second, "api-2", "10.0.0.6:443"),
	}
	ev.Access = []diagnose.Access{
		retried(0, "r1", 1),              // api-1 failing then, api-2 not
		retried(10*time.Minute, "r2", 1), // api-2 failing then, api-1 not
		{Time: at(12 * time.Minute), RequestID: "r3", App: "api", Instance: "api-2", Status: 502, Attempts: 1, Cause: "upstream_tls"},
		retried(20*time.Minute, "r4", 2), // two failed attempts while both failed: one on each
		retried(20*time.Minute, "r5", 1), // one failed attempt while both failed: which is not known
		retried(30*time.Minute, "r6", 0),
	}
	type credit struct {
		Affected int
		Samples  []string
	}
	got := map[string]credit{}
	evidence := map[string]string{}
	rep := diagnose.Run(ev)
	for _, f := range rep.Findings {
		if f.ID == "upstream_tls" {
			got[f.Instance] = credit{f.RequestsAffected, f.SampleRequestIDs}
			evidence[f.Instance] = strings.Join(f.Evidence, "\n")
		}
	}
	want := map[string]credit{"api-1": {2, []string{"r1", "r4"}}, "api-2": {3, []string{"r2", "r3", "r4"}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("requests credited to each upstream (-want +got):\n%s\n%s", d, render(rep))
	}
	for id, addr := range map[string]string{"api-1": "10.0.0.5:443", "api-2": "10.0.0.6:443"} {
		latest := at(20*time.Minute + time.Second)
		if id == "api-2" {
			latest = latest.Add(time.Second)
		}
		for _, w := range []string{
			latest.UTC().Format("15:04:05") + " marked unhealthy (the latest of 2 times since",
			addr + ": " + expired,
			"1 more request was retried after a failed TLS handshake on " + id + " or another failing upstream",
		} {
			if !strings.Contains(evidence[id], w) {
				t.Errorf("%s evidence lacks %q:\n%s", id, w, evidence[id])
			}
		}
	}
}
