package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// installBinary puts a copy of the built gatehouse in the fixture's
// directory, for `run` to start from: an upgrade re-executes that path,
// which a test may replace, as an operator installs a new version there.
func (f *fixture) installBinary(t *testing.T) {
	t.Helper()
	if f.exe == "" {
		f.exe = filepath.Join(f.dir, "bin", "gatehouse")
		if err := os.MkdirAll(filepath.Dir(f.exe), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	replaceFile(t, f.exe, mustRead(t, f.real))
}

// startRig starts gatehouse on a rig with web's two instances, and
// returns the rig, gatehouse's pid and the instances' pids by id.
func startRig(t *testing.T) (*upgradeRig, int, map[string]int) {
	t.Helper()
	r := newUpgradeRig(t, 2)
	pid := r.start(t)
	return r, pid, r.instances(t, 2)
}

// replaceFile puts content at path through a temporary file renamed over
// it, as a package manager installs a binary: the running one keeps its
// inode (writing into it would fail with ETXTBSY).
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	// Written under syscall.ForkLock: a process that a parallel test
	// forks meanwhile would inherit the file's write descriptor until it
	// execs, and an exec of the file then fails with ETXTBSY.
	syscall.ForkLock.RLock()
	err := os.WriteFile(tmp, content, 0o755)
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// successor puts at the gatehouse's path a script that runs script, then
// the real gatehouse (same pid, same descriptors).
func (f *fixture) successor(t *testing.T, script string) {
	t.Helper()
	replaceFile(t, f.exe, []byte("#!/bin/sh\n"+script+"\nexec "+f.real+` "$@"`+"\n"))
}

// webApp is the config of one app, web: instances of the fault app
// behind the gateway, with env its FAULT_* settings and probeTimeout its
// health timeout, and top more top-level config.
func (f *fixture) webApp(instances int, env map[string]string, probeTimeout, stopTimeout string, top ...string) string {
	var envYAML []string
	for k, v := range env {
		envYAML = append(envYAML, fmt.Sprintf("%s: %q", k, v))
	}
	slices.Sort(envYAML)
	return strings.Join(append(top, ""), "\n") + fmt.Sprintf(`apps:
  web:
    command: [%q]
    instances: %d
    routes: ["/"]
    env: {%s}
    health: {path: /healthz, interval: 200ms, timeout: %s}
    start_timeout: 15s
    stop_timeout: %s
`, f.fault, instances, strings.Join(envYAML, ", "), probeTimeout, stopTimeout)
}

// newUpgradeFixture runs `gatehouse run` from a copy of the binary (see
// installBinary) with web's one instance (see webApp) and waits for it to
// be ready.
func newUpgradeFixture(t *testing.T, env map[string]string, probeTimeout string, top ...string) *fixture {
	t.Helper()
	f := prepareUpgradeFixture(t, env, probeTimeout, top...)
	f.start(t, f.exe, "run", "-c", f.cfgFile)
	return f
}

// prepareUpgradeFixture is newUpgradeFixture without the start: the
// binary's copy and the config are in place.
func prepareUpgradeFixture(t *testing.T, env map[string]string, probeTimeout string, top ...string) *fixture {
	t.Helper()
	f := newFixture(t)
	f.installBinary(t)
	f.writeApps(t, f.webApp(1, env, probeTimeout, "2s", top...))
	return f
}

// instancePID is the pid of the app's one instance, as the admin API says.
func (f *fixture) instancePID(t *testing.T) int {
	t.Helper()
	st := status(f.c, f.adminURL)
	if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 {
		t.Fatalf("status: %+v", st)
	}
	return st.Apps[0].Instances[0].PID
}

// upgrade runs `gatehouse upgrade` against the fixture, in the background.
func (f *fixture) upgrade(t *testing.T) <-chan opResult {
	t.Helper()
	return runAsync(t, f.real, f.dir, "upgrade", "--admin", f.admin)
}

// upgradeRig is a fixture whose gatehouses the test starts itself, and
// follows through upgrades and restarts: every gatehouse generation
// shares one process group (a successor is its predecessor's child) and
// one log file: a real file, not a pipe, since a successor outlives the
// process the test started and would die of SIGPIPE on a pipe the test
// stopped reading.
type upgradeRig struct {
	*fixture
	dataDir string
	logPath string
	// env is added to the test's environment for the gatehouses started.
	env []string

	mu sync.Mutex
	// pgids are the process groups of the `gatehouse run` the test
	// started, each with its successors.
	pgids []int
	// first is the gatehouse the test started; done closes once reaped.
	first *exec.Cmd
	done  chan struct{}
	// apps are the app pids seen, killed by group at cleanup if left.
	apps map[int]bool
}

// newUpgradeRig writes a config with one app, web, of n fault app
// instances behind the gateway, and copies gatehouse into dir/bin.
func newUpgradeRig(t *testing.T, instances int) *upgradeRig {
	t.Helper()
	r := &upgradeRig{fixture: newFixture(t), apps: map[int]bool{}}
	r.dataDir, r.logPath = filepath.Join(r.dir, "data"), filepath.Join(r.dir, "gatehouse.log")
	r.installBinary(t)
	r.writeApps(t, r.webApp(instances, nil, "2s", "5s"))
	t.Cleanup(func() { r.cleanup(t) })
	return r
}

// start runs `exe run -c CONFIG` in its own process group and returns
// its pid.
func (r *upgradeRig) start(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(r.exe, "run", "-c", r.cfgFile)
	cmd.Dir = r.dir
	if r.env != nil {
		cmd.Env = append(os.Environ(), r.env...)
	}
	pid, _ := r.startCmd(t, cmd)
	return pid
}

// startCmd starts cmd, a gatehouse, in its own process group with its
// output in the rig's log, and returns its pid and a channel closed when
// it has exited. Each start has its own waiter; the first is the one the
// rig stops, and cleanup finds the later ones (after a SIGKILL) through
// their groups.
func (r *upgradeRig) startCmd(t *testing.T, cmd *exec.Cmd) (int, <-chan struct{}) {
	t.Helper()
	log, err := os.OpenFile(r.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pgids = append(r.pgids, cmd.Process.Pid)
	if r.first == nil {
		r.first, r.done = cmd, done
	}
	return cmd.Process.Pid, done
}

// gatehouses are the live gatehouse processes the test started, with
// their successors.
func (r *upgradeRig) gatehouses() []int {
	r.mu.Lock()
	pgids := append([]int(nil), r.pgids...)
	r.mu.Unlock()
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procid.ReadStat(pid)
		if err != nil || st.State == 'Z' {
			continue
		}
		for _, g := range pgids {
			if st.PGRP == g {
				out = append(out, pid)
			}
		}
	}
	return out
}

// stop sends SIGTERM to gatehouse pid and waits for it to be gone: it
// stops its apps, and its logs are flushed and closed.
func (r *upgradeRig) stop(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM gatehouse pid %d: %v", pid, err)
	}
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("gatehouse pid %d to exit after SIGTERM", pid), func() bool {
		return !testutil.ProcessAlive(pid)
	})
}

// cleanup stops what the test left running: the gatehouses (SIGTERM,
// so that they stop their apps, then SIGKILL), then any app process.
func (r *upgradeRig) cleanup(t *testing.T) {
	for _, pid := range r.gatehouses() {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	testutil.Eventually(30*time.Second, func() bool { return len(r.gatehouses()) == 0 })
	r.mu.Lock()
	for _, g := range r.pgids {
		syscall.Kill(-g, syscall.SIGKILL)
	}
	for pid := range r.apps {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	r.mu.Unlock()
	if pf, err := r.processes(); err == nil {
		for _, p := range pf.Processes {
			// Never 0: that would be the test's own process group.
			if p.PGID > 0 {
				syscall.Kill(-p.PGID, syscall.SIGKILL)
			}
			if p.ShimPID > 0 {
				syscall.Kill(p.ShimPID, syscall.SIGKILL)
			}
		}
	}
	if r.done != nil {
		<-r.done
	}
	if t.Failed() {
		b, _ := os.ReadFile(r.logPath)
		ev, _ := os.ReadFile(filepath.Join(r.dataDir, "events.log"))
		t.Logf("gatehouse output:\n%s\nevents.log:\n%s", b, ev)
	}
}

// processesDoc is the part of data_dir/processes.json these tests read.
type processesDoc struct {
	Gatehouse struct {
		PID int `json:"pid"`
	} `json:"gatehouse"`
	Processes []struct {
		ID      string `json:"id"`
		PID     int    `json:"pid"`
		PGID    int    `json:"pgid"`
		ShimPID int    `json:"shim_pid"`
	} `json:"processes"`
}

func (r *upgradeRig) processes() (processesDoc, error) {
	var d processesDoc
	b, err := os.ReadFile(filepath.Join(r.dataDir, "processes.json"))
	if err != nil {
		return d, err
	}
	return d, json.Unmarshal(b, &d)
}

// instances waits until web has n instances, every one ready, and
// returns their pids by id.
// inflight waits until the gatehouse answering the admin API sees a
// request in flight on the rig's one instance.
func (r *upgradeRig) inflight(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "the request in flight", func() bool {
		st := status(r.c, r.adminURL)
		return st != nil && len(st.Apps) == 1 && len(st.Apps[0].Instances) == 1 && st.Apps[0].Instances[0].Inflight > 0
	})
}

func (r *upgradeRig) instances(t *testing.T, n int) map[string]int {
	t.Helper()
	var pids map[string]int
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d ready instances of web", n), func() bool {
		if len(r.gatehouses()) == 0 {
			t.Fatalf("no gatehouse is running")
		}
		st := status(r.c, r.adminURL)
		if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != n {
			return false
		}
		pids = map[string]int{}
		for _, in := range st.Apps[0].Instances {
			if in.State != "ready" || in.PID <= 0 {
				return false
			}
			pids[in.ID] = in.PID
		}
		return true
	})
	r.mu.Lock()
	for _, pid := range pids {
		r.apps[pid] = true
	}
	r.mu.Unlock()
	return pids
}

// serving waits until gatehouse pid `now` alone serves: `old` has exited
// and `now` owns the record of the running processes. It returns how
// long `old` took to go.
func (r *upgradeRig) serving(t *testing.T, old, now int) time.Duration {
	t.Helper()
	start := time.Now()
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("gatehouse pid %d to exit and pid %d to serve", old, now), func() bool {
		pf, err := r.processes()
		return !testutil.ProcessAlive(old) && testutil.ProcessAlive(now) && err == nil && pf.Gatehouse.PID == now
	})
	return time.Since(start)
}

// upgradeRun is one `gatehouse upgrade`.
type upgradeRun struct {
	cmd    *exec.Cmd
	out    syncBuffer // stdout and stderr
	done   chan struct{}
	start  time.Time
	took   time.Duration
	code   int
	newPID int
}

var upgradedRE = regexp.MustCompile(`upgraded: gatehouse pid (\d+) serves`)

// upgradeAsync starts `gatehouse upgrade` (the built binary: exe may be
// broken on purpose) against the rig's admin API.
func (r *upgradeRig) upgradeAsync(t *testing.T, args ...string) *upgradeRun {
	t.Helper()
	u := &upgradeRun{done: make(chan struct{}), start: time.Now()}
	u.cmd = exec.Command(r.real, append([]string{"upgrade", "--admin", r.adminURL}, args...)...)
	u.cmd.Dir = r.dir
	u.cmd.Stdout, u.cmd.Stderr = &u.out, &u.out
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := u.cmd.Wait()
		u.took = time.Since(u.start)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			u.code = ee.ExitCode()
		} else if err != nil {
			u.code = -1
		}
		if m := upgradedRE.FindStringSubmatch(u.out.String()); m != nil {
			u.newPID, _ = strconv.Atoi(m[1])
		}
		close(u.done)
	}()
	t.Cleanup(func() {
		select {
		case <-u.done:
		default:
			u.cmd.Process.Kill()
			<-u.done
		}
	})
	return u
}

// wait waits for the command, bounded by 60s: an upgrade that neither
// succeeds nor fails is a failure.
func (u *upgradeRun) wait(t *testing.T) *upgradeRun {
	t.Helper()
	select {
	case <-u.done:
	case <-time.After(60 * time.Second):
		u.cmd.Process.Kill()
		<-u.done
		t.Fatalf("gatehouse upgrade did not finish within 60s; its output:\n%s", u.out.String())
	}
	return u
}

// upgrade runs `gatehouse upgrade` with args to its end.
func (r *upgradeRig) upgrade(t *testing.T, args ...string) *upgradeRun {
	t.Helper()
	return r.upgradeAsync(t, args...).wait(t)
}

// events reads events.log.
func (r *upgradeRig) events(t *testing.T) []telemetry.Event {
	t.Helper()
	return readEvents(t, filepath.Join(r.dataDir, "events.log"))
}

// accessIDs counts access.log's lines by request id.
func (r *upgradeRig) accessIDs(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(r.dataDir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("access.log line %q: %v", sc.Text(), err)
		}
		ids[l.RequestID]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// traffic is load through the gateway while gatehouse upgrades: clients
// on keep-alive connections sending GETs and POSTs the app echoes, an
// event stream kept open (reconnecting when gatehouse ends it cleanly),
// and a poller of the admin API. Every request has its own X-Request-Id,
// which access.log records.
type traffic struct {
	base, adminURL string
	ctx            context.Context
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	transports     []*http.Transport

	mu sync.Mutex
	// answered are the ids of the requests that got a response.
	answered map[string]bool
	ok       int
	failed   int
	// refused and reset count the connections refused or reset.
	refused, reset int
	// retried counts requests the client's transport sent again on a new
	// connection (it does so for a GET whose reused connection closed).
	retried  int
	problems []string
	// streams are the ids of the event streams that were answered.
	streams   []string
	events    int
	cleanEnds int
	polls     int
}

type trafficOptions struct {
	clients int
	stream  bool // an event stream open throughout
	poll    bool // GET /api/status every 50ms
}

// maxPerClient bounds the requests of one client.
const maxPerClient = 3000

func startTraffic(t *testing.T, r *upgradeRig, o trafficOptions) *traffic {
	tr := &traffic{base: "http://" + r.listen, adminURL: r.adminURL, answered: map[string]bool{}}
	tr.ctx, tr.cancel = context.WithCancel(context.Background())
	newTransport := func() *http.Transport {
		t := &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true}
		tr.transports = append(tr.transports, t)
		return t
	}
	for i := range o.clients {
		c := &http.Client{Transport: newTransport(), Timeout: 30 * time.Second}
		tr.wg.Go(func() { tr.client(i, c) })
	}
	if o.stream {
		c := &http.Client{Transport: newTransport()}
		tr.wg.Go(func() { tr.stream(c) })
	}
	if o.poll {
		c := &http.Client{Transport: newTransport(), Timeout: 10 * time.Second}
		tr.wg.Go(func() { tr.poll(c) })
	}
	t.Cleanup(tr.stop)
	return tr
}

// stop ends the load and waits for it; it may be called more than once.
func (tr *traffic) stop() {
	tr.cancel()
	tr.wg.Wait()
	for _, t := range tr.transports {
		t.CloseIdleConnections()
	}
}

// pause waits d, or less if the traffic stops; false once it has.
func (tr *traffic) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tr.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (tr *traffic) fail(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.failed++
	if len(tr.problems) < 20 {
		tr.problems = append(tr.problems, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

// runFor lets the load run for d and at least n more successful
// requests, bounded by d+30s.
func (tr *traffic) runFor(t *testing.T, d time.Duration, n int) {
	t.Helper()
	from, _ := tr.counts()
	until := time.Now().Add(d)
	testutil.WaitFor(t, d+30*time.Second, fmt.Sprintf("%v and %d requests of load", d, n), func() bool {
		ok, _ := tr.counts()
		return time.Now().After(until) && ok >= from+n
	})
}

// counts returns the successful and failed requests so far.
func (tr *traffic) counts() (ok, failed int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.ok, tr.failed
}

var rootBody = regexp.MustCompile(`^web-\d+ \d+$`)

// client sends GET / and POST /echo by turns, with a short pause.
func (tr *traffic) client(i int, c *http.Client) {
	for n := 0; n < maxPerClient; n++ {
		if tr.ctx.Err() != nil {
			return
		}
		id := fmt.Sprintf("load-%d-%d", i, n)
		var req *http.Request
		var want string
		if n%2 == 0 {
			req, _ = http.NewRequest(http.MethodGet, tr.base+"/", nil)
		} else {
			want = id + " " + strings.Repeat("x", rand.N(512))
			req, _ = http.NewRequest(http.MethodPost, tr.base+"/echo", strings.NewReader(want))
			req.Header.Set("Content-Type", "text/plain")
		}
		req.Header.Set("X-Request-Id", id)
		conns := 0
		req = req.WithContext(httptrace.WithClientTrace(context.Background(),
			&httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { conns++ }}))
		resp, err := c.Do(req)
		if err != nil {
			tr.mu.Lock()
			switch {
			case errors.Is(err, syscall.ECONNREFUSED):
				tr.refused++
			case errors.Is(err, syscall.ECONNRESET):
				tr.reset++
			}
			tr.mu.Unlock()
			tr.fail("%s %s (%s): %v", req.Method, req.URL.Path, id, err)
			tr.pause(20 * time.Millisecond)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.mu.Lock()
		tr.answered[id] = true
		if conns > 1 {
			tr.retried++
		}
		tr.mu.Unlock()
		switch {
		case err != nil:
			tr.fail("%s %s (%s): reading the body: %v", req.Method, req.URL.Path, id, err)
		case resp.StatusCode/100 != 2:
			tr.fail("%s %s (%s): %s %q", req.Method, req.URL.Path, id, resp.Status, body)
		case want == "" && !rootBody.Match(body), want != "" && string(body) != want:
			tr.fail("%s %s (%s): body %.80q", req.Method, req.URL.Path, id, body)
		default:
			tr.mu.Lock()
			tr.ok++
			tr.mu.Unlock()
		}
		if !tr.pause(time.Duration(10+rand.N(20)) * time.Millisecond) {
			return
		}
	}
}

// stream keeps an event stream open: faultapp sends "data: event N" every
// 50ms. A stream that ends cleanly between events (gatehouse ends them
// when it drains) is opened again; one cut off, or an error, fails.
func (tr *traffic) stream(c *http.Client) {
	for s := 0; s < 500; s++ {
		id := fmt.Sprintf("sse-%d", s)
		req, _ := http.NewRequestWithContext(tr.ctx, http.MethodGet, tr.base+"/sse?n=1000000&every=50ms", nil)
		req.Header.Set("X-Request-Id", id)
		resp, err := c.Do(req)
		if tr.ctx.Err() != nil {
			return
		}
		if err != nil {
			tr.fail("event stream %s: %v", id, err)
			tr.pause(100 * time.Millisecond)
			continue
		}
		tr.mu.Lock()
		tr.streams = append(tr.streams, id)
		tr.mu.Unlock()
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			tr.fail("event stream %s: %s", id, resp.Status)
			tr.pause(100 * time.Millisecond)
			continue
		}
		tr.readStream(id, resp.Body)
		resp.Body.Close()
		if tr.ctx.Err() != nil {
			return
		}
	}
}

// readStream reads events until the stream ends; it reports an error or
// a cut-off event as a failure.
func (tr *traffic) readStream(id string, body io.Reader) {
	br := bufio.NewReader(body)
	for k := 1; ; k++ {
		data, err := br.ReadString('\n')
		if err == io.EOF && data == "" {
			tr.mu.Lock()
			tr.cleanEnds++
			tr.mu.Unlock()
			return
		}
		var blank string
		if err == nil {
			blank, err = br.ReadString('\n')
		}
		if tr.ctx.Err() != nil {
			return
		}
		if err != nil || data != fmt.Sprintf("data: event %d\n", k) || blank != "\n" {
			tr.fail("event stream %s: event %d: %q %q, %v", id, k, data, blank, err)
			return
		}
		tr.mu.Lock()
		tr.events++
		tr.mu.Unlock()
	}
}

// poll asks the admin API for the status every 50ms: it must always
// answer 200.
func (tr *traffic) poll(c *http.Client) {
	for {
		req, _ := http.NewRequestWithContext(tr.ctx, http.MethodGet, tr.adminURL+"/api/status", nil)
		resp, err := c.Do(req)
		if tr.ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			tr.fail("admin poll: %v", err)
		default:
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				tr.fail("admin poll: %s", resp.Status)
			}
		}
		tr.mu.Lock()
		tr.polls++
		tr.mu.Unlock()
		if !tr.pause(50 * time.Millisecond) {
			return
		}
	}
}

// report checks that no request failed, and says what was sent.
func (tr *traffic) report(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	t.Logf("traffic: %d requests answered (%d ok, %d failed, %d refused, %d reset, %d retried by the client on a new connection); "+
		"%d event streams, %d events, %d clean ends; %d admin polls",
		len(tr.answered), tr.ok, tr.failed, tr.refused, tr.reset, tr.retried, len(tr.streams), tr.events, tr.cleanEnds, tr.polls)
	if tr.failed > 0 {
		t.Errorf("%d requests failed (%d refused, %d reset); the first:\n%s", tr.failed, tr.refused, tr.reset, strings.Join(tr.problems, "\n"))
	}
}
