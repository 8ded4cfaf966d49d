package probe_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/upstreamtlstest"
)

// The probe of an upstream with upstream_tls: is HTTPS (or, without a
// health path, a TLS handshake), and its detail names what is wrong with
// TLS as a load balancer's backend-health page does.
func TestCheckTLSDetail(t *testing.T) {
	ca, other := testutil.NewCA(t, "Test CA"), testutil.NewCA(t, "Other CA")
	loopback := []string{"127.0.0.1"}
	healthz := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusNotFound)
		}
	})
	serve := func(c tls.Certificate) string {
		return testutil.ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{c}}, healthz)
	}
	expiredOn := time.Now().Add(-72 * time.Hour).UTC()
	validFrom := time.Now().Add(72 * time.Hour).UTC()
	valid := serve(ca.Issue(t, testutil.Leaf{Names: loopback}))
	expired := serve(ca.Issue(t, testutil.Leaf{Names: loopback, NotBefore: expiredOn.Add(-time.Hour), NotAfter: expiredOn}))
	mtls := upstreamtlstest.ClientCertRequired(t, ca, healthz)
	certFile, keyFile := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"gatehouse"}, Client: true}))
	stalled := upstreamtlstest.Stalled(t)
	plain := server(t, status(200))

	trust := upstreamtlstest.Validated(t, config.UpstreamTLS{CAFile: ca.File(t)})
	withClient := upstreamtlstest.Validated(t, config.UpstreamTLS{CAFile: ca.File(t), CertFile: certFile, KeyFile: keyFile})
	insecure := upstreamtlstest.Validated(t, config.UpstreamTLS{CAFile: ca.File(t), InsecureSkipVerify: true})
	http := probe.Spec{Path: "/healthz", Timeout: 2 * time.Second, Status: okRange}
	handshake := probe.Spec{Timeout: 2 * time.Second}
	expiredDetail := "certificate expired on " + expiredOn.Format(time.DateOnly)
	required := `client certificate refused: certificate required \(the upstream wants one, and none it accepts was sent\)`
	tests := []struct {
		name        string
		addr        string
		spec        probe.Spec
		u           *config.UpstreamTLS
		wantOK      bool
		wantCode    int
		wantDetail  string // a regexp
		wantTimeout bool
	}{
		{"valid", valid, http, trust, true, 200, `^200 OK in \d+ms$`, false},
		{"valid, handshake only", valid, handshake, trust, true, 0, `^tls handshake ok in \d+ms$`, false},
		{"expired", expired, http, trust, false, 0, "^" + expiredDetail + "$", false},
		{"expired, handshake only", expired, handshake, trust, false, 0, "^" + expiredDetail + "$", false},
		{"not yet valid", serve(ca.Issue(t, testutil.Leaf{Names: loopback, NotBefore: validFrom, NotAfter: validFrom.Add(time.Hour)})), http, trust,
			false, 0, `^certificate not yet valid \(valid from ` + validFrom.Format(time.DateOnly) + `\)$`, false},
		{"wrong name", serve(ca.Issue(t, testutil.Leaf{Names: []string{"api.example"}})), http, trust,
			false, 0, `^name mismatch \(certificate is for api\.example, not 127\.0\.0\.1\)$`, false},
		{"signed by another CA", serve(other.Issue(t, testutil.Leaf{Names: loopback})), http, trust,
			false, 0, `^unknown authority \(certificate issued by "Other CA"\)$`, false},
		{"client certificate required", mtls, http, trust, false, 0, "^" + required + "$", false},
		{"client certificate required, handshake only", mtls, handshake, trust, false, 0, "^" + required + "$", false},
		{"client certificate presented", mtls, http, withClient, true, 200, `^200 OK in \d+ms$`, false},
		{"client certificate presented, handshake only", mtls, handshake, withClient, true, 0, `^tls handshake ok in \d+ms$`, false},
		{"plain HTTP", plain, http, trust, false, 0, `^not TLS \(the upstream answered plain HTTP\)$`, false},
		{"the handshake never ends", stalled, probe.Spec{Path: "/healthz", Timeout: 300 * time.Millisecond, Status: okRange}, trust,
			false, 0, `^timeout after 300ms on GET /healthz$`, true},
		{"insecure_skip_verify passes, and still says what is wrong", expired, http, insecure,
			true, 200, `^200 OK in \d+ms \(insecure_skip_verify: ` + expiredDetail + `\)$`, false},
	}
	p := probe.New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			s.TLS = tc.u
			r := p.Check(context.Background(), tc.addr, s)
			if r.OK != tc.wantOK || r.Code != tc.wantCode || r.TimedOut != tc.wantTimeout || r.Refused {
				t.Errorf("Check = %+v, want OK:%v Code:%d TimedOut:%v", r, tc.wantOK, tc.wantCode, tc.wantTimeout)
			}
			if !regexp.MustCompile(tc.wantDetail).MatchString(r.Detail) {
				t.Errorf("Detail = %q, want match for %q", r.Detail, tc.wantDetail)
			}
		})
	}
}

// server_name is the probe's SNI and Host: the virtual host the
// certificate is for, whatever address the upstream is reached at.
func TestCheckTLSServerName(t *testing.T) {
	ca := testutil.NewCA(t, "Test CA")
	type seen struct{ sni, host string }
	got := make(chan seen, 1)
	addr := testutil.ServeHTTPS(t, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, testutil.Leaf{Names: []string{"api.internal"}})}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- seen{r.TLS.ServerName, r.Host} }))
	r := probe.New().Check(context.Background(), addr, probe.Spec{Path: "/healthz", Timeout: 2 * time.Second, Status: okRange,
		TLS: upstreamtlstest.Validated(t, config.UpstreamTLS{CAFile: ca.File(t), ServerName: "api.internal"})})
	if !r.OK {
		t.Fatalf("Check = %+v", r)
	}
	if s := <-got; s != (seen{"api.internal", "api.internal"}) {
		t.Errorf("the upstream saw SNI %q and Host %q, want api.internal for both", s.sni, s.host)
	}
}
