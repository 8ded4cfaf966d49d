package diagnose_test

import (
	"crypto/tls"
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

// An external HTTPS upstream whose certificate is expired is shown
// unhealthy with the probe's detail, and diagnose names it first, with the
// date and the fix, live and through the admin API.
func TestDetectorUpstreamTLS(t *testing.T) {
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
