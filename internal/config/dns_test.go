package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidateDNS(t *testing.T) {
	ext := "apps:\n  api:\n    upstreams:\n"
	checkParses(t, []parseCase{
		{"dns, srv and static mixed", ext + "      - dns://web.default.svc.cluster.local:8080\n      - dns+srv://_http._tcp.web.default.svc.cluster.local\n      - 10.0.0.5:8080\n      - api.internal:80\n", nil},
		{"dns with a block", ext + "      - dns://web.internal:8080\n    dns: {resolvers: [\"10.96.0.10:53\", \"10.96.0.11\", \"[fd00::1]:5353\"], min_refresh: 2s, max_refresh: 1m, timeout: 500ms}\n", nil},
		{"dns with upstream_tls", ext + "      - dns://web.internal:8443\n    upstream_tls: {server_name: web.internal}\n", nil},
		{"dns forms", ext + "      - \"dns://web.internal\"\n      - \"dns://web.internal:0\"\n      - \"dns://web.internal:http\"\n      - \"dns://:8080\"\n      - \"dns://10.0.0.5:8080\"\n      - \"dns://we b:80\"\n      - \"dns://a..b:80\"\n",
			[]string{
				`g.yaml:4: apps.api.upstreams[0]: "dns://web.internal" must be dns://NAME:PORT, e.g. "dns://web.default.svc.cluster.local:8080"`,
				`g.yaml:5: apps.api.upstreams[1]: "dns://web.internal:0" has port "0": must be a number from 1 to 65535`,
				`g.yaml:6: apps.api.upstreams[2]: "dns://web.internal:http" has port "http": must be a number from 1 to 65535`,
				`g.yaml:7: apps.api.upstreams[3]: "dns://:8080" has an empty name`,
				`g.yaml:8: apps.api.upstreams[4]: "dns://10.0.0.5:8080" names an IP address, which is not looked up: write it "10.0.0.5:8080"`,
				`g.yaml:9: apps.api.upstreams[5]: "dns://we b:80" has ' ' in its name: use letters, digits, "-" and "_"`,
				`g.yaml:10: apps.api.upstreams[6]: "dns://a..b:80" has a label "": each label between dots is 1 to 63 characters`,
			}},
		{"srv forms", ext + "      - \"dns+srv://web.internal\"\n      - \"dns+srv://_http._tcp.web.internal:80\"\n      - \"dns+srv://_http._tcp\"\n      - \"dns+srv://\"\n      - \"dns+srv://_http.tcp.web\"\n",
			[]string{
				`g.yaml:4: apps.api.upstreams[0]: "dns+srv://web.internal" must be dns+srv://_service._proto.NAME, e.g. "dns+srv://_http._tcp.web.default.svc.cluster.local"`,
				`g.yaml:5: apps.api.upstreams[1]: "dns+srv://_http._tcp.web.internal:80" must not have a port: each SRV record gives its own; write dns+srv://_service._proto.NAME`,
				`g.yaml:6: apps.api.upstreams[2]: "dns+srv://_http._tcp" must be dns+srv://_service._proto.NAME, e.g. "dns+srv://_http._tcp.web.default.svc.cluster.local"`,
				`g.yaml:7: apps.api.upstreams[3]: "dns+srv://" has an empty name`,
				`g.yaml:8: apps.api.upstreams[4]: "dns+srv://_http.tcp.web" must be dns+srv://_service._proto.NAME, e.g. "dns+srv://_http._tcp.web.default.svc.cluster.local"`,
			}},
		{"https:// in front of dns://", ext + "      - \"https://dns://web.internal:8443\"\n",
			[]string{`g.yaml:4: apps.api.upstreams[0]: "https://dns://web.internal:8443": a DNS entry takes no https://: write "dns://web.internal:8443" and add an upstream_tls: block, which its members are spoken to with`}},
		{"https:// static with dns entries", ext + "      - \"dns://web.internal:8443\"\n      - \"https://10.0.0.5\"\n",
			[]string{`g.yaml:5: apps.api.upstreams[1]: TLS is for the whole pool, and upstreams[0] is looked up in DNS, which cannot say https://: write this entry without https:// and add an upstream_tls: block`}},
		{"dns block on a command app", web + "    dns: {timeout: 1s}\n",
			[]string{`g.yaml:4: apps.web.dns: only for an external pool (upstreams:) with dns:// or dns+srv:// entries`}},
		{"dns block without dns entries", ext + "      - 10.0.0.5:80\n    dns: {timeout: 1s}\n",
			[]string{`g.yaml:5: apps.api.dns: only used with dns:// or dns+srv:// entries in upstreams, e.g. "dns://web.internal:8080"`}},
		{"dns block values", ext + "      - dns://web.internal:80\n    dns:\n      resolvers: [\"dns.internal:53\", \"10.0.0.1:0\", \"10.0.0.1:\", \"\"]\n      min_refresh: 0\n      max_refresh: 0s\n      timeout: 0\n",
			[]string{
				`g.yaml:6: apps.api.dns.resolvers[0]: "dns.internal:53" must be an IP address, not a name (a name would need DNS to find the DNS server), e.g. "10.96.0.10:53"`,
				`g.yaml:6: apps.api.dns.resolvers[1]: "10.0.0.1:0" has port "0": must be a number from 1 to 65535`,
				`g.yaml:6: apps.api.dns.resolvers[2]: "10.0.0.1:" has port "": must be a number from 1 to 65535`,
				`g.yaml:6: apps.api.dns.resolvers[3]: "" must be an IP address with an optional port, e.g. "10.96.0.10:53" or "10.96.0.10"`,
				`g.yaml:7: apps.api.dns.min_refresh: must be at least 100ms, got 0s`,
				`g.yaml:8: apps.api.dns.max_refresh: must be > 0`,
				`g.yaml:9: apps.api.dns.timeout: must be > 0`,
			}},
		{"min_refresh above max_refresh", ext + "      - dns://web.internal:80\n    dns: {min_refresh: 1m, max_refresh: 30s}\n",
			[]string{`g.yaml:5: apps.api.dns.max_refresh: 30s is below min_refresh 1m0s`}},
	})
}

// What runs sees the entries parsed, the defaults of an absent dns:
// block, and resolvers with their port.
func TestDNSUpstreamsParsed(t *testing.T) {
	c, err := Parse("g.yaml", []byte("apps:\n  api:\n    upstreams: [\"DNS://Web.Internal:8080\", \"dns+srv://_http._tcp.web.internal.\", \"10.0.0.5:80\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps["api"]
	want := []DNSUpstream{
		{Entry: "DNS://Web.Internal:8080", Name: "web.internal.", Port: 8080},
		{Entry: "dns+srv://_http._tcp.web.internal.", Name: "_http._tcp.web.internal.", SRV: true},
	}
	if d := cmp.Diff(want, a.DNSUpstreams()); d != "" {
		t.Errorf("DNSUpstreams (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"10.0.0.5:80"}, a.StaticUpstreams()); d != "" {
		t.Errorf("StaticUpstreams (-want +got):\n%s", d)
	}
	if d := cmp.Diff(&DNS{MinRefresh: Duration(time.Second), MaxRefresh: Duration(30 * time.Second), Timeout: Duration(2 * time.Second)}, a.DNS); d != "" {
		t.Errorf("DNS defaults (-want +got):\n%s", d)
	}
	c, err = Parse("g.yaml", []byte("apps:\n  api:\n    upstreams: [\"dns://web.internal:8080\"]\n    dns: {resolvers: [\"10.0.0.1\", \"::1\", \"10.0.0.2:5353\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"10.0.0.1:53", "[::1]:53", "10.0.0.2:5353"}, c.Apps["api"].DNS.Resolvers); d != "" {
		t.Errorf("resolvers (-want +got):\n%s", d)
	}
}
