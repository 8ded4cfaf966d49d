package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

const gatehousePkg = "github.com/gatehouse/gatehouse/cmd/gatehouse"

// gatehouse runs the gatehouse binary to completion in dir (the test's
// working directory when ""), bounded by 20s, and returns its output and
// exit code.
func gatehouse(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.BuildBinary(t, gatehousePkg), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %v did not finish within 20s\nstdout:\n%s\nstderr:\n%s", args, &out, &errb)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("gatehouse %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// path, if set, is a file the process writes instead.
	path string
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	if s.path != "" {
		b, _ := os.ReadFile(s.path)
		return string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a gatehouse binary started in the background.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	// kill lists process ids whose groups cleanup kills if the test left
	// them (instances), and pids it kills (grandchildren).
	mu      sync.Mutex
	groups  []int
	singles []int
}

// startGatehouseAt starts the gatehouse binary at bin with args in dir,
// in its own process group, env added to the test's environment.
// Cleanup kills it, and any process the test registered, if they are
// still there. Its output goes to files in dir rather than pipes: the
// successors of an upgrade write there too, after it exited (into a pipe
// whose reader is gone, a write would kill them with SIGPIPE).
func startGatehouseAt(t *testing.T, bin, dir string, env []string, args ...string) *running {
	t.Helper()
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Dir = dir
	if env != nil {
		r.cmd.Env = append(os.Environ(), env...)
	}
	for _, o := range []struct {
		buf *syncBuffer
		w   *io.Writer
	}{{r.stdout, &r.cmd.Stdout}, {r.stderr, &r.cmd.Stderr}} {
		f, err := os.CreateTemp(dir, "gatehouse-output-")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // the process has its own descriptor
		o.buf.path, *o.w = f.Name(), f
	}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.WaitDelay = 2 * time.Second
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, pid := range r.groups {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
		for _, pid := range r.singles {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("gatehouse stdout:\n%s\ngatehouse stderr:\n%s", r.stdout, r.stderr)
		}
	})
	return r
}

// track registers processes for cleanup: instance pids (killed by group)
// and single pids. A pid of 0 (an instance not running) is left out: a
// kill of 0 would be the test's own process group.
func (r *running) track(groups, singles []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pid := range groups {
		if pid > 0 {
			r.groups = append(r.groups, pid)
		}
	}
	for _, pid := range singles {
		if pid > 0 {
			r.singles = append(r.singles, pid)
		}
	}
}

// wait waits up to d for gatehouse to exit and returns its exit code.
func (r *running) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("gatehouse did not exit within %v\nstderr:\n%s", d, r.stderr)
		return -1
	}
}

// status fetches GET /api/status from adminURL, nil while it is not
// answering.
func status(c *http.Client, adminURL string) *admin.StatusResponse {
	resp, err := c.Get(adminURL + "/api/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st admin.StatusResponse
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}

// waitReady waits until app has n ready instances behind adminURL.
func waitReady(t *testing.T, c *http.Client, adminURL, app string, n int, r *running) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, "ready instances via "+adminURL, func() bool {
		select {
		case <-r.done:
			t.Fatalf("gatehouse exited early (%v)\nstderr:\n%s", r.cmd.ProcessState, r.stderr)
		default:
		}
		st := status(c, adminURL)
		if st == nil {
			return false
		}
		ready := 0
		for _, a := range st.Apps {
			for _, in := range a.Instances {
				if a.Name == app && in.State == "ready" {
					ready++
				}
			}
		}
		return ready == n
	})
}

// httpClient returns a client whose idle connections close with the test.
func httpClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// signal sends sig to the gatehouse the test started.
func (r *running) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// fixture is a directory for a gatehouse: a config of fault-app apps on
// loopback ports with data_dir data, and the gatehouse run on it.
type fixture struct {
	dir   string
	real  string // the built gatehouse
	fault string // the built fault app
	// exe, if set, is the copy of gatehouse in dir that `run` started
	// from: an upgrade re-executes that path, which a test may replace.
	exe              string
	cfgFile          string
	listen, adminURL string
	// admin is the admin listener's address (adminURL without http://).
	admin string
	g     *running
	c     *http.Client
}

// newFixture builds gatehouse and the fault app and chooses the ports;
// writeApps writes the config.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), real: testutil.BuildBinary(t, gatehousePkg), fault: testutil.BuildBinary(t, testutil.FaultAppPkg)}
	// Processes left behind (shims of a gatehouse that exited without
	// stopping them, successors) are found by the directory in their
	// command line. Registered first, so that it runs last.
	t.Cleanup(func() { killUnder(f.dir) })
	f.cfgFile = filepath.Join(f.dir, "gatehouse.yaml")
	f.listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f.admin = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f.adminURL = "http://" + f.admin
	f.c = httpClient(t, 20*time.Second)
	return f
}

// writeApps writes the config: the fixture's listen and admin addresses,
// data_dir data, then rest (the apps, and any other setting).
func (f *fixture) writeApps(t *testing.T, rest string) {
	t.Helper()
	f.writeConfig(t, f.listen, fmt.Sprintf("admin: %q\ndata_dir: data\n", f.admin)+rest)
}

// writeConfig writes the config with listen and the rest.
func (f *fixture) writeConfig(t *testing.T, listen, rest string) {
	t.Helper()
	if err := os.WriteFile(f.cfgFile, []byte(fmt.Sprintf("listen: %q\n", listen)+rest), 0o644); err != nil {
		t.Fatal(err)
	}
}

// config is the config file's text after its listen line.
func (f *fixture) config(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "\n")
	return rest
}

// run starts `gatehouse run -c CONFIG` with env added to the test's.
func (f *fixture) run(t *testing.T, env ...string) *running {
	t.Helper()
	return f.launch(t, env, f.real, "run", "-c", f.cfgFile)
}

// launch starts bin with args (a gatehouse run of the fixture's config)
// in the fixture's directory.
func (f *fixture) launch(t *testing.T, env []string, bin string, args ...string) *running {
	t.Helper()
	f.g = startGatehouseAt(t, bin, f.dir, env, args...)
	return f.g
}

// start is launch, then it waits for web's one instance to be ready.
func (f *fixture) start(t *testing.T, bin string, args ...string) {
	t.Helper()
	f.launch(t, nil, bin, args...)
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
}

// trackInstances registers the instances the admin API shows for
// cleanup.
func (f *fixture) trackInstances() {
	if st := status(f.c, f.adminURL); st != nil {
		for _, a := range st.Apps {
			for _, in := range a.Instances {
				f.g.track([]int{in.PID}, nil)
			}
		}
	}
}

// stop sends SIGTERM to the gatehouse and fails the test unless it exits
// 0 within d.
func (f *fixture) stop(t *testing.T, d time.Duration) {
	t.Helper()
	f.g.signal(t, syscall.SIGTERM)
	if code := f.g.wait(t, d); code != 0 {
		t.Errorf("gatehouse exit %d after SIGTERM, want 0", code)
	}
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

func tail(s string) string {
	if len(s) > 80 {
		return "…" + s[len(s)-80:]
	}
	return s
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// readEvents reads an events.log.
func readEvents(t *testing.T, path string) []telemetry.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Whole lines only: a test polling the log may read it as it is
	// created (empty) or while a line is being written.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []telemetry.Event
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var ev telemetry.Event
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatalf("events.log line %q: %v", l, err)
		}
		out = append(out, ev)
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// notifySocket is a unixgram socket standing where systemd's notify
// socket would. Like systemd it learns who sent each datagram
// (SO_PASSCRED); they arrive on msgs in order, but for the watchdog's
// pings, which it counts.
type notifySocket struct {
	path      string
	msgs      chan notifyMsg
	watchdogs atomic.Int64
}

type notifyMsg struct {
	pid  int
	text string
}

// listenNotify binds the socket in dir; cleanup closes it and waits for
// its reader.
func listenNotify(t *testing.T, dir string) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan notifyMsg, 1024)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
	if serr != nil {
		t.Fatal(serr)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(unix.SizeofUcred))
		for {
			k, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			m := notifyMsg{text: string(buf[:k])}
			if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cms) > 0 {
				if cred, err := unix.ParseUnixCredentials(&cms[0]); err == nil {
					m.pid = int(cred.Pid)
				}
			}
			if m.text == "WATCHDOG=1\n" {
				n.watchdogs.Add(1)
				continue
			}
			select {
			case n.msgs <- m:
			default: // a test that stopped reading; drop
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// next returns the next datagram, failing the test after d.
func (n *notifySocket) next(t *testing.T, d time.Duration, what string) notifyMsg {
	t.Helper()
	select {
	case m := <-n.msgs:
		return m
	case <-time.After(d):
		t.Fatalf("no %s on the notify socket within %v", what, d)
		return notifyMsg{}
	}
}

// nowUsec replaces MONOTONIC_USEC's value in text by NOW.
func nowUsec(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "MONOTONIC_USEC=") {
			lines[i] = "MONOTONIC_USEC=NOW"
		}
	}
	return strings.Join(lines, "\n")
}

// expect fails unless the next datagram is want, sent by pid.
// MONOTONIC_USEC's value is replaced by NOW.
func (n *notifySocket) expect(t *testing.T, pid int, want string) {
	t.Helper()
	m := n.next(t, 30*time.Second, fmt.Sprintf("%q from pid %d", want, pid))
	if got := (notifyMsg{pid: m.pid, text: nowUsec(m.text)}); got != (notifyMsg{pid: pid, text: want}) {
		t.Fatalf("notify datagram from pid %d: %q; want %q from pid %d", got.pid, got.text, want, pid)
	}
}

// expectAnyOrder fails unless the next datagrams are want, in any order.
func (n *notifySocket) expectAnyOrder(t *testing.T, want ...notifyMsg) {
	t.Helper()
	var got []notifyMsg
	for range want {
		got = append(got, n.next(t, 30*time.Second, fmt.Sprintf("%+v in any order (after %+v)", want, got)))
	}
	less := func(a, b notifyMsg) int {
		if a.pid != b.pid {
			return a.pid - b.pid
		}
		return strings.Compare(a.text, b.text)
	}
	slices.SortFunc(got, less)
	slices.SortFunc(want, less)
	if !slices.Equal(got, want) {
		t.Fatalf("notify datagrams %+v; want %+v in any order", got, want)
	}
}

// nothingMore fails if a datagram came that the test did not take: it
// sends a marker through the socket and reads up to it, so that every
// datagram sent before it is seen.
func (n *notifySocket) nothingMore(t *testing.T) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	marker := "TEST_MARKER=" + strconv.FormatInt(time.Now().UnixNano(), 10) + "\n"
	if _, err := c.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	for {
		m := n.next(t, 10*time.Second, "the test's own marker")
		if m.text == marker {
			return
		}
		t.Errorf("unexpected notify datagram from pid %d: %q", m.pid, m.text)
	}
}

// waitPIDFile waits for the pid a script wrote to path ("echo $$ >").
func waitPIDFile(t *testing.T, path, what string) int {
	t.Helper()
	var pid int
	testutil.WaitFor(t, 20*time.Second, what, func() bool {
		b, err := os.ReadFile(path)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// progress waits until n more requests were answered, counted by
// answered.
func progress(t *testing.T, answered *atomic.Int64, n int64, what string) {
	t.Helper()
	from := answered.Load()
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d %s", n, what), func() bool { return answered.Load() >= from+n })
}
