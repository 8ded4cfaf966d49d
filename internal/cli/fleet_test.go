package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/dnstest"
)

// fleetRecords are the fleet name's A records, one per node address,
// with a 1 s TTL.
func fleetRecords(name string, ips ...string) []string {
	var rrs []string
	for _, ip := range ips {
		rrs = append(rrs, name+". 1 IN A "+ip)
	}
	return rrs
}

// fleetNode is one gatehouse of the fleet, on its own loopback address,
// supervising two instances of the fault app.
type fleetNode struct {
	ip, dir, cfg, adminURL string
	g                      *running
}

func newFleetNode(t *testing.T, bin, fault, ip string, port int) *fleetNode {
	t.Helper()
	n := &fleetNode{ip: ip, dir: t.TempDir()}
	t.Cleanup(func() { killUnder(n.dir) })
	admin := fmt.Sprintf("%s:%d", ip, testutil.FreePort(t))
	n.adminURL = "http://" + admin
	n.cfg = filepath.Join(n.dir, "gatehouse.yaml")
	cfg := fmt.Sprintf(`listen: "%s:%d"
admin: %q
data_dir: data
shutdown_delay: 1500ms
health_prefix: /.gatehouse
apps:
  web:
    command: [%q]
    instances: 2
    health: {path: /healthz, interval: 200ms, timeout: 1s}
    start_timeout: 10s
    stop_timeout: 3s
`, ip, port, admin, fault)
	if err := os.WriteFile(n.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n.start(t, bin)
	return n
}

func (n *fleetNode) start(t *testing.T, bin string) {
	t.Helper()
	n.g = startGatehouseAt(t, bin, n.dir, nil, "run", "-c", n.cfg)
	waitReady(t, httpClient(t, 5*time.Second), n.adminURL, "web", 2, n.g)
}

// stop sends SIGTERM and waits for a clean exit.
func (n *fleetNode) stop(t *testing.T) {
	t.Helper()
	if err := n.g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := n.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("node %s exited %d after SIGTERM, want 0\n%s", n.ip, code, n.g.stderr)
	}
}

// firstRequest is the time of the first request in the node's
// access.log (zero if none).
func (n *fleetNode) firstRequest(t *testing.T) time.Time {
	t.Helper()
	f, err := os.Open(filepath.Join(n.dir, "data", "access.log"))
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadBytes('\n')
	var e struct{ Time time.Time }
	json.Unmarshal(line, &e)
	return e.Time
}

// fleetLoad is clients sending GETs and POSTs through the edge, checking
// every answer (a POST's echo is its own body), until stopped.
type fleetLoad struct {
	url  string
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	ok       int
	failures []string
}

const maxFleetRequests = 2000 // per client: bounds the test

func startFleetLoad(t *testing.T, url string, clients int) *fleetLoad {
	l := &fleetLoad{url: url, stop: make(chan struct{})}
	for w := range clients {
		c := httpClient(t, 20*time.Second)
		l.wg.Go(func() { l.client(c, w) })
	}
	t.Cleanup(l.end)
	return l
}

func (l *fleetLoad) client(c *http.Client, w int) {
	for i := range maxFleetRequests {
		select {
		case <-l.stop:
			return
		default:
		}
		if err := l.one(c, w, i); err != nil {
			l.mu.Lock()
			l.failures = append(l.failures, time.Now().Format("15:04:05.000 ")+err.Error())
			l.mu.Unlock()
		} else {
			l.mu.Lock()
			l.ok++
			l.mu.Unlock()
		}
		select {
		case <-l.stop:
			return
		case <-time.After(5 * time.Millisecond): // a client's pace
		}
	}
}

func (l *fleetLoad) one(c *http.Client, w, i int) error {
	var resp *http.Response
	var err error
	body := fmt.Sprintf("client %d request %d", w, i)
	if i%2 == 0 {
		resp, err = c.Get(l.url + "/pid")
	} else {
		resp, err = c.Post(l.url+"/echo", "text/plain", strings.NewReader(body))
	}
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("%s: read: %w", resp.Request.Method, err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s: %d %s (cause %q)", resp.Request.Method, resp.StatusCode, b, resp.Header.Get("Gatehouse-Cause"))
	case i%2 == 1 && string(b) != body:
		return fmt.Errorf("POST: echo %q, want %q", b, body)
	}
	return nil
}

func (l *fleetLoad) counts() (ok, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, len(l.failures)
}

// end stops the load and waits for it; it may be called more than once.
func (l *fleetLoad) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// edgeMembers maps the edge's members' upstream addresses to their state.
func edgeMembers(c *http.Client, adminURL string) map[string]string {
	st := status(c, adminURL)
	if st == nil {
		return nil
	}
	out := map[string]string{}
	for _, a := range st.Apps {
		for _, in := range a.Instances {
			out[in.Upstream] = in.State
		}
	}
	return out
}

// Three gatehouse nodes on 127.0.0.2-4, each supervising two instances,
// behind a gatehouse edge that finds them through DNS. Under load (32
// clients, GET and POST): each node in turn is drained and restarted, then
// a DNS change adds a fourth node and removes one. No request fails at the
// edge, and the new node gets its first request only after the edge's
// probe of it passed.
func TestFleetRollingRestartBehindADNSDiscoveringEdge(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the fleet test runs five gatehouses for about half a minute")
	}
	bin := testutil.BuildBinary(t, gatehousePkg)
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	port := testutil.FreePortOn(t, ips...)
	const fleetName = "nodes.fleet.test"
	d := dnstest.Start(t)
	d.Set(t, fleetName, fleetRecords(fleetName, ips[:3]...)...)
	nodes := map[string]*fleetNode{}
	for _, ip := range ips[:3] {
		nodes[ip] = newFleetNode(t, bin, fault, ip, port)
	}

	edgeDir := t.TempDir()
	edgeListen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	edgeAdmin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	edgeCfg := filepath.Join(edgeDir, "gatehouse.yaml")
	if err := os.WriteFile(edgeCfg, []byte(fmt.Sprintf(`listen: %q
admin: %q
data_dir: data
apps:
  nodes:
    upstreams: ["dns://nodes.fleet.test:%d"]
    dns: {resolvers: [%q], min_refresh: 200ms, max_refresh: 1s}
    health: {path: /.gatehouse/readyz, interval: 200ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1}
`, edgeListen, edgeAdmin, port, d.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	edge := startGatehouseAt(t, bin, edgeDir, nil, "run", "-c", edgeCfg)
	c := httpClient(t, 5*time.Second)
	edgeAdminURL := "http://" + edgeAdmin
	addr := func(ip string) string { return fmt.Sprintf("%s:%d", ip, port) }
	waitEdge := func(what string, ok func(map[string]string) bool) {
		t.Helper()
		testutil.WaitFor(t, 30*time.Second, what, func() bool {
			select {
			case <-edge.done:
				t.Fatalf("the edge exited\n%s", edge.stderr)
			default:
			}
			return ok(edgeMembers(c, edgeAdminURL))
		})
	}
	waitEdge("the edge to have the three nodes ready", func(m map[string]string) bool {
		return m[addr(ips[0])] == "ready" && m[addr(ips[1])] == "ready" && m[addr(ips[2])] == "ready"
	})

	load := startFleetLoad(t, "http://"+edgeListen, 32)
	progress := func(what string) {
		t.Helper()
		ok, _ := load.counts()
		testutil.WaitFor(t, 30*time.Second, "load after "+what, func() bool {
			now, _ := load.counts()
			return now >= ok+100
		})
	}
	progress("start")

	// Rolling drain and restart.
	for _, ip := range ips[:3] {
		n := nodes[ip]
		if _, errOut, code := gatehouse(t, n.dir, "drain", "--admin", n.adminURL); code != 0 {
			t.Fatalf("gatehouse drain on %s: exit %d\n%s", ip, code, errOut)
		}
		waitEdge("the edge to take "+ip+" out", func(m map[string]string) bool { return m[addr(ip)] != "ready" })
		n.stop(t)
		progress(ip + " stopped")
		n.start(t, bin)
		waitEdge("the edge to take "+ip+" back", func(m map[string]string) bool { return m[addr(ip)] == "ready" })
		progress(ip + " back")
	}

	// DNS adds a fourth node and removes the third. The new node starts
	// drained, so that the edge's probes of it fail for a while under
	// load: it must get no request until it is undrained and a probe
	// passed.
	added, removed := ips[3], ips[2]
	nodes[added] = newFleetNode(t, bin, fault, added, port)
	if _, errOut, code := gatehouse(t, nodes[added].dir, "drain", "--admin", nodes[added].adminURL); code != 0 {
		t.Fatalf("gatehouse drain on %s: exit %d\n%s", added, code, errOut)
	}
	d.Set(t, fleetName, fleetRecords(fleetName, ips[0], ips[1], added)...)
	waitEdge("the edge to add "+added+" and remove "+removed, func(m map[string]string) bool {
		_, still := m[addr(removed)]
		state, found := m[addr(added)]
		return found && state != "ready" && !still
	})
	nodes[removed].stop(t)
	progress("the DNS change")
	if first := nodes[added].firstRequest(t); !first.IsZero() {
		t.Errorf("the new node %s got a request at %v while its probe failed", added, first)
	}
	undrainAt := time.Now()
	if _, errOut, code := gatehouse(t, nodes[added].dir, "undrain", "--admin", nodes[added].adminURL); code != 0 {
		t.Fatalf("gatehouse undrain on %s: exit %d\n%s", added, code, errOut)
	}
	waitEdge("the edge to send to "+added, func(m map[string]string) bool { return m[addr(added)] == "ready" })
	progress(added + " in rotation")
	load.end()

	ok, failed := load.counts()
	if failed > 0 {
		t.Errorf("%d of %d requests failed at the edge:\n%s", failed, ok+failed, strings.Join(load.failures[:min(failed, 20)], "\n"))
	}
	// access.log is written behind the requests: wait for its first line.
	var first time.Time
	testutil.WaitFor(t, 10*time.Second, "the new node's first access-log line", func() bool {
		first = nodes[added].firstRequest(t)
		return !first.IsZero()
	})
	if first.Before(undrainAt) {
		t.Errorf("the new node got a request at %v, before its probe could pass (undrained at %v)", first, undrainAt)
	}
	t.Logf("%d requests through the edge, %d failed; %s undrained %v, first request %v",
		ok+failed, failed, added, undrainAt.Format("15:04:05.000"), first.Format("15:04:05.000"))
}
