package diagnose_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// edgeApp is the app the access logs under testdata/edge were written
// for: a rate limit on /api/, forward_auth on /admin/, nothing on /.
func edgeApp() diagnose.Snapshot {
	return diagnose.Snapshot{At: time.Now(), Apps: []diagnose.AppSnap{{
		Name: "web",
		Routes: []diagnose.RouteSnap{
			{Match: "/"},
			{Match: "/api/", RateLimit: "10/s burst 20 key client_ip"},
			{Match: "/admin/", ForwardAuthURL: "http://127.0.0.1:9091/verify", ForwardAuthTimeout: 5 * time.Second},
		},
		Instances: []diagnose.InstanceSnap{{InstanceStatus: supervisor.InstanceStatus{ID: "web-1", State: "ready"}}},
	}}}
}

// What a route's rules refused is a finding when it looks like a setting
// gone wrong (a limit biting a real share, an allow list refusing a
// proxy in front) or when the auth service was not there to ask; a
// few refusals, or refusals spread over many clients, are the rules at
// work.
func TestEdgeRuleFindings(t *testing.T) {
	for _, tt := range []struct {
		log  string // under testdata/edge
		want []diagnose.Finding
	}{
		{"rate_limited_nat.log", []diagnose.Finding{{
			ID: "rate_limited", Severity: diagnose.Warning, App: "web",
			Title: "rate_limit turned away 30% of web's requests",
			Evidence: []string{
				"30 of 100 requests (30%) got 429 rate_limited",
				"route /api/ (rate_limit 10/s burst 20 key client_ip): 30 requests limited",
				"client 203.0.113.7: 30 of its 40 requests limited",
				"5 different users were limited as the one client 203.0.113.7",
			},
			Fix: "most limited requests came from 203.0.113.7: if it is a proxy in front of gatehouse, list it in trusted_proxies so that " +
				"each client its X-Forwarded-For names gets its own bucket; if many users share it (a NAT, an office), key rate_limit on route /api/ " +
				"by user or header:NAME; otherwise raise rate or burst there",
			RequestsAffected: 30,
		}}},
		{"rate_limited_spread.log", []diagnose.Finding{{
			ID: "rate_limited", Severity: diagnose.Warning, App: "web",
			Title: "rate_limit turned away 10% of web's requests",
			Evidence: []string{
				"40 of 400 requests (10%) got 429 rate_limited",
				"route /api/ (rate_limit 10/s burst 20 key client_ip): 40 requests limited",
				"client 192.0.2.1: 4 of its 4 requests limited",
				"client 192.0.2.10: 4 of its 4 requests limited",
				"client 192.0.2.2: 4 of its 4 requests limited",
			},
			Fix:              "if these clients are legitimate, raise rate or burst in rate_limit on route /api/; if not, the limit is working",
			RequestsAffected: 40,
		}}},
		{"rate_limited_few.log", nil},
		{"rate_limited_small_share.log", nil},
		{"auth_unavailable.log", []diagnose.Finding{{
			ID: "auth_unavailable", Severity: diagnose.Critical, App: "web",
			Title: "the forward_auth service gave no answer: 1 request refused with 503",
			Evidence: []string{
				"1 × 503 auth_unavailable: the forward_auth service gave no answer",
				"route /admin/: 1 request, forward_auth http://127.0.0.1:9091/verify (timeout 5s)",
				`auth service http://127.0.0.1:9091/verify gave no answer: Get "http://127.0.0.1:9091/verify": dial tcp 127.0.0.1:9091: connect: connection refused (1 time)`,
			},
			Fix: "check the auth service at http://127.0.0.1:9091/verify answers within its timeout 5s: that it is up and reachable from gatehouse; " +
				"raise forward_auth.timeout only if the service is slow by design",
			RequestsAffected: 1,
		}}},
		{"access_denied_proxy.log", []diagnose.Finding{{
			ID: "access_denied", Severity: diagnose.Warning, App: "web",
			Title: "allow/deny refused 100% of web's requests, from 1 address",
			Evidence: []string{
				"60 of 60 requests (100%) got 403 access_denied",
				"not in allow: 60 requests",
				"from 10.0.0.2: 60 requests",
				"10.0.0.2 is private: a proxy or load balancer in front of gatehouse looks like this",
			},
			Fix: "if 10.0.0.2 is a proxy or load balancer in front of gatehouse, list it in trusted_proxies so that allow and deny see the client " +
				"its X-Forwarded-For names; otherwise the refusals are the rule at work",
			RequestsAffected: 60,
		}}},
		{"access_denied_few_public.log", []diagnose.Finding{{
			ID: "access_denied", Severity: diagnose.Info, App: "web",
			Title: "allow/deny refused 13% of web's requests, from 2 addresses",
			Evidence: []string{
				"26 of 200 requests (13%) got 403 access_denied",
				"deny 203.0.113.0/24: 26 requests",
				"from 203.0.113.7: 13 requests",
				"from 203.0.113.8: 13 requests",
			},
			Fix: "if 203.0.113.7 and 203.0.113.8 are each a proxy or load balancer in front of gatehouse, list them in trusted_proxies so that " +
				"allow and deny see the client its X-Forwarded-For names; otherwise the refusals are the rule at work",
			RequestsAffected: 26,
		}}},
		{"access_denied_spread.log", nil},
	} {
		t.Run(tt.log, func(t *testing.T) {
			ev := loadEdgeLog(t, tt.log)
			rep := diagnose.Run(ev)
			var got []diagnose.Finding
			for _, f := range rep.Findings {
				switch f.ID {
				case "rate_limited", "auth_unavailable", "access_denied":
					got = append(got, f)
				}
			}
			ignore := cmpopts.IgnoreFields(diagnose.Finding{}, "SampleRequestIDs", "FirstSeen", "LastSeen")
			if d := cmp.Diff(tt.want, got, ignore, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("edge findings (-want +got):\n%s", d)
			}
			for _, f := range got {
				if len(f.SampleRequestIDs) == 0 || f.FirstSeen.IsZero() || f.LastSeen.Before(f.FirstSeen) {
					t.Errorf("%s: sample ids %v, first seen %v, last seen %v; want ids and a span", f.ID, f.SampleRequestIDs, f.FirstSeen, f.LastSeen)
				}
			}
			if len(tt.want) > 0 && tt.want[0].Severity == diagnose.Critical && len(got) > 0 && rep.Findings[0].ID != tt.want[0].ID {
				t.Errorf("first finding %s; want the critical %s first:\n%s", rep.Findings[0].ID, tt.want[0].ID, render(rep))
			}
		})
	}
}

// loadEdgeLog reads testdata/edge/name as a data dir's access log, with
// edgeApp's snapshot, the way `gatehouse diagnose` reads a data dir.
func loadEdgeLog(t *testing.T, name string) *diagnose.Evidence {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "edge", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "access.log"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := edgeApp().Write(dir); err != nil {
		t.Fatal(err)
	}
	ev, err := diagnose.Load(dir, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
