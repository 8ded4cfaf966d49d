package diagnose

import (
	"fmt"
	"slices"
	"strings"
	"time"

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
	attributed := map[string]tlsAttribution{} // by app
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
		at, ok := attributed[ai.app.Name]
		if !ok {
			at = attributeTLS(ev, ai.app)
			attributed[ai.app.Name] = at
		}
		affected := at.hit[in.ID]
		title := fmt.Sprintf("upstream %s (%s): %s", in.ID, in.Upstream, what)
		if skipped {
			title += ", accepted only because of insecure_skip_verify"
		}
		f := Finding{
			ID: "upstream_tls", Severity: sev, App: ai.app.Name, Instance: in.ID,
			Title:            title,
			Evidence:         tlsEvidence(ev, ai, detail, skipped, affected, at.unsure[in.ID]),
			Fix:              tlsFix(kind, in.Upstream, ai.app.Name, what, skipped),
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
		}
		f.FirstSeen, f.LastSeen = span(affected)
		out = append(out, f)
	}
	return out
}

// tlsAttribution puts an app's failed TLS handshakes on the upstreams
// they hit: hit by instance; unsure, the requests that may have failed a
// handshake with an instance but may as well have with another.
type tlsAttribution struct {
	hit, unsure map[string][]*Access
}

// attributeTLS attributes the app's failed handshakes. A request that
// failed with upstream_tls names the upstream it failed on (its
// instance). One retried after failed handshakes names only where it
// ended; the access log does not say which upstreams its failed attempts
// hit, but a failed handshake takes its upstream out of rotation and has
// it probed at once, so it is marked unhealthy for a TLS failure soon
// after: those of the other upstreams so marked within tlsLead of the
// request are where it failed. Each failed attempt hit a different
// upstream (a retry goes to one not tried yet): when there are no more
// such upstreams than failed attempts, each of them was hit; when there
// are more, which were is not known, and none is credited.
func attributeTLS(ev *Evidence, app *AppSnap) tlsAttribution {
	at := tlsAttribution{hit: map[string][]*Access{}, unsure: map[string][]*Access{}}
	marked := map[string][]time.Time{} // upstream → when marked unhealthy for TLS
	for _, e := range eventsOf(ev, telemetry.EventUnhealthy) {
		if e.App == app.Name && upstreamtls.DetailKind(e.Detail) != upstreamtls.None {
			marked[e.Instance] = append(marked[e.Instance], e.Time)
		}
	}
	var failing []string // upstreams with a TLS failure, now or in the events
	for _, in := range app.Instances {
		if in.Upstream != "" && (upstreamtls.DetailKind(strings.TrimPrefix(in.Health, "starting: ")) != upstreamtls.None || len(marked[in.ID]) > 0) {
			failing = append(failing, in.ID)
		}
	}
	lead := tlsLead(app)
	for _, a := range accessWhere(ev, func(a *Access) bool { return a.App == app.Name }) {
		if a.Cause == "upstream_tls" && a.Instance != "" {
			at.hit[a.Instance] = append(at.hit[a.Instance], a)
		}
		n := 0
		for _, c := range a.RetriedCauses {
			if c == "upstream_tls" {
				n++
			}
		}
		if n == 0 {
			continue
		}
		end := a.Time.Add(millis(a.DurationMS))
		var near, others []string
		for _, id := range failing {
			if id == a.Instance {
				continue // where it ended, not where it was retried from
			}
			others = append(others, id)
			if slices.ContainsFunc(marked[id], func(t time.Time) bool { return !t.Before(a.Time) && !t.After(end.Add(lead)) }) {
				near = append(near, id)
			}
		}
		if len(near) == 0 {
			near = others // no marking to go by (before the window, or the events rotated)
		}
		into := at.hit
		if len(near) > n {
			into = at.unsure
		}
		for _, id := range near {
			into[id] = append(into[id], a)
		}
	}
	return at
}

// tlsLead bounds how long after a failed handshake its upstream is marked
// unhealthy: ejected, it is probed at once and then at most a second
// apart (each probe within health.timeout) until unhealthy_threshold
// probes in a row have failed.
func tlsLead(app *AppSnap) time.Duration {
	return max(30*time.Second, 5*(time.Second+app.HealthTimeout))
}

func tlsEvidence(ev *Evidence, ai appInstance, detail string, skipped bool, affected, unsure []*Access) []string {
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
	// The latest marking says since when the failure holds; earlier
	// episodes ended with the upstream healthy again.
	var marks []telemetry.Event
	for _, e := range eventsOf(ev, telemetry.EventUnhealthy) {
		if e.App == ai.app.Name && e.Instance == in.ID && upstreamtls.DetailKind(e.Detail) != upstreamtls.None {
			marks = append(marks, e)
		}
	}
	if n := len(marks); n == 1 {
		evd = append(evd, fmt.Sprintf("%s marked unhealthy: %s", clock(marks[0].Time), marks[0].Detail))
	} else if n > 1 {
		evd = append(evd, fmt.Sprintf("%s marked unhealthy (the latest of %d times since %s): %s",
			clock(marks[n-1].Time), n, clock(marks[0].Time), marks[n-1].Detail))
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
	if len(unsure) > 0 {
		evd = append(evd, fmt.Sprintf("%s retried after a failed TLS handshake on %s or another failing upstream (the access log does not name the upstream a retried attempt hit)",
			plural(len(unsure), "more request was", "more requests were"), in.ID))
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
