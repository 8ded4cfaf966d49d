package diagnose

import (
	"fmt"
	"sort"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// dnsLookups: an external pool's DNS entries whose last word is a failed
// lookup: a dns_error with, since, no dns_recovered, no dns_update (an
// answer: a restarted or upgraded gatehouse's lookups start afresh and
// say dns_update first) and no reload of the app (which restarts the
// lookups: one that still fails reports again at once; the entry may be
// gone). Requests still succeed, on the members the last good answer
// had, so nothing else would name it; but the pool no longer follows the
// name: new nodes get no traffic and removed ones keep theirs.
func dnsLookups(ev *Evidence, _ []Finding) []Finding {
	type key struct{ app, entry string }
	open := map[key][]telemetry.Event{}
	for _, e := range eventsOf(ev, telemetry.EventDNSError, telemetry.EventDNSRecovered, telemetry.EventDNSUpdate, telemetry.EventReload) {
		k := key{e.App, e.Value}
		switch e.Type {
		case telemetry.EventDNSError:
			open[k] = append(open[k], e)
		case telemetry.EventReload:
			for o := range open {
				if o.app == e.App {
					delete(open, o)
				}
			}
		default:
			delete(open, k)
		}
	}
	keys := make([]key, 0, len(open))
	for k := range open {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].app < keys[j].app || keys[i].app == keys[j].app && keys[i].entry < keys[j].entry
	})
	var out []Finding
	for _, k := range keys {
		out = append(out, dnsFailing(k.app, k.entry, open[k]))
	}
	return out
}

func dnsFailing(app, entry string, fails []telemetry.Event) Finding {
	first, last := fails[0], fails[len(fails)-1]
	server := last.Trigger
	if server == "" {
		server = "the resolvers"
	}
	f := Finding{
		ID: "dns_lookup_failed", Severity: Warning, App: app, FirstSeen: first.Time, LastSeen: last.Time,
		Evidence: []string{fmt.Sprintf("lookups of %s have failed since %s (%s)", entry, clock(first.Time), plural(len(fails), "report", "reports"))},
		Fix: fmt.Sprintf("check that the resolver address in apps.%s.dns.resolvers (or /etc/resolv.conf without it) is the DNS server's, "+
			"that %s is reachable from this host on UDP and TCP port 53 (firewall, network policy), and that the record name in %s is right "+
			"(dig @SERVER NAME shows what gatehouse is answered); gatehouse retries every dns.min_refresh, and the pool follows the name again once it answers",
			app, server, entry),
	}
	for _, e := range fails[max(0, len(fails)-3):] {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s %s", clock(e.Time), e.Detail))
	}
	kept := "its last good set of members"
	if n, ok := telemetry.DNSKeptOf(last.Detail); ok {
		kept = fmt.Sprintf("the last good set of %s", plural(n, "member", "members"))
		if n == 0 {
			// Never answered: the pool has no member from this entry.
			f.Severity = Critical
		}
	}
	f.Title = fmt.Sprintf("app %s: DNS lookups of %s at %s fail since %s; gatehouse keeps serving %s, and no longer follows the name",
		app, entry, server, clock(first.Time), kept)
	return f
}
