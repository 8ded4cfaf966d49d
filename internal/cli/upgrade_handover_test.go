package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// upgradeFixture is a gatehouse run from its own copy of the binary in
// its directory, so that a test can put something else at that path for
// the upgrade to start (the successor), as an operator installs a new
// version there.
type upgradeFixture struct {
	dir, exe, real   string
	cfgFile          string
	listen, adminURL string
	// admin is the admin listener's address (adminURL without http://).
	admin string
	g     *running
	c     *http.Client
}

// newUpgradeFixture runs `gatehouse run` with one app of one instance of
// the fault app (env: its FAULT_* settings; probeTimeout its health
// timeout; top, more top-level config) and waits for it to be ready.
func newUpgradeFixture(t *testing.T, env map[string]string, probeTimeout string, top ...string) *upgradeFixture {
	t.Helper()
	f := prepareUpgradeFixture(t, env, probeTimeout, top...)
	f.start(t, f.exe, "run", "-c", f.cfgFile)
	return f
}

// start runs bin with args (a gatehouse run of the fixture's config) and
// waits for its instance to be ready.
func (f *upgradeFixture) start(t *testing.T, bin string, args ...string) {
	t.Helper()
	f.g = startGatehouseAt(t, bin, f.dir, true, args...)
	f.c = httpClient(t, 20*time.Second)
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
}

// prepareUpgradeFixture is newUpgradeFixture without the start: the
// binary's copy and the config are in place.
func prepareUpgradeFixture(t *testing.T, env map[string]string, probeTimeout string, top ...string) *upgradeFixture {
	t.Helper()
	f := &upgradeFixture{dir: t.TempDir(), real: testutil.BuildBinary(t, gatehousePkg)}
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	// Processes left behind (shims of a gatehouse that exited without
	// stopping them, successors) are found by the directory in their
	// command line. Registered first, so that it runs last.
	t.Cleanup(func() { killUnder(f.dir) })
	f.exe = filepath.Join(f.dir, "gh")
	b, err := os.ReadFile(f.real)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	f.listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f.admin = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f.adminURL = "http://" + f.admin
	var envYAML []string
	for k, v := range env {
		envYAML = append(envYAML, fmt.Sprintf("%s: %q", k, v))
	}
	f.cfgFile = filepath.Join(f.dir, "gatehouse.yaml")
	f.writeConfig(t, f.listen, strings.Join(append(top, ""), "\n")+fmt.Sprintf(`admin: %q
data_dir: data
apps:
  web:
    command: [%q]
    instances: 1
    routes: ["/"]
    env: {%s}
    health: {path: /healthz, interval: 200ms, timeout: %s}
    start_timeout: 10s
    stop_timeout: 2s
`, f.admin, fault, strings.Join(envYAML, ", "), probeTimeout))
	return f
}

// writeConfig writes the config with listen and the rest.
func (f *upgradeFixture) writeConfig(t *testing.T, listen, rest string) {
	t.Helper()
	if err := os.WriteFile(f.cfgFile, []byte(fmt.Sprintf("listen: %q\n", listen)+rest), 0o644); err != nil {
		t.Fatal(err)
	}
}

// config is the config file's text after its listen line.
func (f *upgradeFixture) config(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "\n")
	return rest
}

// successor puts at the gatehouse's path a script that runs script, then
// the real gatehouse (same pid, same descriptors).
func (f *upgradeFixture) successor(t *testing.T, script string) {
	t.Helper()
	tmp := f.exe + ".new"
	text := "#!/bin/sh\n" + script + "\nexec " + f.real + ` "$@"` + "\n"
	if err := os.WriteFile(tmp, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.exe); err != nil {
		t.Fatal(err)
	}
}

// instancePID is the pid of the app's one instance, as the admin API says.
func (f *upgradeFixture) instancePID(t *testing.T) int {
	t.Helper()
	st := status(f.c, f.adminURL)
	if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 {
		t.Fatalf("status: %+v", st)
	}
	return st.Apps[0].Instances[0].PID
}

// upgrade runs `gatehouse upgrade` against the fixture, in the background.
func (f *upgradeFixture) upgrade(t *testing.T) <-chan opResult {
	t.Helper()
	return runAsync(t, f.real, f.dir, "upgrade", "--admin", f.admin)
}

type opResult struct {
	out  string
	code int
}

// runAsync runs the gatehouse binary at bin with args, bounded by 90s;
// its result arrives on the channel.
func runAsync(t *testing.T, bin, dir string, args ...string) <-chan opResult {
	t.Helper()
	res := make(chan opResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		cmd.Wait()
		res <- opResult{out: out.String(), code: cmd.ProcessState.ExitCode()}
	}()
	return res
}

func waitOp(t *testing.T, res <-chan opResult, d time.Duration, what string) opResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(d):
		t.Fatalf("%s has not finished after %v", what, d)
		return opResult{}
	}
}

// killUnder kills every process whose command line or environment names
// dir: gatehouses run from it, and shims, whose status files are under
// its data_dir (their apps die with them).
func killUnder(dir string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if err == nil && strings.Contains(string(b), dir) {
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// answers reports whether the public listener answers a request.
func answers(c *http.Client, listen string) bool {
	resp, err := c.Get("http://" + listen + "/pid")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// A gatehouse told to stop (SIGTERM: systemctl stop) while an upgrade it
// started waits for its successor stops, as a stop does, whichever way the
// upgrade began: it does not leave its apps running with no gatehouse (the
// old one gone, the successor unable to say it is ready to a process that
// exited), and no successor serves on after it.
func TestSIGTERMDuringAnUpgradeStops(t *testing.T) {
	for _, trigger := range []string{"gatehouse upgrade", "SIGUSR2"} {
		t.Run(trigger, func(t *testing.T) {
			f := newUpgradeFixture(t, nil, "1s")
			pid := f.instancePID(t)
			// A successor slow to start: the old process waits for it.
			f.successor(t, "sleep 3")
			var op <-chan opResult
			if trigger == "SIGUSR2" {
				f.g.cmd.Process.Signal(syscall.SIGUSR2)
			} else {
				op = f.upgrade(t)
			}
			testutil.WaitFor(t, 10*time.Second, "upgrade begin", func() bool {
				return strings.Contains(f.g.stderr.String(), "upgrade begin")
			})
			if err := f.g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := f.g.wait(t, 30*time.Second); code != 0 {
				t.Errorf("gatehouse exit %d after SIGTERM, want 0", code)
			}
			if op != nil {
				if r := waitOp(t, op, 30*time.Second, "gatehouse upgrade"); r.code == 0 {
					t.Errorf("gatehouse upgrade exit 0 although gatehouse stopped instead:\n%s", r.out)
				}
			}
			// Long enough for the slow successor to have come up.
			time.Sleep(5 * time.Second)
			if testutil.ProcessAlive(pid) {
				t.Errorf("the app (pid %d) still runs after gatehouse stopped; something serves: %v",
					pid, answers(f.c, f.listen))
			}
			if !refused(f.listen) {
				t.Errorf("%s still accepts connections after gatehouse stopped", f.listen)
			}
		})
	}
}

// A successor that cannot take over (its config fails, its listen address
// is taken, it is stopped before it is ready) is killed, and the old
// gatehouse serves on with the same app processes, which it has taken
// back: `gatehouse upgrade` exits 1 with the reason, and a later stop
// stops those processes.
func TestUpgradeRefusedByTheSuccessorServesOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		// probeTimeout is the app's health timeout.
		probeTimeout string
		// prepare breaks the successor; during, if set, acts while the
		// upgrade waits for it.
		prepare func(t *testing.T, f *upgradeFixture)
		during  func(t *testing.T, f *upgradeFixture)
		reason  string
	}{
		{
			name: "config fails validation", probeTimeout: "1s",
			prepare: func(t *testing.T, f *upgradeFixture) {
				f.writeConfig(t, f.listen, f.config(t)+"bogus: [\n")
			},
			reason: "invalid YAML",
		},
		{
			name: "listen address taken", probeTimeout: "1s",
			prepare: func(t *testing.T, f *upgradeFixture) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				f.writeConfig(t, ln.Addr().String(), f.config(t))
			},
			reason: "address already in use",
		},
		{
			// The probe of each adopted instance takes 1.5s: the
			// successor is stopped while it waits for it.
			name: "successor stopped before it is ready", probeTimeout: "5s",
			env: map[string]string{"FAULT_HEALTH_DELAY": "1500ms"},
			prepare: func(t *testing.T, f *upgradeFixture) {
				f.successor(t, "echo $$ > "+filepath.Join(f.dir, "successor.pid"))
			},
			during: func(t *testing.T, f *upgradeFixture) {
				testutil.WaitFor(t, 20*time.Second, "the successor adopting", func() bool {
					return strings.Contains(f.g.stderr.String(), "adopted without a restart")
				})
				b, err := os.ReadFile(filepath.Join(f.dir, "successor.pid"))
				if err != nil {
					t.Fatal(err)
				}
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				syscall.Kill(pid, syscall.SIGTERM)
			},
			reason: "did not take over",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newUpgradeFixture(t, tc.env, tc.probeTimeout)
			pid := f.instancePID(t)
			tc.prepare(t, f)
			op := f.upgrade(t)
			if tc.during != nil {
				tc.during(t, f)
			}
			r := waitOp(t, op, 70*time.Second, "gatehouse upgrade")
			if r.code != 1 || !strings.Contains(r.out, tc.reason) {
				t.Errorf("gatehouse upgrade: exit %d, want 1 with %q:\n%s", r.code, tc.reason, r.out)
			}
			select {
			case <-f.g.done:
				t.Fatalf("the old gatehouse exited (%v)", f.g.cmd.ProcessState)
			default:
			}
			waitReady(t, f.c, f.adminURL, "web", 1, f.g)
			if got := f.instancePID(t); got != pid {
				t.Errorf("instance pid %d after the failed upgrade, want %d (not restarted)", got, pid)
			}
			if !answers(f.c, f.listen) {
				t.Errorf("the old gatehouse does not answer on %s after the failed upgrade", f.listen)
			}
			// The event reaches events.log through its writer's queue, a
			// moment after gatehouse upgrade has its answer.
			var events []byte
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				events, _ = os.ReadFile(filepath.Join(f.dir, "data", "events.log"))
				if strings.Contains(string(events), "upgrade_abort") || time.Now().After(deadline) {
					break
				}
			}
			if !strings.Contains(string(events), "upgrade_abort") {
				t.Errorf("no upgrade_abort in events.log:\n%s", events)
			}
			// The instances are the old gatehouse's again: its stop stops them.
			f.g.cmd.Process.Signal(syscall.SIGTERM)
			if code := f.g.wait(t, 30*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM, want 0", code)
			}
			testutil.WaitFor(t, 10*time.Second, "the app to be stopped", func() bool { return !testutil.ProcessAlive(pid) })
		})
	}
}

// stream reads one streamed answer to its end in the background.
type stream struct {
	body string
	err  error // nil: it ended with its terminating chunk
	done chan struct{}
	// first is closed when its first event arrived.
	first chan struct{}
}

func openStream(t *testing.T, c *http.Client, url string) *stream {
	t.Helper()
	s := &stream{done: make(chan struct{}), first: make(chan struct{})}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if n > 0 && b.Len() == n {
				close(s.first)
			}
			if err != nil {
				if err != io.EOF {
					s.err = err
				}
				s.body = b.String()
				return
			}
		}
	}()
	select {
	case <-s.first:
	case <-time.After(20 * time.Second):
		t.Fatalf("no first event from %s", url)
	}
	return s
}

func (s *stream) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		t.Fatalf("the stream did not end within %v", d)
	}
}

// Across an upgrade the old process ends its event streams the way an app
// would, with the terminating chunk after a whole event (their clients
// reconnect, to the new process), while another chunked answer in flight
// is not ended early as if complete: it completes, or is cut off where its
// client can see it.
func TestUpgradeEndsEventStreamsCleanly(t *testing.T) {
	f := newUpgradeFixture(t, nil, "1s")
	// No client-side timeout: the streams outlive the fixture's 20s.
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	events := openStream(t, c, "http://"+f.listen+"/sse?n=100000&every=50ms")
	// 30 parts over 1.5s: within the drain (stop_timeout 2s).
	chunked := openStream(t, c, "http://"+f.listen+"/sse?n=30&every=50ms&type=text/plain")
	// 400 parts over 20s: longer than the drain.
	long := openStream(t, c, "http://"+f.listen+"/sse?n=400&every=50ms&type=text/plain")
	if r := waitOp(t, f.upgrade(t), 70*time.Second, "gatehouse upgrade"); r.code != 0 {
		t.Fatalf("gatehouse upgrade: exit %d\n%s", r.code, r.out)
	}
	if code := f.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the old gatehouse exit %d, want 0", code)
	}
	events.wait(t, 10*time.Second)
	if events.err != nil {
		t.Errorf("the event stream was cut off (%v) instead of ended; it had %q", events.err, tail(events.body))
	}
	if !strings.HasSuffix(events.body, "\n\n") {
		t.Errorf("the event stream ended within an event: %q", tail(events.body))
	}
	chunked.wait(t, 30*time.Second)
	if n := strings.Count(chunked.body, "data: "); chunked.err == nil && n != 30 {
		t.Errorf("the chunked answer ended cleanly with %d of its 30 parts: a truncation its client cannot see", n)
	}
	long.wait(t, 30*time.Second)
	if n := strings.Count(long.body, "data: "); long.err == nil && n != 400 {
		t.Errorf("the long chunked answer ended cleanly with %d of its 400 parts: a truncation its client cannot see", n)
	}
	// A client that reconnects is served, by the new process.
	again := openStream(t, c, "http://"+f.listen+"/sse?n=2&every=50ms")
	again.wait(t, 20*time.Second)
	if again.err != nil || strings.Count(again.body, "data: ") != 2 {
		t.Errorf("the reconnected stream: %v, %q", again.err, again.body)
	}
}

func tail(s string) string {
	if len(s) > 80 {
		return "…" + s[len(s)-80:]
	}
	return s
}

// Keep-alive clients sending POSTs (which a client does not send again on
// its own) through three upgrades in a row see no failed request: every
// connection the old process accepted is answered, the last answers say
// Connection: close, and the next connection goes to the new process.
func TestUpgradeUnderKeepAlivePOSTsFailsNone(t *testing.T) {
	f := newUpgradeFixture(t, nil, "1s")
	// Slow answers (the app sleeps 0-40ms) and streamed ones (their head
	// out at once, their end 60ms later) keep requests in flight as each
	// old process drains.
	const clients = 16
	stop := make(chan struct{})
	type tally struct {
		ok   int
		errs []string
	}
	results := make(chan tally, clients)
	for i := range clients {
		go func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
			var tl tally
			for n := 0; ; n++ {
				select {
				case <-stop:
					results <- tl
					return
				default:
				}
				body := fmt.Sprintf("client %d request %d", i, n)
				url := fmt.Sprintf("http://%s/echo?d=%dms", f.listen, n%5*10)
				if n%3 == 0 {
					url = fmt.Sprintf("http://%s/sleep?d=%dms", f.listen, n%5*10)
				}
				if n%4 == 1 {
					// A streamed answer, the connection then reused at once.
					url = fmt.Sprintf("http://%s/sse?n=3&every=30ms&type=text/plain", f.listen)
				}
				resp, err := c.Post(url, "text/plain", strings.NewReader(body))
				if err != nil {
					tl.errs = append(tl.errs, err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					tl.errs = append(tl.errs, "reading the answer: "+err.Error())
				case resp.StatusCode != http.StatusOK:
					tl.errs = append(tl.errs, fmt.Sprintf("%d %s", resp.StatusCode, b))
				case n%3 != 0 && n%4 != 1 && string(b) != body:
					tl.errs = append(tl.errs, fmt.Sprintf("echo %q, want %q", b, body))
				default:
					tl.ok++
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	for i := range 3 {
		if r := waitOp(t, f.upgrade(t), 70*time.Second, "gatehouse upgrade"); r.code != 0 {
			t.Errorf("upgrade %d: exit %d\n%s", i+1, r.code, r.out)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(2500 * time.Millisecond) // past the last idle grace
	close(stop)
	var ok int
	var errs []string
	for range clients {
		tl := <-results
		ok += tl.ok
		errs = append(errs, tl.errs...)
	}
	t.Logf("%d requests answered, %d failed", ok, len(errs))
	if len(errs) > 0 {
		t.Errorf("%d of %d POSTs failed across the upgrades; first: %q", len(errs), ok+len(errs), errs[:min(5, len(errs))])
	}
	if ok == 0 {
		t.Errorf("no request was answered")
	}
	// The old gatehouse handed over; its successors are left to cleanup.
	f.g.wait(t, 30*time.Second)
}

// The HTTPS listener goes across an upgrade like the plain one: the new
// process answers with the same certificate, and clients in the middle of
// it, HTTP/2 ones told GOAWAY by the old process among them, see no failed
// request.
func TestUpgradeHandsOverTheHTTPSListener(t *testing.T) {
	ca := testutil.NewCA(t, "upgrade test CA")
	cert := ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}})
	certFile, keyFile := testutil.KeyPairFiles(t, cert)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f := newUpgradeFixture(t, nil, "1s", fmt.Sprintf("tls: {listen: %q, cert_file: %q, key_file: %q}", tlsAddr, certFile, keyFile))
	type seen struct {
		proto string
		leaf  []byte
	}
	client := func(h2 bool) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(!h2)
		tr.Protocols.SetHTTP2(h2)
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 20 * time.Second}
	}
	get := func(c *http.Client) (seen, error) {
		resp, err := c.Get("https://" + tlsAddr + "/pid")
		if err != nil {
			return seen{}, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return seen{}, fmt.Errorf("status %d", resp.StatusCode)
		}
		return seen{resp.Proto, resp.TLS.PeerCertificates[0].Raw}, nil
	}
	stop := make(chan struct{})
	type tally struct {
		ok     int
		protos map[string]int
		errs   []string
		other  int // answers with another certificate
	}
	results := make(chan tally, 8)
	for i := range 8 {
		go func() {
			c := client(i%2 == 0)
			tl := tally{protos: map[string]int{}}
			for {
				select {
				case <-stop:
					results <- tl
					return
				default:
				}
				s, err := get(c)
				switch {
				case err != nil:
					tl.errs = append(tl.errs, err.Error())
				case !bytes.Equal(s.leaf, cert.Certificate[0]):
					tl.other++
				default:
					tl.ok++
					tl.protos[s.proto]++
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if r := waitOp(t, f.upgrade(t), 70*time.Second, "gatehouse upgrade"); r.code != 0 {
		t.Errorf("gatehouse upgrade: exit %d\n%s", r.code, r.out)
	}
	if code := f.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the old gatehouse exit %d, want 0", code)
	}
	time.Sleep(time.Second) // the new process serves alone
	close(stop)
	var ok, other int
	var errs []string
	protos := map[string]int{}
	for range 8 {
		tl := <-results
		ok, other, errs = ok+tl.ok, other+tl.other, append(errs, tl.errs...)
		for p, n := range tl.protos {
			protos[p] += n
		}
	}
	t.Logf("%d answered (%v), %d failed", ok, protos, len(errs))
	if len(errs) > 0 {
		t.Errorf("%d HTTPS requests failed across the upgrade; first: %q", len(errs), errs[:min(5, len(errs))])
	}
	if other > 0 {
		t.Errorf("%d answers came with another certificate", other)
	}
	if protos["HTTP/2.0"] == 0 || protos["HTTP/1.1"] == 0 {
		t.Errorf("answers by protocol %v: want both", protos)
	}
}

// The admin API answers throughout an upgrade, and, once the new process
// serves, it is the new process that answers: a client that keeps its
// connection alive (a dashboard, a metrics scraper) is not answered for
// seconds more by the old process as it drains, whose supervisor has let
// go of every instance (and on which an operation would act on nothing).
func TestUpgradeKeepsTheAdminAPIAnswering(t *testing.T) {
	f := newUpgradeFixture(t, nil, "1s")
	for _, keepAlive := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep-alive %v", keepAlive), func(t *testing.T) {
			tr := &http.Transport{DisableKeepAlives: !keepAlive}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			var polls, missing int
			poll := func() *admin.StatusResponse {
				polls++
				st := status(c, f.adminURL)
				if st == nil {
					missing++
				}
				return st
			}
			// A public client idle on its keep-alive connection: the old
			// process's drain keeps it for the idle grace.
			pub, err := net.Dial("tcp", f.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			io.WriteString(pub, "GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
			pub.Read(make([]byte, 4096))
			poll()
			op := f.upgrade(t)
			var r opResult
		wait:
			for {
				select {
				case r = <-op:
					break wait
				case <-time.After(5 * time.Millisecond):
					poll()
				}
			}
			if r.code != 0 {
				t.Fatalf("gatehouse upgrade: exit %d\n%s", r.code, r.out)
			}
			// The new process serves: from now on it answers.
			time.Sleep(200 * time.Millisecond)
			var wrong []string
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				st := poll()
				if st != nil && (len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1) {
					wrong = append(wrong, fmt.Sprintf("%+v", st.Apps))
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d admin requests got no answer", missing, polls)
			}
			if len(wrong) > 0 {
				t.Errorf("%d answers after the handover from a process without the instances (the old one): %s", len(wrong), wrong[0])
			}
		})
	}
}

// While an upgrade waits for its successor, the old process serves every
// request through its instances; the admin API (gatehouse status, the
// metrics) must still show them, not an app with no instance for as long
// as the successor takes to adopt them (up to 60s).
func TestAdminStatusDuringAnUpgradeShowsTheInstances(t *testing.T) {
	// Each adopted instance's probe takes 1.5s: the window is that long.
	f := newUpgradeFixture(t, map[string]string{"FAULT_HEALTH_DELAY": "1500ms"}, "5s")
	pid := f.instancePID(t)
	op := f.upgrade(t)
	testutil.WaitFor(t, 20*time.Second, "the successor adopting", func() bool {
		return strings.Contains(f.g.stderr.String(), "adopted without a restart")
	})
	st := status(f.c, f.adminURL)
	if r := waitOp(t, op, 70*time.Second, "gatehouse upgrade"); r.code != 0 {
		t.Fatalf("gatehouse upgrade: exit %d\n%s", r.code, r.out)
	}
	if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 || st.Apps[0].Instances[0].PID != pid {
		var apps any
		if st != nil {
			apps = st.Apps
		}
		t.Errorf("status during the upgrade: %+v; want web's one instance, pid %d", apps, pid)
	}
}

// An upgrade cannot carry a data_dir change: the new process would look
// for the running instances in the new data_dir, find none, and start a
// second set, while the first runs on with no gatehouse (two of every
// worker, ports and memory held for ever). An upgrade, or a reload that
// would apply another change through one, refuses it and says to stop and
// start; the old process serves on with its instances.
func TestUpgradeRefusesAMovedDataDir(t *testing.T) {
	for _, op := range []string{"upgrade", "reload"} {
		t.Run(op, func(t *testing.T) {
			f := newUpgradeFixture(t, nil, "1s")
			pid := f.instancePID(t)
			listen := f.listen
			if op == "reload" {
				// A change only an upgrade applies, with the data_dir's.
				listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			}
			f.writeConfig(t, listen, strings.Replace(f.config(t), "data_dir: data\n", "data_dir: data2\n", 1))
			r := waitOp(t, runAsync(t, f.real, f.dir, op, "--admin", f.admin), 70*time.Second, op)
			if r.code != 1 || !strings.Contains(r.out, "data_dir") {
				t.Errorf("gatehouse %s: exit %d, want 1 naming data_dir:\n%s", op, r.code, r.out)
			}
			select {
			case <-f.g.done:
				t.Fatalf("the old gatehouse exited: a new one took over with data_dir data2")
			default:
			}
			// A reload rolls the app's processes (its config is the same:
			// the program may be new) before it tries the upgrade.
			now := f.instancePID(t)
			if op == "upgrade" && now != pid {
				t.Errorf("instance pid %d, want %d", now, pid)
			}
			if !answers(f.c, f.listen) {
				t.Errorf("the old gatehouse does not answer on %s", f.listen)
			}
			f.g.cmd.Process.Signal(syscall.SIGTERM)
			f.g.wait(t, 30*time.Second)
			testutil.WaitFor(t, 10*time.Second, "the app to be stopped", func() bool {
				return !testutil.ProcessAlive(pid) && !testutil.ProcessAlive(now)
			})
		})
	}
}

// gatehouse as the first process of its PID namespace (a container's
// entrypoint) cannot hand over: when it exits, the kernel kills every
// process of the namespace, the new gatehouse and every app with it. The
// upgrade is refused, with the reason, and gatehouse serves on, rather
// than reporting success before the container dies.
func TestUpgradeRefusedAsAContainersFirstProcess(t *testing.T) {
	if err := exec.Command("unshare", "-fp", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace here: %v", err)
	}
	f := prepareUpgradeFixture(t, nil, "1s")
	f.start(t, "unshare", "-fp", "--mount-proc", f.real, "run", "-c", f.cfgFile)
	r := waitOp(t, f.upgrade(t), 70*time.Second, "gatehouse upgrade")
	if r.code != 1 || !strings.Contains(r.out, "PID 1") {
		t.Errorf("gatehouse upgrade: exit %d, want 1 naming PID 1:\n%s", r.code, r.out)
	}
	time.Sleep(2 * time.Second)
	if !answers(f.c, f.listen) {
		t.Errorf("nothing answers on %s after the upgrade", f.listen)
	}
}

// --listen and --admin on the command line are not config changes: a
// reload compares the re-read file with them applied, and does not replace
// the gatehouse process (an upgrade) on every reload.
func TestReloadWithCommandLineAddressesDoesNotUpgrade(t *testing.T) {
	f := prepareUpgradeFixture(t, nil, "1s")
	// The file's addresses are not the ones served.
	closed := testutil.ClosedAddr(t)
	f.writeConfig(t, closed, strings.Replace(f.config(t), f.admin, closed, 1))
	f.start(t, f.real, "run", "-c", f.cfgFile, "--listen", f.listen, "--admin", f.admin)
	r := waitOp(t, runAsync(t, f.real, f.dir, "reload", "--admin", f.admin), 70*time.Second, "gatehouse reload")
	if r.code != 0 || strings.Contains(r.out, "new gatehouse process") {
		t.Errorf("gatehouse reload: exit %d, want 0 without an upgrade:\n%s", r.code, r.out)
	}
	select {
	case <-f.g.done:
		t.Errorf("gatehouse exited: it upgraded on a reload that changed nothing")
	default:
	}
}

// A reload that moves `listen` applies it through an upgrade: the new
// process serves on the new address as soon as the reload returns (no
// connection refused there), and the old address is released once the old
// process is gone; the app process is the same.
func TestReloadMovesTheListenAddress(t *testing.T) {
	f := newUpgradeFixture(t, nil, "1s")
	moved := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f.writeConfig(t, moved, f.config(t))
	r := waitOp(t, runAsync(t, f.real, f.dir, "reload", "--admin", f.admin), 70*time.Second, "gatehouse reload")
	if r.code != 0 || !strings.Contains(r.out, "new gatehouse process") {
		t.Fatalf("gatehouse reload: exit %d, want 0 with an upgrade:\n%s", r.code, r.out)
	}
	if !answers(f.c, moved) {
		t.Errorf("nothing answers on the new address %s once the reload returned", moved)
	}
	if code := f.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the old gatehouse exit %d, want 0", code)
	}
	if !refused(f.listen) {
		t.Errorf("the old address %s still accepts connections", f.listen)
	}
	if !answers(f.c, moved) {
		t.Errorf("nothing answers on %s after the old process exited", moved)
	}
}
