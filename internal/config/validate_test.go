package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// web is the start of a config with one valid app; cases append keys to it
// at four spaces of indent, from line 4 on.
const web = "apps:\n  web:\n    command: x\n"

func TestValidate(t *testing.T) {
	checkParses(t, []parseCase{
		{"valid", web, nil},
		{"at least one app", "listen: \":80\"\napps: {}\n",
			[]string{`g.yaml:2: apps: at least one app is required, e.g. apps: {web: {command: "node server.js"}}`}},
		{"app name", "apps:\n  Web_1:\n    command: x\n  -x:\n    command: x\n",
			[]string{
				`g.yaml:2: apps.Web_1: invalid app name "Web_1": use lowercase letters, digits, "-" and "_", starting with a letter or digit`,
				`g.yaml:2: apps.Web_1.routes: required when there are several apps, e.g. routes: ["/api/"] or ["api.example.com/"]`,
				`g.yaml:4: apps.-x: invalid app name "-x": use lowercase letters, digits, "-" and "_", starting with a letter or digit`,
				`g.yaml:4: apps.-x.routes: required when there are several apps, e.g. routes: ["/api/"] or ["api.example.com/"]`,
			}},
		{"missing command", "apps:\n  web:\n    dir: .\n",
			[]string{`g.yaml:2: apps.web: missing command (or upstreams)`}},
		{"app with no settings", "apps:\n  web:\n",
			[]string{`g.yaml:2: apps.web: missing command (or upstreams)`}},
		{"empty command string", "apps:\n  web:\n    command: \"\"\n",
			[]string{`g.yaml:3: apps.web.command: must not be empty`}},
		{"empty command list", "apps:\n  web:\n    command: []\n",
			[]string{`g.yaml:3: apps.web.command: must not be empty`}},
		{"empty program name", "apps:\n  web:\n    command: [\"\", a]\n",
			[]string{`g.yaml:3: apps.web.command[0]: program name must not be empty`}},
		{"empty upstreams", "apps:\n  web:\n    upstreams: []\n",
			[]string{`g.yaml:3: apps.web.upstreams: must not be empty`}},
		{"command and upstreams exclusive", web + "    upstreams: [\"10.0.0.5:80\"]\n",
			[]string{`g.yaml:4: apps.web.upstreams: command and upstreams are exclusive`}},
		{"upstreams are host:port", "apps:\n  web:\n    upstreams:\n      - 10.0.0.5\n      - \":80\"\n      - h:0\n      - \"[::1]:8080\"\n",
			[]string{
				`g.yaml:4: apps.web.upstreams[0]: "10.0.0.5" must be host:port, e.g. "10.0.0.5:8080"`,
				`g.yaml:5: apps.web.upstreams[1]: ":80" must be host:port, e.g. "10.0.0.5:8080"`,
				`g.yaml:6: apps.web.upstreams[2]: "h:0" must be host:port, e.g. "10.0.0.5:8080"`,
			}},
		{"an upstream listed twice", "apps:\n  web:\n    upstreams:\n      - 10.0.0.5:80\n      - Web.Internal:8080\n      - 10.0.0.5:080\n      - web.internal:8080\n      - \"[::1]:80\"\n      - \"[0:0::1]:80\"\n      - dns://Api.Internal:80\n      - dns://api.internal.:80\n      - 10.0.0.6:80\n",
			[]string{
				`g.yaml:6: apps.web.upstreams[2]: "10.0.0.5:080" is upstreams[0] again: list each upstream once`,
				`g.yaml:7: apps.web.upstreams[3]: "web.internal:8080" is upstreams[1] again: list each upstream once`,
				`g.yaml:9: apps.web.upstreams[5]: "[0:0::1]:80" is upstreams[4] again: list each upstream once`,
				`g.yaml:11: apps.web.upstreams[7]: "dns://api.internal.:80" is upstreams[6] again: list each upstream once`,
			}},
		{"an upstream with and without its scheme", "apps:\n  web:\n    upstreams: [\"http://h:80\", \"h:80\"]\n",
			[]string{`g.yaml:3: apps.web.upstreams[1]: "h:80" is upstreams[0] again: list each upstream once`}},
		{"instances", web + "    instances: 0\n",
			[]string{`g.yaml:4: apps.web.instances: must be between 1 and 256, got 0`}},
		{"instances beyond the bound", web + "    instances: 257\n",
			[]string{`g.yaml:4: apps.web.instances: must be between 1 and 256, got 257`}},
		{"health interval", web + "    health: {interval: 0}\n",
			[]string{`g.yaml:4: apps.web.health.interval: must be > 0`}},
		{"health timeout", web + "    health: {timeout: 0s}\n",
			[]string{`g.yaml:4: apps.web.health.timeout: must be > 0`}},
		{"start_timeout", web + "    start_timeout: 0\n",
			[]string{`g.yaml:4: apps.web.start_timeout: must be > 0`}},
		{"stop_timeout", web + "    stop_timeout: 0\n",
			[]string{`g.yaml:4: apps.web.stop_timeout: must be > 0`}},
		{"request_timeout", web + "    request_timeout: 0ms\n",
			[]string{`g.yaml:4: apps.web.request_timeout: must be > 0`}},
		{"zero hold and idle timeouts are allowed", web + "    hold_timeout: 0\n    idle_timeout: 0\n", nil},
		{"thresholds", web + "    health:\n      unhealthy_threshold: 0\n      healthy_threshold: 0\n",
			[]string{
				`g.yaml:5: apps.web.health.unhealthy_threshold: must be ≥ 1, got 0`,
				`g.yaml:6: apps.web.health.healthy_threshold: must be ≥ 1, got 0`,
			}},
		{"queue_size", web + "    queue_size: 0\n",
			[]string{`g.yaml:4: apps.web.queue_size: must be ≥ 1, got 0`}},
		{"max_inflight negative", web + "    max_inflight: -1\n",
			[]string{`g.yaml:4: apps.web.max_inflight: must be ≥ 0 (0: no limit), got -1`}},
		{"max_inflight 0 and 1 are allowed", web + "    max_inflight: 0\n", nil},
		{"max_inflight 1", web + "    max_inflight: 1\n", nil},
		{"max_attempts low", web + "    max_attempts: 0\n",
			[]string{`g.yaml:4: apps.web.max_attempts: must be between 1 and 10, got 0`}},
		{"max_attempts high", web + "    max_attempts: 11\n",
			[]string{`g.yaml:4: apps.web.max_attempts: must be between 1 and 10, got 11`}},
		{"health path", web + "    health: {path: healthz}\n",
			[]string{`g.yaml:4: apps.web.health.path: "healthz" must start with "/"`}},
		{"routes shape", web + "    routes: [\"/\", api.example.com, \"http://x.com/\", \"api.example.com/\", \"/\"]\n",
			[]string{
				`g.yaml:4: apps.web.routes[1]: "api.example.com" must be "/prefix" or "host/prefix", e.g. "/api/" or "api.example.com/"`,
				`g.yaml:4: apps.web.routes[2]: "http://x.com/": leave out the scheme, e.g. "api.example.com/"`,
				`g.yaml:4: apps.web.routes[4]: duplicate route "/"`,
			}},
		{"route claimed twice", "apps:\n  web:\n    command: x\n    routes: [\"/\"]\n  api:\n    command: y\n    routes:\n      - /api/\n      - /\n",
			[]string{`g.yaml:9: apps.api.routes[1]: route "/" is already claimed by app "web"`}},
		// The gateway compares a request's host, without its port or a
		// trailing dot, to a route's whole host in any case: a route host
		// with a port or a wildcard would match nothing, and two spellings
		// of one host are one route, which only the first app would get.
		{"route host with a port or a wildcard", web + "    routes: [\"api.example.com:8443/\", \"*.example.com/\", \"[::1]:80/\", \"[::1]/\", \"::2/\"]\n",
			[]string{
				`g.yaml:4: apps.web.routes[0]: "api.example.com:8443/": leave out the port, e.g. "api.example.com/": a route takes its host's requests on every listener`,
				`g.yaml:4: apps.web.routes[1]: "*.example.com/": a route's host is one host name, without wildcards; list each host`,
				`g.yaml:4: apps.web.routes[2]: "[::1]:80/": leave out the port, e.g. "api.example.com/": a route takes its host's requests on every listener`,
			}},
		{"route with a path parameter", web + "    routes: [\"/api;v2/\", \"a.example/x;y\"]\n",
			[]string{
				`g.yaml:4: apps.web.routes[0]: "/api;v2/": leave out the path parameter (from ";"): routes match paths without them`,
				`g.yaml:4: apps.web.routes[1]: "a.example/x;y": leave out the path parameter (from ";"): routes match paths without them`,
			}},
		{"route spelt twice", web + "    routes: [\"api.example.com/\", \"API.Example.com./\"]\n",
			[]string{`g.yaml:4: apps.web.routes[1]: duplicate route "API.Example.com./": the same as "api.example.com/" (a host matches in any case, with or without a trailing dot; repeated slashes are one)`}},
		{"route claimed twice in another spelling", "apps:\n  web:\n    command: x\n    routes: [\"www.example.com/\"]\n  api:\n    command: y\n    routes: [\"WWW.example.com./\"]\n",
			[]string{`g.yaml:7: apps.api.routes[0]: route "WWW.example.com./" is already claimed by app "web"`}},
		// The gateway merges a route's repeated slashes, as it does the
		// paths it matches: "/api//" is the route "/api/".
		{"route spelt twice with repeated slashes", web + "    routes: [\"/api/\", \"//api//\"]\n",
			[]string{`g.yaml:4: apps.web.routes[1]: duplicate route "//api//": the same as "/api/" (a host matches in any case, with or without a trailing dot; repeated slashes are one)`}},
		{"route claimed twice with repeated slashes", "apps:\n  web:\n    command: x\n    routes: [\"/api/\"]\n  api:\n    command: y\n    routes: [\"/api//\"]\n",
			[]string{`g.yaml:7: apps.api.routes[0]: route "/api//" is already claimed by app "web"`}},
		{"several apps need routes", "apps:\n  web:\n    command: x\n  api:\n    command: y\n    routes: [/api/]\n",
			[]string{`g.yaml:2: apps.web.routes: required when there are several apps, e.g. routes: ["/api/"] or ["api.example.com/"]`}},
		{"listen and admin", "listen: \"8080\"\nadmin: localhost\n" + web,
			[]string{
				`g.yaml:1: listen: "8080" must be host:port, e.g. ":8080" or "127.0.0.1:9901"`,
				`g.yaml:2: admin: "localhost" must be host:port, e.g. ":8080" or "127.0.0.1:9901"`,
			}},
		// Each listener binds its address: a second one on the same port
		// of an address the first covers fails at run time, held by
		// gatehouse itself.
		{"listeners on one address", "listen: \":8080\"\nadmin: \"127.0.0.1:8080\"\ntls:\n  listen: \"0.0.0.0:8080\"\n  cert_file: c.pem\n  key_file: k.pem\n" + web,
			[]string{
				`g.yaml:2: admin: "127.0.0.1:8080" is also listen's address (":8080"): each listener needs a port of its own`,
				`g.yaml:4: tls.listen: "0.0.0.0:8080" is also listen's address (":8080"): each listener needs a port of its own`,
			}},
		// A clash with a default is reported where the user wrote the
		// other address.
		{"listener on the default admin address", "listen: \"127.0.0.1:9901\"\n" + web,
			[]string{`g.yaml:1: listen: "127.0.0.1:9901" is also admin's address ("127.0.0.1:9901"): each listener needs a port of its own`}},
		// One address in other spellings: a port with a leading zero, an
		// IPv6 address written out.
		{"listeners on one address spelt two ways", "listen: \"[::]:8080\"\nadmin: \"[0:0::0]:08080\"\n" + web,
			[]string{`g.yaml:2: admin: "[0:0::0]:08080" is also listen's address ("[::]:8080"): each listener needs a port of its own`}},
		{"listeners on distinct addresses", "listen: \"10.0.0.1:8080\"\nadmin: \"127.0.0.1:8080\"\ntls:\n  listen: \"[::1]:8080\"\n  cert_file: c.pem\n  key_file: k.pem\n" + web, nil},
		{"listeners on port 0 each get their own", "listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\n" + web, nil},
		{"data_dir", "data_dir: \"\"\n" + web,
			[]string{`g.yaml:1: data_dir: must not be empty`}},
		{"limits defaults are valid", "limits: {}\n" + web + "    limits: {}\n", nil},
		{"limits zeros that mean unlimited or automatic", "limits: {request_body: 0, max_connections: 0}\n" + web + "    limits: {request_body: 0}\n", nil},
		{"limits bounds are inclusive", "limits: {request_head: 1KiB, response_head: 16MiB}\n" + web + "    limits: {response_head: 1024}\n", nil},
		{"limits head sizes", "limits:\n  request_head: 0\n  response_head: 17MiB\n" + web,
			[]string{
				`g.yaml:2: limits.request_head: must be at least 1KiB, got 0`,
				`g.yaml:3: limits.response_head: must be at most 16MiB, got 17MiB`,
			}},
		{"limits max_connections", "limits: {max_connections: -1}\n" + web,
			[]string{`g.yaml:1: limits.max_connections: must be ≥ 0 (0 = automatic), got -1`}},
		{"limits max_connections_per_ip", "limits: {max_connections_per_ip: -2}\n" + web,
			[]string{`g.yaml:1: limits.max_connections_per_ip: must be ≥ 0 (0 = automatic), got -2`}},
		{"limits timeouts", "limits:\n  head_timeout: 0\n  body_timeout: 0s\n  keepalive_timeout: 0\n  send_timeout: 0\n  tunnel_idle_timeout: 0\n" + web,
			[]string{
				`g.yaml:2: limits.head_timeout: must be > 0`,
				`g.yaml:3: limits.body_timeout: must be > 0`,
				`g.yaml:4: limits.keepalive_timeout: must be > 0`,
				`g.yaml:5: limits.send_timeout: must be > 0`,
				`g.yaml:6: limits.tunnel_idle_timeout: must be > 0`,
			}},
		{"limits tunnel_idle_timeout 0s", "limits: {tunnel_idle_timeout: 0s}\n" + web,
			[]string{`g.yaml:1: limits.tunnel_idle_timeout: must be > 0`}},
		{"limits tunnel_idle_timeout negative", "limits:\n  tunnel_idle_timeout: -1s\n" + web,
			[]string{`g.yaml:2: limits.tunnel_idle_timeout: duration "-1s" must not be negative`}},
		{"limits tunnel_idle_timeout needs a unit", "limits: {tunnel_idle_timeout: 60}\n" + web,
			[]string{`g.yaml:1: limits.tunnel_idle_timeout: "60" needs a unit, e.g. 30s`}},
		{"limits tunnel_idle_timeout set", "limits: {tunnel_idle_timeout: 1ms}\n" + web + "    limits: {tunnel_idle_timeout: 24h}\n", nil},
		{"app limits tunnel_idle_timeout 0", web + "    limits:\n      tunnel_idle_timeout: 0\n",
			[]string{`g.yaml:5: apps.web.limits.tunnel_idle_timeout: must be > 0`}},
		{"app limits tunnel_idle_timeout negative", web + "    limits: {tunnel_idle_timeout: -5m}\n",
			[]string{`g.yaml:4: apps.web.limits.tunnel_idle_timeout: duration "-5m" must not be negative`}},
		{"a bad top-level tunnel_idle_timeout is reported once, not per app", "limits: {tunnel_idle_timeout: 0}\n" +
			"apps:\n  web:\n    command: x\n    routes: [/]\n  api:\n    command: y\n    routes: [/api/]\n    limits: {tunnel_idle_timeout: 0}\n",
			[]string{
				`g.yaml:1: limits.tunnel_idle_timeout: must be > 0`,
				`g.yaml:9: apps.api.limits.tunnel_idle_timeout: must be > 0`,
			}},
		{"limits negative request_body", "limits: {request_body: -1MiB}\n" + web,
			[]string{`g.yaml:1: limits.request_body: size "-1MiB" must not be negative`}},
		{"limits unknown key", "limits: {request_header: 8KiB}\n" + web,
			[]string{`g.yaml:1: limits.request_header: unknown key (did you mean "request_head"?)`}},
		{"app limits", web + "    limits:\n      body_timeout: 0\n      response_head: 100\n",
			[]string{
				`g.yaml:5: apps.web.limits.body_timeout: must be > 0`,
				`g.yaml:6: apps.web.limits.response_head: must be at least 1KiB, got 100`,
			}},
		{"app limits only override some keys", web + "    limits: {head_timeout: 10s, max_connections: 10}\n",
			[]string{
				`g.yaml:4: apps.web.limits.head_timeout: unknown key`,
				`g.yaml:4: apps.web.limits.max_connections: unknown key`,
			}},
		{"a bad top-level limit is reported once, not per app", "limits: {body_timeout: 0}\n" +
			"apps:\n  web:\n    command: x\n    routes: [/]\n  api:\n    command: y\n    routes: [/api/]\n",
			[]string{`g.yaml:1: limits.body_timeout: must be > 0`}},
		{"an app writing the same bad value is reported too", "limits: {body_timeout: 0}\n" + web + "    limits: {body_timeout: 0}\n",
			[]string{
				`g.yaml:1: limits.body_timeout: must be > 0`,
				`g.yaml:5: apps.web.limits.body_timeout: must be > 0`,
			}},
		{"limits shape", "limits: 64KiB\n" + web + "    limits: [1]\n",
			[]string{
				`g.yaml:1: limits: must be a mapping, got "64KiB"`,
				`g.yaml:5: apps.web.limits: must be a mapping, got a list`,
			}},
		{"trusted_proxies addresses and ranges", "trusted_proxies: [10.0.0.0/8, 192.0.2.10, \"fd00::/8\", \"2001:db8::1\", 10.1.2.3/16]\n" + web, nil},
		{"trusted_proxies bad entries", "trusted_proxies:\n  - 10.0.0.0/33\n  - example.com\n  - \"\"\n  - \"fe80::1%eth0\"\n  - \"::ffff:10.0.0.0/104\"\n  - \"::ffff:192.0.2.1\"\n" + web,
			[]string{
				`g.yaml:2: trusted_proxies[0]: "10.0.0.0/33" must be an IP address or a CIDR range, e.g. "10.0.0.0/8", "192.0.2.10" or "fd00::/8"`,
				`g.yaml:3: trusted_proxies[1]: "example.com" must be an IP address or a CIDR range, e.g. "10.0.0.0/8", "192.0.2.10" or "fd00::/8"`,
				`g.yaml:4: trusted_proxies[2]: "" must be an IP address or a CIDR range, e.g. "10.0.0.0/8", "192.0.2.10" or "fd00::/8"`,
				`g.yaml:5: trusted_proxies[3]: "fe80::1%eth0" must be an IP address or a CIDR range, e.g. "10.0.0.0/8", "192.0.2.10" or "fd00::/8"`,
				`g.yaml:6: trusted_proxies[4]: "::ffff:10.0.0.0/104" is an IPv4-mapped IPv6 address: write it as IPv4, e.g. "10.0.0.0/8"`,
				`g.yaml:7: trusted_proxies[5]: "::ffff:192.0.2.1" is an IPv4-mapped IPv6 address: write it as IPv4, e.g. "192.0.2.1"`,
			}},
		{"trusted_proxies must be a list", "trusted_proxies: 10.0.0.0/8\n" + web,
			[]string{`g.yaml:1: trusted_proxies: must be a list, got "10.0.0.0/8"`}},
		{"proxy_protocol with trusted_proxies", "proxy_protocol: true\ntrusted_proxies: [10.0.0.0/8]\n" + web, nil},
		{"proxy_protocol without trusted_proxies", "proxy_protocol: true\n" + web,
			[]string{`g.yaml:1: proxy_protocol: needs trusted_proxies: the load balancers allowed to send a PROXY header (a header accepted from anyone would let any client forge its address), e.g. trusted_proxies: ["10.0.0.0/8"]`}},
		{"proxy_protocol with an empty trusted_proxies", "proxy_protocol: true\ntrusted_proxies: []\n" + web,
			[]string{`g.yaml:1: proxy_protocol: needs trusted_proxies: the load balancers allowed to send a PROXY header (a header accepted from anyone would let any client forge its address), e.g. trusted_proxies: ["10.0.0.0/8"]`}},
		{"auto_heal defaults are valid", web + "    auto_heal: {}\n", nil},
		{"auto_heal action", web + "    auto_heal: {action: reboot}\n",
			[]string{`g.yaml:4: apps.web.auto_heal.action: "reboot" must be one of recycle, log_event, custom, dump`}},
		{"auto_heal action dump with a kind", web + "    auto_heal: {action: dump, dump_kind: stacks}\n", nil},
		{"auto_heal action dump takes a core by default", web + "    auto_heal: {action: dump}\n", nil},
		{"auto_heal dump_kind", web + "    auto_heal: {action: dump, dump_kind: memory}\n",
			[]string{`g.yaml:4: apps.web.auto_heal.dump_kind: "memory" must be one of core, stacks, heap`}},
		{"auto_heal dump_kind only with action dump", web + "    auto_heal:\n      dump_kind: core\n",
			[]string{`g.yaml:5: apps.web.auto_heal.dump_kind: only used with action: dump (action is "recycle")`}},
		{"dumps bounds", "dumps: {max_size: 0, max_count: 0, max_age: -1s, drain_timeout: -1s}\n" + web,
			[]string{
				`g.yaml:1: dumps.max_age: duration "-1s" must not be negative`,
				`g.yaml:1: dumps.drain_timeout: duration "-1s" must not be negative`,
				`g.yaml:1: dumps.max_size: must be > 0, e.g. 4GiB`,
				`g.yaml:1: dumps.max_count: must be ≥ 1, got 0`,
			}},
		{"auto_heal custom needs command", web + "    auto_heal:\n      action: custom\n",
			[]string{`g.yaml:4: apps.web.auto_heal.custom: required with action: custom, e.g. ["sh", "-c", "kill -USR2 {pid}"]`}},
		{"auto_heal custom only with action custom", web + "    auto_heal:\n      action: log_event\n      custom: kill {pid}\n",
			[]string{`g.yaml:6: apps.web.auto_heal.custom: only used with action: custom (action is "log_event")`}},
		{"auto_heal max_recycles", web + "    auto_heal:\n      max_recycles: {count: 0, per: 0}\n",
			[]string{
				`g.yaml:5: apps.web.auto_heal.max_recycles.count: must be ≥ 1, got 0`,
				`g.yaml:5: apps.web.auto_heal.max_recycles.per: must be > 0`,
			}},
		{"auto_heal trigger counts and intervals", web + `    auto_heal:
      triggers:
        memory: {private_bytes: 0}
        requests: {count: 0}
        slow_requests:
          - {time_taken: 0, count: 0, interval: 0, path: api}
        status_codes:
          - {count: 0, interval: 0, path: api}
`,
			[]string{
				`g.yaml:6: apps.web.auto_heal.triggers.memory.private_bytes: must be > 0`,
				`g.yaml:7: apps.web.auto_heal.triggers.requests.count: must be ≥ 1, got 0`,
				`g.yaml:7: apps.web.auto_heal.triggers.requests.interval: must be > 0`,
				`g.yaml:9: apps.web.auto_heal.triggers.slow_requests[0].time_taken: must be > 0`,
				`g.yaml:9: apps.web.auto_heal.triggers.slow_requests[0].count: must be ≥ 1, got 0`,
				`g.yaml:9: apps.web.auto_heal.triggers.slow_requests[0].interval: must be > 0`,
				`g.yaml:9: apps.web.auto_heal.triggers.slow_requests[0].path: "api" must start with "/"`,
				`g.yaml:11: apps.web.auto_heal.triggers.status_codes[0].status: required, e.g. "500-599"`,
				`g.yaml:11: apps.web.auto_heal.triggers.status_codes[0].count: must be ≥ 1, got 0`,
				`g.yaml:11: apps.web.auto_heal.triggers.status_codes[0].interval: must be > 0`,
				`g.yaml:11: apps.web.auto_heal.triggers.status_codes[0].path: "api" must start with "/"`,
			}},
		{"auto_heal trigger paths with a parameter", web + `    auto_heal:
      triggers:
        slow_requests:
          - {time_taken: 1s, count: 1, interval: 1m, path: "/api;v=1/"}
        status_codes:
          - {status: 500, count: 1, interval: 1m, path: "/x;y"}
`,
			[]string{
				`g.yaml:7: apps.web.auto_heal.triggers.slow_requests[0].path: "/api;v=1/": leave out the path parameter (from ";"): triggers match paths without them`,
				`g.yaml:9: apps.web.auto_heal.triggers.status_codes[0].path: "/x;y": leave out the path parameter (from ";"): triggers match paths without them`,
			}},
		{"tls with files", "tls:\n  cert_file: site.pem\n  key_file: site.key\n" + web, nil},
		{"tls with acme defaults", "tls:\n  acme:\n    domains: [app.example.com, WWW.example.com.]\n" + web, nil},
		{"tls acme every key", "tls:\n  listen: \"127.0.0.1:8443\"\n  min_version: \"1.3\"\n  hsts: 24h\n  acme:\n    domains: [a.example.com]\n" +
			"    email: ops@example.com\n    directory: https://ca.internal:14000/dir\n    ca_roots: roots.pem\n    challenges: [tls-alpn-01]\n    renew_before: 50%\n" + web, nil},
		{"tls needs a certificate source", "tls:\n  listen: \":8443\"\n" + web,
			[]string{`g.yaml:1: tls: needs a certificate: cert_file and key_file, or acme: {domains: [example.com]}`}},
		{"tls files and acme exclusive", "tls:\n  cert_file: a.pem\n  key_file: a.key\n  acme:\n    domains: [a.example.com]\n" + web,
			[]string{`g.yaml:4: tls.acme: cert_file/key_file and acme are exclusive: use one certificate source`}},
		{"tls cert_file without key_file", "tls:\n  cert_file: a.pem\n" + web,
			[]string{`g.yaml:1: tls.key_file: required with cert_file`}},
		{"tls key_file without cert_file", "tls:\n  key_file: a.key\n" + web,
			[]string{`g.yaml:1: tls.cert_file: required with key_file`}},
		{"tls listen and min_version", "tls:\n  listen: \"8443\"\n  min_version: \"1.1\"\n  cert_file: a.pem\n  key_file: a.key\n" + web,
			[]string{
				`g.yaml:2: tls.listen: "8443" must be host:port, e.g. ":8080" or "127.0.0.1:9901"`,
				`g.yaml:3: tls.min_version: "1.1" must be "1.2" or "1.3"`,
			}},
		{"tls negative hsts", "tls:\n  hsts: -1h\n  cert_file: a.pem\n  key_file: a.key\n" + web,
			[]string{`g.yaml:2: tls.hsts: duration "-1h" must not be negative`}},
		{"acme domains required", "tls:\n  acme:\n    email: a@example.com\n" + web,
			[]string{`g.yaml:2: tls.acme.domains: required, e.g. [example.com, www.example.com]`}},
		{"acme domains must be host names", "tls:\n  acme:\n    domains:\n      - \"*.example.com\"\n      - 10.0.0.5\n      - \"bad_name.example.com\"\n" +
			"      - -x.example.com\n      - example.123\n      - app.example.com\n      - APP.example.com\n" + web,
			[]string{
				`g.yaml:4: tls.acme.domains[0]: "*.example.com": wildcard certificates need the DNS-01 challenge, which gatehouse does not do; list each host name`,
				`g.yaml:5: tls.acme.domains[1]: "10.0.0.5": an IP address; list a host name that resolves to this server`,
				`g.yaml:6: tls.acme.domains[2]: "bad_name.example.com" is not a valid host name, e.g. "app.example.com"`,
				`g.yaml:7: tls.acme.domains[3]: "-x.example.com" is not a valid host name, e.g. "app.example.com"`,
				`g.yaml:8: tls.acme.domains[4]: "example.123" is not a valid host name, e.g. "app.example.com"`,
				`g.yaml:10: tls.acme.domains[6]: duplicate domain "APP.example.com"`,
			}},
		{"acme directory", "tls:\n  acme:\n    domains: [a.example.com]\n    directory: http://ca.internal/dir\n" + web,
			[]string{`g.yaml:4: tls.acme.directory: "http://ca.internal/dir" must be an absolute https URL, e.g. "https://acme-v02.api.letsencrypt.org/directory"`}},
		{"acme relative directory", "tls:\n  acme:\n    domains: [a.example.com]\n    directory: /dir\n" + web,
			[]string{`g.yaml:4: tls.acme.directory: "/dir" must be an absolute https URL, e.g. "https://acme-v02.api.letsencrypt.org/directory"`}},
		{"acme challenges", "tls:\n  acme:\n    domains: [a.example.com]\n    challenges:\n      - http-01\n      - dns-01\n" + web,
			[]string{`g.yaml:6: tls.acme.challenges[1]: "dns-01" must be one of http-01, tls-alpn-01`}},
		{"acme challenges empty", "tls:\n  acme:\n    domains: [a.example.com]\n    challenges: []\n" + web,
			[]string{`g.yaml:4: tls.acme.challenges: must not be empty: offer http-01, tls-alpn-01 or both`}},
		{"acme renew_before", "tls:\n  acme:\n    domains: [a.example.com]\n    renew_before: \"100%\"\n" + web,
			[]string{`g.yaml:4: tls.acme.renew_before: "100%" must be a percentage of the certificate's lifetime from 1% to 99%, e.g. "33%"`}},
		{"acme renew_before without percent", "tls:\n  acme:\n    domains: [a.example.com]\n    renew_before: 30d\n" + web,
			[]string{`g.yaml:4: tls.acme.renew_before: "30d" must be a percentage of the certificate's lifetime from 1% to 99%, e.g. "33%"`}},
		{"upgrades default", web, nil},
		{"upgrades explicit", web + "    upgrades: [websocket, WebSocket2, connect-udp, \"TLS\"]\n", nil},
		{"upgrades empty: none forwarded", web + "    upgrades: []\n", nil},
		{"upgrades h2c is refused", web + "    upgrades:\n      - websocket\n      - h2c\n",
			[]string{`g.yaml:6: apps.web.upgrades[1]: "h2c" is never forwarded: a client could then speak HTTP/2 to the app past every route and limit (for HTTP/2 to gatehouse itself without TLS, set the top-level h2c: true)`}},
		{"upgrades h2c in any case or with a version", web + "    upgrades: [H2C, \"h2c/2\"]\n",
			[]string{
				`g.yaml:4: apps.web.upgrades[0]: "H2C" is never forwarded: a client could then speak HTTP/2 to the app past every route and limit (for HTTP/2 to gatehouse itself without TLS, set the top-level h2c: true)`,
				`g.yaml:4: apps.web.upgrades[1]: "h2c/2" is never forwarded: a client could then speak HTTP/2 to the app past every route and limit (for HTTP/2 to gatehouse itself without TLS, set the top-level h2c: true)`,
			}},
		{"upgrades entries are tokens", web + "    upgrades:\n      - \"web socket\"\n      - \"\"\n      - \"websocket,h2c\"\n      - \"wébsocket\"\n      - \"/13\"\n",
			[]string{
				`g.yaml:5: apps.web.upgrades[0]: "web socket" is not a protocol name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only (an HTTP token), e.g. "websocket"`,
				`g.yaml:6: apps.web.upgrades[1]: "" is not a protocol name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only (an HTTP token), e.g. "websocket"`,
				`g.yaml:7: apps.web.upgrades[2]: "websocket,h2c" is not a protocol name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only (an HTTP token), e.g. "websocket"`,
				`g.yaml:8: apps.web.upgrades[3]: "wébsocket" is not a protocol name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only (an HTTP token), e.g. "websocket"`,
				`g.yaml:9: apps.web.upgrades[4]: "/13" is not a protocol name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only (an HTTP token), e.g. "websocket"`,
			}},
		{"upgrades without a version", web + "    upgrades: [\"websocket/13\"]\n",
			[]string{`g.yaml:4: apps.web.upgrades[0]: "websocket/13": write the protocol name without its version, e.g. "websocket"`}},
		{"upgrades duplicate", web + "    upgrades: [websocket, WebSocket]\n",
			[]string{`g.yaml:4: apps.web.upgrades[1]: duplicate protocol "WebSocket"`}},
		{"upgrades must be a list", web + "    upgrades: websocket\n",
			[]string{`g.yaml:4: apps.web.upgrades: must be a list, got "websocket"`}},
		{"upgrades unknown key", web + "    upgrade: [websocket]\n",
			[]string{`g.yaml:4: apps.web.upgrade: unknown key (did you mean "upgrades"?)`}},
		{"affinity with the default cookie", web + "    affinity: true\n", nil},
		{"affinity with its own cookie", web + "    affinity: true\n    affinity_cookie: \"web.sid_1~\"\n", nil},
		{"affinity_cookie must be a token", web + "    affinity: true\n    affinity_cookie: \"ARR Affinity\"\n",
			[]string{`g.yaml:5: apps.web.affinity_cookie: "ARR Affinity" is not a valid cookie name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only, e.g. "ARRAffinity"`}},
		{"affinity_cookie separators", web + "    affinity: true\n    affinity_cookie: \"a=b;\"\n",
			[]string{`g.yaml:5: apps.web.affinity_cookie: "a=b;" is not a valid cookie name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only, e.g. "ARRAffinity"`}},
		{"affinity_cookie empty", web + "    affinity: true\n    affinity_cookie: \"\"\n",
			[]string{`g.yaml:5: apps.web.affinity_cookie: "" is not a valid cookie name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only, e.g. "ARRAffinity"`}},
		{"affinity_cookie without affinity", web + "    affinity_cookie: sticky\n",
			[]string{`g.yaml:4: apps.web.affinity_cookie: only used with affinity: true`}},
		{"affinity_cookie with affinity off", web + "    affinity: false\n    affinity_cookie: ARRAffinity\n",
			[]string{`g.yaml:5: apps.web.affinity_cookie: only used with affinity: true`}},
		{"two apps with affinity on one host need two cookies", "apps:\n  web:\n    command: x\n    routes: [/]\n    affinity: true\n" +
			"  api:\n    command: y\n    routes: [/api/]\n    affinity: true\n",
			[]string{`g.yaml:6: apps.api.affinity_cookie: "ARRAffinity" is also the affinity cookie of app "web", on the same host: give each app its own name, e.g. affinity_cookie: "ARRAffinityApi"`}},
		{"a host route shares the host-less route's hosts", "apps:\n  web:\n    command: x\n    routes: [/]\n    affinity: true\n    affinity_cookie: s\n" +
			"  api:\n    command: y\n    routes: [api.example.com/]\n    affinity: true\n    affinity_cookie: s\n",
			[]string{`g.yaml:11: apps.api.affinity_cookie: "s" is also the affinity cookie of app "web", on the same host: give each app its own name, e.g. affinity_cookie: "sApi"`}},
		{"one host spelt with a capital and a trailing dot", "apps:\n  web:\n    command: x\n    routes: [www.example.com/]\n    affinity: true\n" +
			"  api:\n    command: y\n    routes: [WWW.Example.com./api/]\n    affinity: true\n",
			[]string{`g.yaml:6: apps.api.affinity_cookie: "ARRAffinity" is also the affinity cookie of app "web", on the same host: give each app its own name, e.g. affinity_cookie: "ARRAffinityApi"`}},
		{"one IPv6 host with and without brackets", "apps:\n  web:\n    command: x\n    routes: [\"[::1]/\"]\n    affinity: true\n" +
			"  api:\n    command: y\n    routes: [\"::1/api/\"]\n    affinity: true\n",
			[]string{`g.yaml:6: apps.api.affinity_cookie: "ARRAffinity" is also the affinity cookie of app "web", on the same host: give each app its own name, e.g. affinity_cookie: "ARRAffinityApi"`}},
		{"apps on different hosts may share a cookie name", "apps:\n  web:\n    command: x\n    routes: [www.example.com/]\n    affinity: true\n" +
			"  api:\n    command: y\n    routes: [API.example.com/]\n    affinity: true\n", nil},
		{"apps with their own cookies", "apps:\n  web:\n    command: x\n    routes: [/]\n    affinity: true\n" +
			"  api:\n    command: y\n    routes: [/api/]\n    affinity: true\n    affinity_cookie: ApiAffinity\n", nil},
		{"only apps with affinity on count", "apps:\n  web:\n    command: x\n    routes: [/]\n    affinity: true\n" +
			"  api:\n    command: y\n    routes: [/api/]\n", nil},
		{"a rate_limit keyed by a request field", web + "    rate_limit: {rate: 10/s, key: \"header:X-Api-Key\"}\n", nil},
		{"a rate_limit keyed by a field the front drops", web + "    rate_limit: {rate: 10/s, key: \"header:X_Api_Key\"}\n",
			[]string{`g.yaml:4: apps.web.rate_limit.key: "header:X_Api_Key" names a field with "_", which gatehouse drops from every request (as nginx does): every request would share one bucket`}},
		{"a rate_limit keying IPv6 clients by their /56", web + "    rate_limit: {rate: 10/s, ipv6_prefix: 56}\n", nil},
		{"a rate_limit keying each IPv6 address", web + "    rate_limit: {rate: 10/s, key: user, ipv6_prefix: 128}\n", nil},
		{"an ipv6_prefix past an address", web + "    rate_limit:\n      rate: 10/s\n      ipv6_prefix: 129\n",
			[]string{`g.yaml:6: apps.web.rate_limit.ipv6_prefix: must be between 1 and 128 (bits of an IPv6 address), got 129`}},
		{"a negative ipv6_prefix", web + "    rate_limit: {rate: 10/s, ipv6_prefix: -1}\n",
			[]string{`g.yaml:4: apps.web.rate_limit.ipv6_prefix: must be between 1 and 128 (bits of an IPv6 address), got -1`}},
		{"an ipv6_prefix of a rate_limit keyed by a field", web + "    rate_limit: {rate: 10/s, key: \"header:X-Api-Key\", ipv6_prefix: 64}\n",
			[]string{`g.yaml:4: apps.web.rate_limit.ipv6_prefix: only used with key: client_ip or user, not "header:X-Api-Key"`}},
		{"an ipv6_prefix of 0", web + "    rate_limit: {rate: 10/s, ipv6_prefix: 0}\n",
			[]string{`g.yaml:4: apps.web.rate_limit.ipv6_prefix: must be between 1 and 128 (bits of an IPv6 address), got 0`}},
		{"an ipv6_prefix of 0 of a rate_limit keyed by a field", web + "    rate_limit: {rate: 10/s, key: \"header:X-Api-Key\", ipv6_prefix: 0}\n",
			[]string{`g.yaml:4: apps.web.rate_limit.ipv6_prefix: only used with key: client_ip or user, not "header:X-Api-Key"`}},
	})
}

func TestLoneAppGetsRootRoute(t *testing.T) {
	c, err := Parse("g.yaml", []byte(web))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(PlainRoutes("/"), c.Apps["web"].Routes); diff != "" {
		t.Errorf("routes mismatch (-want +got):\n%s", diff)
	}
}

// TestValidateInCode: a config built in code has no file or lines, and its
// problems say so by leaving them out.
func TestValidateInCode(t *testing.T) {
	c := Default()
	c.Apps = map[string]*App{"web": NewApp("web")}
	c.Listen = "nope"
	want := []string{
		`listen: "nope" must be host:port, e.g. ":8080" or "127.0.0.1:9901"`,
		`apps.web: missing command (or upstreams)`,
	}
	if diff := cmp.Diff(want, errLines(c.Validate())); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

// TestValidateLimitsInCode: without a file there is no record of which
// keys were written, so an app's limit is checked when it differs from the
// top-level one.
func TestValidateLimitsInCode(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"top-level only", func(c *Config) { c.Limits.RequestHead = 0 },
			[]string{`limits.request_head: must be at least 1KiB, got 0`}},
		{"app differs", func(c *Config) { c.Apps["web"].Limits.BodyTimeout = 0 },
			[]string{`apps.web.limits.body_timeout: must be > 0`}},
		{"app tunnel_idle_timeout differs", func(c *Config) { c.Apps["web"].Limits.TunnelIdleTimeout = 0 },
			[]string{`apps.web.limits.tunnel_idle_timeout: must be > 0`}},
		{"app equals a bad top-level tunnel_idle_timeout", func(c *Config) {
			c.Limits.TunnelIdleTimeout = 0
			c.Apps["web"].Limits.TunnelIdleTimeout = 0
		}, []string{`limits.tunnel_idle_timeout: must be > 0`}},
		{"app equals a bad top-level value", func(c *Config) {
			c.Limits.ResponseHead = 32 << 20
			c.Apps["web"].Limits.ResponseHead = 32 << 20
		}, []string{`limits.response_head: must be at most 16MiB, got 32MiB`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := FromCommand([]string{"x"})
			tt.change(c)
			if diff := cmp.Diff(tt.want, errLines(c.Validate())); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateAffinityInCode: without a file, an affinity cookie that is
// not the default counts as written.
func TestValidateAffinityInCode(t *testing.T) {
	tests := []struct {
		name   string
		change func(a *App)
		want   []string
	}{
		{"defaults", func(*App) {}, nil},
		{"on", func(a *App) { a.Affinity = true }, nil},
		{"cookie without affinity", func(a *App) { a.AffinityCookie = "s" },
			[]string{`apps.web.affinity_cookie: only used with affinity: true`}},
		{"bad cookie", func(a *App) { a.Affinity, a.AffinityCookie = true, "s s" },
			[]string{`apps.web.affinity_cookie: "s s" is not a valid cookie name: use letters, digits and !#$%&'*+-.^_` + "`" + `|~ only, e.g. "ARRAffinity"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := FromCommand([]string{"x"})
			tt.change(c.Apps["web"])
			if diff := cmp.Diff(tt.want, errLines(c.Validate())); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateUpstreamTLS: upstream_tls: is for external pools only, its
// client certificate comes as a pair, and every file it names is read and
// parsed when the config is, a bad one reported at its key's line.
func TestValidateUpstreamTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "Test CA")
	caFile := ca.File(t)
	certFile, keyFile := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"gatehouse"}, Client: true}))
	otherCert, _ := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"other"}, Client: true}))
	garbage := writeFile(t, dir, "garbage.pem", "not a certificate\n")
	keyAsCA := keyFile
	badDER := writeFile(t, dir, "bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	missing := filepath.Join(dir, "missing.pem")
	ext := "apps:\n  api:\n    upstreams: [\"10.0.0.5:443\"]\n    upstream_tls:\n"
	checkParses(t, []parseCase{
		{"empty block: system roots, the upstream's host as name", ext[:len(ext)-1] + " {}\n", nil},
		{"everything", ext + "      server_name: api.internal\n      ca_file: " + caFile + "\n      cert_file: " + certFile + "\n      key_file: " + keyFile + "\n", nil},
		{"not for instances gatehouse runs", web + "    upstream_tls: {server_name: x}\n",
			[]string{`g.yaml:4: apps.web.upstream_tls: only for an external pool (upstreams:): gatehouse speaks plain HTTP on loopback to the instances it runs`}},
		{"server_name is a name", ext + "      server_name: \"https://api.internal:443\"\n",
			[]string{`g.yaml:5: apps.api.upstream_tls.server_name: "https://api.internal:443" must be a host name (or IP address), without scheme or port`}},
		{"server_name may be an IP", ext + "      server_name: \"10.0.0.5\"\n", nil},
		{"cert_file without key_file", ext + "      cert_file: " + certFile + "\n",
			[]string{`g.yaml:4: apps.api.upstream_tls.key_file: required with cert_file: the client certificate's private key`}},
		{"key_file without cert_file", ext + "      key_file: " + keyFile + "\n",
			[]string{`g.yaml:4: apps.api.upstream_tls.cert_file: required with key_file: the client certificate`}},
		{"ca_file missing", ext + "      ca_file: " + missing + "\n",
			[]string{`g.yaml:5: apps.api.upstream_tls.ca_file: cannot read ` + missing + `: no such file or directory`}},
		{"ca_file not PEM", ext + "      ca_file: " + garbage + "\n",
			[]string{`g.yaml:5: apps.api.upstream_tls.ca_file: ` + garbage + ` has no PEM certificate (-----BEGIN CERTIFICATE-----)`}},
		{"ca_file holds a key", ext + "      ca_file: " + keyAsCA + "\n",
			[]string{`g.yaml:5: apps.api.upstream_tls.ca_file: ` + keyAsCA + `: PEM block 1 is a "PRIVATE KEY", want only CERTIFICATE blocks`}},
		{"ca_file certificate does not parse", ext + "      ca_file: " + badDER + "\n",
			[]string{`g.yaml:5: apps.api.upstream_tls.ca_file: ` + badDER + `: certificate 1: x509: malformed certificate`}},
		{"cert_file not PEM", ext + "      cert_file: " + garbage + "\n      key_file: " + keyFile + "\n",
			[]string{`g.yaml:5: apps.api.upstream_tls.cert_file: ` + garbage + ` has no PEM certificate (-----BEGIN CERTIFICATE-----)`}},
		{"key_file missing", ext + "      cert_file: " + certFile + "\n      key_file: " + missing + "\n",
			[]string{`g.yaml:6: apps.api.upstream_tls.key_file: cannot read ` + missing + `: no such file or directory`}},
		{"key_file not a key", ext + "      cert_file: " + certFile + "\n      key_file: " + caFile + "\n",
			[]string{`g.yaml:6: apps.api.upstream_tls.key_file: ` + caFile + ` has no PEM private key (-----BEGIN PRIVATE KEY-----)`}},
		{"key of another certificate", ext + "      cert_file: " + otherCert + "\n      key_file: " + keyFile + "\n",
			[]string{`g.yaml:6: apps.api.upstream_tls.key_file: ` + keyFile + ` does not go with ` + otherCert + `: tls: private key does not match public key`}},
		{"https:// upstreams", "apps:\n  api:\n    upstreams: [\"https://10.0.0.5\", \"https://api.internal:8443/\", \"https://[::1]:9443\"]\n", nil},
		{"https:// upstreams with a block", "apps:\n  api:\n    upstreams: [\"https://10.0.0.5\"]\n    upstream_tls: {server_name: api.internal}\n", nil},
		{"http:// upstreams", "apps:\n  api:\n    upstreams: [\"http://10.0.0.5\", \"10.0.0.6:8080\"]\n", nil},
		{"https:// is for the whole pool", "apps:\n  api:\n    upstreams:\n      - \"https://10.0.0.5\"\n      - \"10.0.0.6:8080\"\n",
			[]string{`g.yaml:5: apps.api.upstreams[1]: TLS is for the whole pool, and upstreams[0] says https://: write every upstream with https://`}},
		{"http:// with upstream_tls", "apps:\n  api:\n    upstreams: [\"http://10.0.0.5\"]\n    upstream_tls: {}\n",
			[]string{`g.yaml:3: apps.api.upstreams[0]: "http://10.0.0.5" says http://, but the app has an upstream_tls: block; write it https://, or without a scheme`}},
		{"upstream URLs are scheme://host:port", "apps:\n  api:\n    upstreams:\n      - \"tcp://10.0.0.5:80\"\n      - \"https://10.0.0.5/api\"\n      - \"https://u@h:1\"\n      - \"https://:443\"\n",
			[]string{
				`g.yaml:4: apps.api.upstreams[0]: "tcp://10.0.0.5:80" must be host:port, or a URL with http:// or https://`,
				`g.yaml:5: apps.api.upstreams[1]: "https://10.0.0.5/api" must be scheme://host[:port], without path, query or user`,
				`g.yaml:6: apps.api.upstreams[2]: "https://u@h:1" must be scheme://host[:port], without path, query or user`,
				`g.yaml:7: apps.api.upstreams[3]: "https://:443" must be scheme://host[:port], without path, query or user`,
			}},
	})
}

// TrustedPrefixes gives each entry as the range it stands for: a bare
// address its full length, a CIDR with its host bits cleared.
func TestTrustedPrefixes(t *testing.T) {
	c, err := Parse("g.yaml", []byte("trusted_proxies: [10.1.2.3/8, 192.0.2.10, \"2001:db8::1\", \"fd00::/8\"]\n"+web))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedPrefixes() {
		got = append(got, p.String())
	}
	want := []string{"10.0.0.0/8", "192.0.2.10/32", "2001:db8::1/128", "fd00::/8"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TrustedPrefixes (-want +got):\n%s", diff)
	}
	if ps := Default().TrustedPrefixes(); ps != nil {
		t.Errorf("default TrustedPrefixes = %v, want none", ps)
	}
}

// TestUpstreamSchemes: an https:// upstream is its host:port (443 by
// default) in an app with upstream_tls:, its defaults when it had none.
func TestUpstreamSchemes(t *testing.T) {
	c, err := Parse("g.yaml", []byte("apps:\n  api:\n    upstreams: [\"https://10.0.0.5\", \"https://api.internal:8443/\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps["api"]
	if diff := cmp.Diff([]string{"10.0.0.5:443", "api.internal:8443"}, a.Upstreams); diff != "" {
		t.Errorf("upstreams (-want +got):\n%s", diff)
	}
	if a.UpstreamTLS == nil || a.UpstreamTLS.ServerName != "" || a.UpstreamTLS.Roots() != nil {
		t.Errorf("upstream_tls = %+v, want the defaults", a.UpstreamTLS)
	}
	if err := c.Validate(); err != nil { // again, as a caller may: nothing changes
		t.Errorf("Validate again: %v", err)
	}
	c, err = Parse("g.yaml", []byte("apps:\n  api:\n    upstreams: [\"http://10.0.0.5\"]\n"))
	if err != nil || c.Apps["api"].Upstreams[0] != "10.0.0.5:80" || c.Apps["api"].UpstreamTLS != nil {
		t.Errorf("http://10.0.0.5: %v, %+v", err, c.Apps["api"])
	}
}

// TestUpstreamTLSFilesParsed: what Validate read is kept, and relative
// paths mean the config file's directory, as Resolve then makes them.
func TestUpstreamTLSFilesParsed(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "Test CA")
	leaf := ca.Issue(t, testutil.Leaf{Names: []string{"gatehouse"}, Client: true})
	certFile, keyFile := testutil.KeyPairFiles(t, leaf)
	for name, src := range map[string]string{"ca.pem": ca.File(t), "client.pem": certFile, "client.key": keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "tls"), name, string(b))
	}
	path := writeFile(t, dir, "gatehouse.yaml", "apps:\n  api:\n    upstreams: [\"10.0.0.5:443\"]\n"+
		"    upstream_tls: {ca_file: tls/ca.pem, cert_file: tls/client.pem, key_file: tls/client.key}\n")
	t.Chdir(t.TempDir()) // elsewhere: the paths are the file's
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	u := c.Apps["api"].UpstreamTLS
	if got, want := u.CAFile, filepath.Join(dir, "tls", "ca.pem"); got != want {
		t.Errorf("ca_file resolved to %q, want %q", got, want)
	}
	if u.Roots() == nil || !u.Roots().Equal(ca.Pool()) {
		t.Errorf("Roots() = %v, want the pool of %s", u.Roots(), ca.Cert.Subject)
	}
	if cc := u.ClientCertificate(); cc == nil || cc.Leaf == nil || !cc.Leaf.Equal(leaf.Leaf) {
		t.Errorf("ClientCertificate() = %+v, want the pair of %s", cc, leaf.Leaf.Subject)
	}
	if err := c.Validate(); err != nil { // again, with absolute paths
		t.Errorf("Validate after Load: %v", err)
	}
}

// parseCase is a config file and the problems Parse finds in it, one a
// line ("file:line: key: what"); nil for none.
type parseCase struct {
	name string
	yaml string
	want []string
}

// checkParses parses each case as g.yaml and checks the problems found.
func checkParses(t *testing.T, tests []parseCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("g.yaml", []byte(tt.yaml))
			if diff := cmp.Diff(tt.want, errLines(err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRouteHost: a route's host is what the gateway compares a request's
// host with (lower-cased, without a trailing dot or port), so a route
// written with a trailing dot or brackets still takes its requests.
func TestRouteHost(t *testing.T) {
	tests := []struct{ match, host, prefix string }{
		{"/api/", "", "/api/"},
		{"API.example.com/v1/", "api.example.com", "/v1/"},
		{"example.com./", "example.com", "/"},
		{"[::1]/", "::1", "/"},
		{"::1/", "::1", "/"},
	}
	for _, tt := range tests {
		r := Route{Match: tt.match}
		if h, p := r.Host(), r.Prefix(); h != tt.host || p != tt.prefix {
			t.Errorf("Route{%q}: Host, Prefix = %q, %q; want %q, %q", tt.match, h, p, tt.host, tt.prefix)
		}
	}
}

// Validating again, as a caller that changes a parsed config in code
// does, accepts the rate limits Parse accepted: what Parse filled in is
// not taken for keys the file wrote.
func TestRateLimitsValidateAgain(t *testing.T) {
	for _, tt := range []struct{ name, yaml string }{
		{"by client", web + "    rate_limit: {rate: 10/s}\n"},
		{"by user, a /56", web + "    rate_limit: {rate: 10/s, key: user, ipv6_prefix: 56}\n"},
		{"by a field", web + "    rate_limit: {rate: 10/s, key: \"header:X-Api-Key\"}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("g.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate again: %v", err)
			}
		})
	}
}
