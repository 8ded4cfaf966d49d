package diagnose

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// upstreamTLS: an external upstream spoken to over TLS (upstream_tls:)
// whose handshake fails: its probe names the failure the way a load
// balancer's backend-health page does (certificate expired, unknown
// authority, name mismatch...), and requests sent to it were retried on
// another upstream or failed with upstream_tls. A failure that
// insecure_skip_verify lets pass is reported too, as a warning.
func upstreamTLS(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	for _, ai := range instances(ev) {
		in := ai.in
		detail := strings.TrimPrefix(in.Health, "starting: ")
		kind := upstreamtls.DetailKind(detail)
		if in.Upstream == "" || kind == upstreamtls.None || covered(found, ai.app.Name, in.ID) {
			continue
		}
		// A probe that insecure_skip_verify let pass says
		// "200 OK in 3ms (insecure_skip_verify: certificate expired ...)".
		what, skipped := detail, false
		if _, after, ok := strings.Cut(detail, "(insecure_skip_verify: "); ok {
			what, skipped = strings.TrimSuffix(after, ")"), true
		}
		sev := Warning
		if !skipped && ev.readyCount(ai.app.Name) == 0 {
			sev = Critical
		}
		affected := accessWhere(ev, func(a *Access) bool {
			return a.App == ai.app.Name && (a.Cause == "upstream_tls" && a.Instance == in.ID || slices.Contains(a.RetriedCauses, "upstream_tls"))
		})
		title := fmt.Sprintf("upstream %s (%s): %s", in.ID, in.Upstream, what)
		if skipped {
			title += ", accepted only because of insecure_skip_verify"
		}
		f := Finding{
			ID: "upstream_tls", Severity: sev, App: ai.app.Name, Instance: in.ID,
			Title:            title,
			Evidence:         tlsEvidence(ev, ai, detail, skipped, affected),
			Fix:              tlsFix(kind, in.Upstream, ai.app.Name, what, skipped),
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
		}
		f.FirstSeen, f.LastSeen = span(affected)
		out = append(out, f)
	}
	return out
}

func tlsEvidence(ev *Evidence, ai appInstance, detail string, skipped bool, affected []*Access) []string {
	in := ai.in
	probe := "TLS handshake"
	if ai.app.HealthPath != "" {
		probe = "GET " + ai.app.HealthPath + " over HTTPS"
	}
	evd := []string{fmt.Sprintf("probe %s to %s → %s", probe, in.Upstream, detail)}
	if skipped {
		evd = append(evd, "insecure_skip_verify: true, so the gateway sends it requests all the same")
	} else {
		evd = append(evd, fmt.Sprintf("%s is %s and gets no traffic", in.ID, in.State))
	}
	for _, e := range eventsOf(ev, telemetry.EventUnhealthy) {
		if e.Instance == in.ID && upstreamtls.DetailKind(e.Detail) != upstreamtls.None {
			evd = append(evd, fmt.Sprintf("%s marked unhealthy: %s", clock(e.Time), e.Detail))
			break // the first says since when
		}
	}
	if len(affected) > 0 {
		failed := 0
		for _, a := range affected {
			if a.Cause == "upstream_tls" {
				failed++
			}
		}
		evd = append(evd, fmt.Sprintf("%s met a failed TLS handshake: %d retried on another upstream, %d failed with upstream_tls (502)",
			plural(len(affected), "request", "requests"), len(affected)-failed, failed))
	}
	return evd
}

// tlsFix says what to change for each kind of failure.
func tlsFix(kind upstreamtls.Kind, addr, app, what string, skipped bool) string {
	var fix string
	switch kind {
	case upstreamtls.Expired:
		fix = fmt.Sprintf("renew the certificate that %s serves (%s) and have it serve the new one; gatehouse takes it up at its next probe", addr, what)
	case upstreamtls.NotYetValid:
		fix = fmt.Sprintf("the certificate %s serves is not valid yet: check the clocks of the upstream and of this machine, or serve the previous certificate until then", addr)
	case upstreamtls.UnknownAuthority:
		fix = fmt.Sprintf("set apps.%s.upstream_tls.ca_file to the CA bundle that issued the upstream's certificate (a private CA), or have %s serve its full chain", app, addr)
	case upstreamtls.NameMismatch:
		fix = fmt.Sprintf("set apps.%s.upstream_tls.server_name to a name the certificate is for, or reissue the certificate for the name gatehouse verifies (server_name, else the host in upstreams:)", app)
	case upstreamtls.BadCertificate:
		fix = fmt.Sprintf("the certificate %s serves cannot be used by a TLS server (%s): reissue it for server authentication", addr, what)
	case upstreamtls.ClientCertRefused:
		fix = fmt.Sprintf("%s wants a client certificate it trusts: set apps.%s.upstream_tls.cert_file and key_file to one issued by the CA it trusts, and not expired", addr, app)
	case upstreamtls.NotTLS:
		fix = fmt.Sprintf("%s speaks plain HTTP: point apps.%s.upstreams at its HTTPS port, or remove upstream_tls: if plain HTTP is meant", addr, app)
	default:
		fix = handshakeFix(addr, app, what)
	}
	if skipped {
		fix += fmt.Sprintf("; then turn apps.%s.upstream_tls.insecure_skip_verify off: it hides this from the gateway", app)
	}
	return fix
}

// handshakeFix covers a handshake the upstream refused or broke off.
func handshakeFix(addr, app, detail string) string {
	if strings.Contains(detail, "closed the connection") || strings.Contains(detail, "reset the connection") {
		return fmt.Sprintf("%s dropped the connection during the TLS handshake: is it TLS on that port? Point apps.%s.upstreams at its HTTPS port, or remove upstream_tls:", addr, app)
	}
	return fmt.Sprintf("%s refused the TLS handshake: check its TLS settings (gatehouse offers TLS 1.2 and 1.3, ALPN http/1.1)", addr)
}
