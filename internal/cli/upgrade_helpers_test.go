package cli_test

import (
	"bufio"
	"bytes"
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

// upgradeRig is a gatehouse started from a copy of its binary in the
// test's directory: an upgrade re-executes that path, which a test may
// overwrite. Every gatehouse generation shares one process group (a
// successor is its predecessor's child) and one log file: real files,
// not pipes, since a successor outlives the process the test started and
// would die of SIGPIPE on a pipe the test stopped reading.
type upgradeRig struct {
	dir      string
	exe      string // the copy `run` started from; upgrades re-execute it
	real     string // the built gatehouse, for commands and to restore exe
	cfgFile  string
	listen   string
	adminURL string
	dataDir  string
	logPath  string
	client   *http.Client

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

// newUpgradeRig writes a config with one app, web, of n faultapp
// instances behind the gateway, and copies gatehouse into dir/bin.
func newUpgradeRig(t *testing.T, instances int) *upgradeRig {
	t.Helper()
	dir := t.TempDir()
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	r := &upgradeRig{dir: dir, real: testutil.BuildBinary(t, gatehousePkg), exe: filepath.Join(dir, "bin", "gatehouse"),
		cfgFile: filepath.Join(dir, "gatehouse.yaml"), dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "gatehouse.log"), apps: map[int]bool{},
		listen: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	r.adminURL = fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	r.client = httpClient(t, 10*time.Second)
	if err := os.MkdirAll(filepath.Dir(r.exe), 0o755); err != nil {
		t.Fatal(err)
	}
	r.installBinary(t)
	cfg := fmt.Sprintf(`listen: %q
admin: %q
data_dir: data
apps:
  web:
    command: [%q]
    instances: %d
    routes: ["/"]
    health: {path: /healthz, interval: 200ms, timeout: 2s}
    start_timeout: 15s
    stop_timeout: 5s
`, r.listen, strings.TrimPrefix(r.adminURL, "http://"), fault, instances)
	if err := os.WriteFile(r.cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cleanup(t) })
	return r
}

// replaceFile puts content at path through a temporary file renamed over
// it, as a package manager installs a binary: the running one keeps its
// inode (writing into it would fail with ETXTBSY).
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// installBinary puts the real gatehouse at exe.
func (r *upgradeRig) installBinary(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(r.real)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, r.exe, b)
}

// start runs `exe run -c CONFIG` in its own process group and returns
// its pid.
func (r *upgradeRig) start(t *testing.T) int {
	t.Helper()
	log, err := os.OpenFile(r.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(r.exe, "run", "-c", r.cfgFile)
	cmd.Dir = r.dir
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
	} else {
		// Later starts (after a SIGKILL) are reaped by their own waiter;
		// cleanup finds them through their group.
		go func() { <-done }()
	}
	return cmd.Process.Pid
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
	deadline := time.Now().Add(30 * time.Second)
	for len(r.gatehouses()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
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
			syscall.Kill(-p.PGID, syscall.SIGKILL)
			syscall.Kill(p.ShimPID, syscall.SIGKILL)
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
func (r *upgradeRig) instances(t *testing.T, n int) map[string]int {
	t.Helper()
	var pids map[string]int
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d ready instances of web", n), func() bool {
		if len(r.gatehouses()) == 0 {
			t.Fatalf("no gatehouse is running")
		}
		st := status(r.client, r.adminURL)
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
func (r *upgradeRig) upgradeAsync(t *testing.T) *upgradeRun {
	t.Helper()
	u := &upgradeRun{done: make(chan struct{}), start: time.Now()}
	u.cmd = exec.Command(r.real, "upgrade", "--admin", r.adminURL)
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

// upgrade runs `gatehouse upgrade` to its end.
func (r *upgradeRig) upgrade(t *testing.T) *upgradeRun {
	t.Helper()
	return r.upgradeAsync(t).wait(t)
}

// events reads events.log.
func (r *upgradeRig) events(t *testing.T) []telemetry.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dataDir, "events.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []telemetry.Event
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var ev telemetry.Event
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatalf("events.log line %q: %v", l, err)
		}
		out = append(out, ev)
	}
	return out
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
