package supervisor_test

// An external pool whose members are found in DNS, with a real DNS server
// whose records the tests change, real upstream servers on distinct
// loopback addresses, and the gateway in front.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/dnstest"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// node is an upstream server on its own loopback address. Its health
// endpoint fails until it is made healthy, and it records when it first
// passed a probe and when it first served a request.
type node struct {
	ip, addr  string
	healthy   atomic.Bool
	probes    atomic.Int64
	requests  atomic.Int64
	mu        sync.Mutex
	firstPass time.Time
	firstReq  time.Time
}

func (n *node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if r.URL.Path == "/healthz" {
		n.probes.Add(1)
		if !n.healthy.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		n.mu.Lock()
		if n.firstPass.IsZero() {
			n.firstPass = now
		}
		n.mu.Unlock()
		io.WriteString(w, "ok")
		return
	}
	n.requests.Add(1)
	n.mu.Lock()
	if n.firstReq.IsZero() {
		n.firstReq = now
	}
	n.mu.Unlock()
	if r.URL.Path == "/echo" {
		io.Copy(w, r.Body)
		return
	}
	io.WriteString(w, n.ip)
}

func (n *node) times() (firstPass, firstReq time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.firstPass, n.firstReq
}

// startNodes starts one node on each of ips (127.0.0.x, which Linux
// routes to loopback without setup), all on one port, as the members of
// a dns:// name are. They are healthy unless said otherwise.
func startNodes(t *testing.T, ips ...string) (map[string]*node, int) {
	t.Helper()
	for range 20 {
		lns, port, err := listenAll(ips)
		if err != nil {
			continue
		}
		nodes := map[string]*node{}
		for i, ip := range ips {
			n := &node{ip: ip, addr: net.JoinHostPort(ip, strconv.Itoa(port))}
			n.healthy.Store(true)
			srv := &http.Server{Handler: n}
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = srv.Serve(lns[i])
			}()
			t.Cleanup(func() {
				srv.Close()
				<-done
			})
			nodes[ip] = n
		}
		return nodes, port
	}
	t.Fatalf("no port free on all of %v", ips)
	return nil, 0
}

func listenAll(ips []string) ([]net.Listener, int, error) {
	first, err := net.Listen("tcp", ips[0]+":0")
	if err != nil {
		return nil, 0, err
	}
	port := first.Addr().(*net.TCPAddr).Port
	lns := []net.Listener{first}
	for _, ip := range ips[1:] {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, 0, err
		}
		lns = append(lns, ln)
	}
	return lns, port, nil
}

// dnsPool returns a config whose app web is the pool of entries, looked
// up at srv with short refresh times.
func dnsPool(t *testing.T, srv *dnstest.Server, entries ...string) (*config.Config, *config.App) {
	cfg, app := harness.FaultApp(t, 1)
	app.Command = nil
	app.Upstreams = entries
	tune(app)
	app.Health.Interval = config.Duration(150 * time.Millisecond)
	app.DNS = config.NewDNS()
	app.DNS.Resolvers = []string{srv.Addr}
	app.DNS.MinRefresh, app.DNS.MaxRefresh = config.Duration(100*time.Millisecond), config.Duration(time.Second)
	app.DNS.Timeout = config.Duration(time.Second)
	return cfg, app
}

// members are the upstream addresses of web's instances in state (any
// when ""), sorted.
func members(g *harness.Gatehouse, state string) []string {
	var out []string
	for _, in := range g.Instances("web") {
		if state == "" || in.State == state {
			out = append(out, in.Upstream)
		}
	}
	slices.Sort(out)
	return out
}

func waitMembers(t *testing.T, g *harness.Gatehouse, state string, want ...string) {
	t.Helper()
	slices.Sort(want)
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("members %v %s", want, state), func() bool {
		return slices.Equal(members(g, state), want)
	})
}

func waitDNSEvent(t *testing.T, g *harness.Gatehouse, typ, contains string) telemetry.Event {
	t.Helper()
	var found telemetry.Event
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("%s event with %q", typ, contains), func() bool {
		for _, e := range g.Events(typ) {
			if strings.Contains(e.Detail, contains) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// Records change under load: a member added and another removed lose no
// request; the new member gets none before its probe passed, the removed
// one none once it left the pool.
func TestDNSPoolFollowsRecordsUnderLoad(t *testing.T) {
	srv := dnstest.Start(t)
	nodes, port := startNodes(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	addr := func(ip string) string { return nodes[ip].addr }
	srv.Set(t, "nodes.test", "nodes.test. 1 IN A 127.0.0.2", "nodes.test. 1 IN A 127.0.0.3")
	entry := fmt.Sprintf("dns://nodes.test:%d", port)
	cfg, _ := dnsPool(t, srv, entry)
	g := harness.Start(t, cfg)
	waitMembers(t, g, "ready", addr("127.0.0.2"), addr("127.0.0.3"))
	for _, in := range g.Instances("web") {
		if in.Source != entry {
			t.Errorf("%s (%s): source %q, want %q", in.ID, in.Upstream, in.Source, entry)
		}
	}

	l := startLoad(t, g.URL, 8)
	testutil.WaitFor(t, 10*time.Second, "load to run", func() bool { return l.total.Load() > 100 })
	n4 := nodes["127.0.0.4"]
	n4.healthy.Store(false)
	srv.Set(t, "nodes.test", "nodes.test. 1 IN A 127.0.0.2", "nodes.test. 1 IN A 127.0.0.4")
	waitDNSEvent(t, g, telemetry.EventDNSUpdate, fmt.Sprintf("nodes.test: +%s -%s", addr("127.0.0.4"), addr("127.0.0.3")))
	waitMembers(t, g, "", addr("127.0.0.2"), addr("127.0.0.4"))
	n3 := nodes["127.0.0.3"]
	gone := n3.requests.Load()
	// The new member is probed, failing, while the load runs: it must
	// get nothing until it passes.
	testutil.WaitFor(t, 10*time.Second, "3 failed probes of the new member", func() bool { return n4.probes.Load() >= 3 })
	if n := n4.requests.Load(); n != 0 {
		t.Errorf("the new member served %d requests before its probe passed", n)
	}
	n4.healthy.Store(true)
	waitMembers(t, g, "ready", addr("127.0.0.2"), addr("127.0.0.4"))
	testutil.WaitFor(t, 10*time.Second, "the new member to serve", func() bool { return n4.requests.Load() >= 50 })
	l.requireNoFailures(t, "a DNS change adding one member and removing another")

	pass, req := n4.times()
	if req.Before(pass) {
		t.Errorf("the new member served its first request at %s, before its first passing probe at %s",
			req.Format("15:04:05.000"), pass.Format("15:04:05.000"))
	}
	if n := n3.requests.Load(); n != gone {
		t.Errorf("the removed member served %d requests after it left the pool", n-gone)
	}
	if evs := g.Events(telemetry.EventDNSUpdate); len(evs) != 2 {
		t.Errorf("%d dns_update events, want 2 (the first answer and the change): only a change is one\n%s", len(evs), describeEvents(evs))
	}
}

// A resolver that fails keeps the members it last found; gatehouse says
// so, once, and says when it answers again. An empty answer, though, is
// an answer: no members.
func TestDNSFailureKeepsMembers(t *testing.T) {
	srv := dnstest.Start(t)
	nodes, port := startNodes(t, "127.0.0.2", "127.0.0.3")
	srv.Set(t, "_http._tcp.nodes.test",
		fmt.Sprintf("_http._tcp.nodes.test. 1 IN SRV 0 0 %d a.nodes.test.", port),
		fmt.Sprintf("_http._tcp.nodes.test. 1 IN SRV 0 0 %d b.nodes.test.", port))
	srv.Set(t, "a.nodes.test", "a.nodes.test. 1 IN A 127.0.0.2")
	srv.Set(t, "b.nodes.test", "b.nodes.test. 1 IN A 127.0.0.3")
	entry := "dns+srv://_http._tcp.nodes.test"
	cfg, _ := dnsPool(t, srv, entry)
	g := harness.Start(t, cfg)
	both := []string{nodes["127.0.0.2"].addr, nodes["127.0.0.3"].addr}
	waitMembers(t, g, "ready", both...)

	for _, tt := range []struct {
		name string
		fail func(on bool)
	}{
		{"SERVFAIL", func(on bool) { srv.Fail(map[bool]int{true: dns.RcodeServerFailure}[on]) }},
		{"timeout", srv.Silence},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, recovered := len(g.Events(telemetry.EventDNSError)), len(g.Events(telemetry.EventDNSRecovered))
			tt.fail(true)
			testutil.WaitFor(t, 15*time.Second, "a dns_error event", func() bool { return len(g.Events(telemetry.EventDNSError)) > before })
			e := g.Events(telemetry.EventDNSError)[before]
			t.Logf("dns_error: %s", e.Detail)
			if e.App != "web" || e.Value != entry || e.Trigger != srv.Addr || !strings.Contains(e.Detail, "keeping the last good set of 2 members") {
				t.Errorf("dns_error %+v: want app web, value %q, trigger %q and the 2 members kept", e, entry, srv.Addr)
			}
			// Several retries at min_refresh (100ms): members stay,
			// requests succeed, and the failure is told once.
			c := harness.Client(5 * time.Second)
			defer c.CloseIdleConnections()
			queried, _ := srv.Queries()
			sent := 0
			testutil.WaitFor(t, 20*time.Second, "10 requests and 3 more lookups while DNS fails", func() bool {
				resp, err := c.Get(g.URL + "/")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("GET / while DNS fails: %d", resp.StatusCode)
				}
				sent++
				all, _ := srv.Queries()
				return sent >= 10 && all >= queried+3
			})
			if d := cmp.Diff(both, members(g, "ready")); d != "" {
				t.Errorf("members while DNS fails (-want +got):\n%s", d)
			}
			if n := len(g.Events(telemetry.EventDNSError)) - before; n != 1 {
				t.Errorf("%d dns_error events for one failure, want 1", n)
			}
			tt.fail(false)
			testutil.WaitFor(t, 15*time.Second, "a dns_recovered event", func() bool { return len(g.Events(telemetry.EventDNSRecovered)) > recovered })
			if e := g.Events(telemetry.EventDNSRecovered)[recovered]; e.Value != entry || e.Detail != entry+" answers again: 2 members" {
				t.Errorf("dns_recovered %+v", e)
			}
		})
	}

	// The name goes away (NXDOMAIN, as a headless Service with no ready
	// pod answers): no members, without any error.
	errs := len(g.Events(telemetry.EventDNSError))
	srv.Set(t, "_http._tcp.nodes.test")
	waitMembers(t, g, "")
	if n := len(g.Events(telemetry.EventDNSError)); n != errs {
		t.Errorf("NXDOMAIN reported as %d dns_error events; it is an answer", n-errs)
	}
}

// A reload restarts the lookups with the new entries: the members a
// name still has stay (same instances), the old entries are no longer
// looked up.
func TestDNSPoolReload(t *testing.T) {
	srv := dnstest.Start(t)
	nodes, port := startNodes(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	srv.Set(t, "a.test", "a.test. 1 IN A 127.0.0.2")
	srv.Set(t, "b.test", "b.test. 1 IN A 127.0.0.3")
	a, b := fmt.Sprintf("dns://a.test:%d", port), fmt.Sprintf("dns://b.test:%d", port)
	cfg, app := dnsPool(t, srv, a, b)
	g := harness.Start(t, cfg)
	waitMembers(t, g, "ready", nodes["127.0.0.2"].addr, nodes["127.0.0.3"].addr)
	ids := func() map[string]string {
		out := map[string]string{}
		for _, in := range g.Instances("web") {
			out[in.Upstream] = in.ID
		}
		return out
	}
	before := ids()

	next := *app
	next.Upstreams = []string{a, nodes["127.0.0.4"].addr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := webApp(t, g).Reload(ctx, &next, progress(t)); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, g, "ready", nodes["127.0.0.2"].addr, nodes["127.0.0.4"].addr)
	if id := ids()[nodes["127.0.0.2"].addr]; id != before[nodes["127.0.0.2"].addr] {
		t.Errorf("a.test's member is %s after the reload, was %s: it should have stayed", id, before[nodes["127.0.0.2"].addr])
	}
	for _, in := range g.Instances("web") {
		want := map[string]string{nodes["127.0.0.2"].addr: a}[in.Upstream] // the static one has none
		if in.Source != want {
			t.Errorf("%s source %q, want %q", in.Upstream, in.Source, want)
		}
	}
	// b.test is no longer looked up: a change to it changes nothing.
	srv.Set(t, "b.test", "b.test. 1 IN A 127.0.0.3", "b.test. 1 IN A 127.0.0.4")
	srv.Set(t, "a.test", "a.test. 1 IN A 127.0.0.2", "a.test. 1 IN A 127.0.0.3")
	waitMembers(t, g, "ready", nodes["127.0.0.2"].addr, nodes["127.0.0.3"].addr, nodes["127.0.0.4"].addr)
	for _, e := range g.Events(telemetry.EventDNSUpdate) {
		if e.Value == b && strings.Contains(e.Detail, "127.0.0.4") {
			t.Errorf("b.test looked up after the reload removed it: %s", e.Detail)
		}
	}
}

// A reload that turns static entries into the name that has them keeps
// the members (same instances, never out of rotation): the new entry is
// looked up before the old entries are reconciled away.
func TestDNSPoolReloadFromStatic(t *testing.T) {
	srv := dnstest.Start(t)
	nodes, port := startNodes(t, "127.0.0.2", "127.0.0.3")
	srv.Set(t, "nodes.test", "nodes.test. 1 IN A 127.0.0.2", "nodes.test. 1 IN A 127.0.0.3")
	both := []string{nodes["127.0.0.2"].addr, nodes["127.0.0.3"].addr}
	cfg, app := dnsPool(t, srv, both...)
	dnsBlock := app.DNS
	app.DNS = nil // static entries only: no dns: block
	g := harness.Start(t, cfg)
	waitMembers(t, g, "ready", both...)
	ids := map[string]string{}
	for _, in := range g.Instances("web") {
		ids[in.Upstream] = in.ID
	}

	next := *app
	next.Upstreams = []string{fmt.Sprintf("dns://nodes.test:%d", port)}
	next.DNS = dnsBlock
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := webApp(t, g).Reload(ctx, &next, progress(t)); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, in := range g.Instances("web") {
		got[in.Upstream] = in.ID
	}
	if d := cmp.Diff(ids, got); d != "" {
		t.Errorf("instances by member right after the reload (-before +after): the name has the same members\n%s", d)
	}
	waitMembers(t, g, "ready", both...)
	// They are the name's members now: status says so.
	for _, in := range g.Instances("web") {
		if in.Source != next.Upstreams[0] {
			t.Errorf("%s (%s): source %q, want %q", in.ID, in.Upstream, in.Source, next.Upstreams[0])
		}
	}
}

// While an upgrade is under way (Leave until TakeBack) the leaving
// gatehouse still serves the requests of its open connections through
// its external pools, and can start no member. A member that leaves DNS
// then must still leave the pool, not keep its requests because no new
// member could be added.
func TestDNSMemberRemovedDuringLeave(t *testing.T) {
	srv := dnstest.Start(t)
	nodes, port := startNodes(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	srv.Set(t, "nodes.test", "nodes.test. 1 IN A 127.0.0.2", "nodes.test. 1 IN A 127.0.0.3")
	cfg, _ := dnsPool(t, srv, fmt.Sprintf("dns://nodes.test:%d", port))
	g := harness.Start(t, cfg)
	waitMembers(t, g, "ready", nodes["127.0.0.2"].addr, nodes["127.0.0.3"].addr)
	sup := g.Srv.Supervisor()
	sup.Leave()
	// 127.0.0.3 leaves and 127.0.0.4 comes: the new one cannot be added
	// now, the old one must go all the same.
	srv.Set(t, "nodes.test", "nodes.test. 1 IN A 127.0.0.2", "nodes.test. 1 IN A 127.0.0.4")
	waitMembers(t, g, "", nodes["127.0.0.2"].addr)
	sup.TakeBack()
	waitMembers(t, g, "ready", nodes["127.0.0.2"].addr, nodes["127.0.0.4"].addr)
}
