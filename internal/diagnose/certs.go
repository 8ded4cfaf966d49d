package diagnose

import (
	"fmt"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// certificates: the HTTPS listener's certificates, from their events. A
// certificate whose last word is a failure (an ACME order the CA refused,
// files that do not load) or an expiry warning, with no success since,
// is a finding: its clients get failed handshakes or browser warnings
// rather than 5xx, so nothing else would name it.
func certificates(ev *Evidence, _ []Finding) []Finding {
	byName := map[string][]telemetry.Event{}
	for _, e := range eventsOf(ev, telemetry.EventCertObtained, telemetry.EventCertRenewed, telemetry.EventCertReloaded,
		telemetry.EventCertFailed, telemetry.EventCertReloadFailed, telemetry.EventCertExpiring, telemetry.EventCertChainIncomplete) {
		byName[e.Value] = append(byName[e.Value], e)
	}
	// A chain is checked at every load of the files, a start's included:
	// what was found before gatehouse last stopped holds no longer unless
	// found again.
	var restarted time.Time
	for _, e := range eventsOf(ev, telemetry.EventShutdown, telemetry.EventUpgradeBegin) {
		if e.Time.After(restarted) {
			restarted = e.Time
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Finding
	for _, name := range names {
		// Only what came after the last success still holds.
		var open []telemetry.Event
		for _, e := range byName[name] {
			switch e.Type {
			case telemetry.EventCertObtained, telemetry.EventCertRenewed, telemetry.EventCertReloaded:
				open = open[:0]
			default:
				open = append(open, e)
			}
		}
		if f, ok := certFailed(name, open, telemetry.EventCertFailed); ok {
			out = append(out, f)
		}
		if f, ok := certFailed(name, open, telemetry.EventCertReloadFailed); ok {
			out = append(out, f)
		}
		if f, ok := certExpiring(name, open); ok {
			out = append(out, f)
		}
		if f, ok := certChain(name, open, restarted); ok {
			out = append(out, f)
		}
	}
	return out
}

// certChain: a certificate file served without its intermediate. The
// handshake succeeds; verification fails in clients that lack it (most
// non-browser clients, and browsers that never met it).
func certChain(name string, open []telemetry.Event, restarted time.Time) (Finding, bool) {
	var last *telemetry.Event
	for i := range open {
		if open[i].Type == telemetry.EventCertChainIncomplete && open[i].Time.After(restarted) {
			last = &open[i]
		}
	}
	if last == nil {
		return Finding{}, false
	}
	return Finding{
		ID: "certificate_chain_incomplete", Severity: Warning, FirstSeen: last.Time, LastSeen: last.Time,
		Title:    fmt.Sprintf("the certificate for %s is served without its intermediate certificate: clients that lack it fail to verify it", name),
		Evidence: []string{fmt.Sprintf("%s %s", clock(last.Time), last.Detail)},
		Fix: "put the full chain in cert_file: the certificate first, then the intermediate certificate(s) the CA issued with it " +
			"(Let's Encrypt's fullchain.pem, not cert.pem); gatehouse reads the file again within 2 s of a change",
	}, true
}

// acmeFix is what to check when the CA cannot validate a host name.
const acmeFix = "check that %s's DNS (A/AAAA records) points at this host, that ports 80 (http-01) and 443 (tls-alpn-01) " +
	"reach gatehouse's listeners from the internet (firewall, load balancer, port forwarding), and that acme.directory is the CA's " +
	"directory URL; gatehouse retries by itself (1, 2, 2, 5, 10 … minutes apart), so the certificate follows once that is fixed"

func certFailed(name string, open []telemetry.Event, typ string) (Finding, bool) {
	var fails []telemetry.Event
	for _, e := range open {
		if e.Type == typ {
			fails = append(fails, e)
		}
	}
	if len(fails) == 0 {
		return Finding{}, false
	}
	last := fails[len(fails)-1]
	f := Finding{
		ID: "certificate_failed", Severity: Warning, FirstSeen: fails[0].Time, LastSeen: last.Time,
		Evidence: []string{fmt.Sprintf("%s failed since %s", plural(len(fails), "attempt", "attempts"), clock(fails[0].Time))},
	}
	for _, e := range fails[max(0, len(fails)-3):] {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s %s", clock(e.Time), e.Detail))
	}
	switch {
	case typ == telemetry.EventCertFailed && last.Cause == "unknown_authority":
		// gatehouse never reached the CA: its directory's HTTPS
		// certificate is from a CA this host does not trust. DNS and
		// ports play no part yet.
		f.Title = fmt.Sprintf("no certificate for %s: the ACME directory's HTTPS certificate is signed by an authority gatehouse does not trust", name)
		if last.Trigger == "renew" {
			f.Title = fmt.Sprintf("renewing the certificate for %s fails: the ACME directory's HTTPS certificate is signed by an authority gatehouse does not trust", name)
		} else {
			f.Severity = Critical
		}
		f.Fix = "set tls.acme.ca_roots to a PEM file holding the root certificate of the CA that serves acme.directory over HTTPS " +
			"(a private CA's root; for Pebble, the certificate its web front end serves) and run gatehouse reload; " +
			"without ca_roots the system's roots are used, which know only public CAs"
	case typ == telemetry.EventCertReloadFailed:
		f.ID = "certificate_reload_failed"
		f.Title = fmt.Sprintf("the certificate files for %s do not load; the previous certificate is still served", name)
		f.Fix = "make cert_file and key_file a matching PEM pair (the certificate chain, then its private key); gatehouse reads them again when they change and on SIGHUP"
	case last.Trigger == "renew":
		f.Title = fmt.Sprintf("renewing the certificate for %s fails; the current one is served until it expires", name)
		f.Fix = fmt.Sprintf(acmeFix, name)
	default:
		// No certificate at all: every HTTPS handshake for name fails.
		f.Severity = Critical
		f.Title = fmt.Sprintf("no certificate for %s: the ACME CA refused to issue it, so HTTPS handshakes fail", name)
		f.Fix = fmt.Sprintf(acmeFix, name)
		if last.Trigger == "storage" {
			f.Title = fmt.Sprintf("the stored certificate for %s cannot be used", name)
			f.Fix = "look at the files under data_dir/certificates named in the evidence; removing the broken certificate lets gatehouse obtain a new one"
		}
	}
	return f, true
}

func certExpiring(name string, open []telemetry.Event) (Finding, bool) {
	var last *telemetry.Event
	for i := range open {
		if open[i].Type == telemetry.EventCertExpiring {
			last = &open[i]
		}
	}
	if last == nil {
		return Finding{}, false
	}
	f := Finding{
		ID: "certificate_expiring", Severity: Warning, FirstSeen: last.Time, LastSeen: last.Time,
		Title:    fmt.Sprintf("the certificate for %s is about to expire", name),
		Evidence: []string{fmt.Sprintf("%s %s", clock(last.Time), last.Detail)},
		Fix:      fmt.Sprintf("renewal is overdue: "+acmeFix, name),
	}
	file := last.Trigger == "file_expiring" || last.Trigger == "file_expired"
	if last.Trigger == "expired" || last.Trigger == "file_expired" {
		f.Severity = Critical
		f.Title = fmt.Sprintf("the certificate for %s has expired: browsers refuse it", name)
	}
	for _, e := range open {
		if e.Type == telemetry.EventCertReloadFailed || e.Type == telemetry.EventCertFailed {
			return f, true // the failure's finding says what to fix; this one says how urgent it is
		}
	}
	if file {
		f.Fix = "replace cert_file and key_file with a renewed certificate (gatehouse reads them again when they change), or let gatehouse obtain one with tls.acme"
	}
	return f, true
}
