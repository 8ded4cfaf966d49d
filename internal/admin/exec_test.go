package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

const execToken = "exec-token-for-tests"

// startForExec runs one fault-app instance in a directory of its own,
// with an env: variable and an admin token, and waits until it is ready.
func startForExec(t *testing.T) (*harness.Gatehouse, string) {
	t.Helper()
	dir := t.TempDir()
	g := start(t, 1, func(cfg *config.Config) {
		cfg.AdminToken = execToken
		cfg.Apps["web"].Dir = dir
	})
	return g, dir
}

type execResult struct {
	code           int
	stdout, stderr string
}

func execIn(t *testing.T, g *harness.Gatehouse, path, stdin string, argv ...string) execResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code, err := admin.NewClient(g.AdminURL, execToken).Exec(ctx, path, argv, strings.NewReader(stdin), &out, &errb)
	if err != nil {
		t.Fatalf("exec %q: %v", argv, err)
	}
	return execResult{code, out.String(), errb.String()}
}

// uidOf is the real uid of process pid.
func uidOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Uid:"); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no Uid: line in /proc/%d/status", pid)
	return ""
}

// A command run through gatehouse exec has the instance's environment
// (its PORT, the app's env:), its working directory and its user; stdin
// reaches it, and its exit code, a signal's 128+N among them, comes back.
func TestExecRunsInTheInstancesWorld(t *testing.T) {
	t.Parallel()
	g, dir := startForExec(t)
	inst := g.Instances("web")[0]
	for _, tc := range []struct {
		name, path, stdin string
		argv              []string
		want              execResult
	}{
		{name: "the app's first ready instance", path: "/api/apps/web/exec", argv: []string{"printenv", "PORT", "GREETING", "GATEHOUSE_INSTANCE"},
			want: execResult{stdout: fmt.Sprintf("%d\nhello\nweb-1\n", inst.Port)}},
		{name: "an instance by id", path: "/api/instances/web-1/exec", argv: []string{"printenv", "PORT"},
			want: execResult{stdout: fmt.Sprintf("%d\n", inst.Port)}},
		{name: "working directory", path: "/api/apps/web/exec", argv: []string{"pwd"}, want: execResult{stdout: dir + "\n"}},
		{name: "user", path: "/api/apps/web/exec", argv: []string{"id", "-u"}, want: execResult{stdout: uidOf(t, inst.PID) + "\n"}},
		{name: "stdin and exit code", path: "/api/apps/web/exec", stdin: "hi\n", argv: []string{"sh", "-c", "read x; echo got:$x; echo oops >&2; exit 3"},
			want: execResult{code: 3, stdout: "got:hi\n", stderr: "oops\n"}},
		{name: "true", path: "/api/apps/web/exec", argv: []string{"true"}, want: execResult{}},
		{name: "killed by a signal", path: "/api/apps/web/exec", argv: []string{"sh", "-c", "kill -TERM $$"}, want: execResult{code: 128 + 15}},
		{name: "no shell: the argv as it is", path: "/api/apps/web/exec", argv: []string{"echo", "$PORT", "a b"}, want: execResult{stdout: "$PORT a b\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := execIn(t, g, tc.path, tc.stdin, tc.argv...)
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(execResult{})); d != "" {
				t.Errorf("exec %q (-want +got):\n%s", tc.argv, d)
			}
		})
	}
}

// Output larger than a frame and the pipe arrives whole and in order,
// and so does stdin the command reads back.
func TestExecStreamsLargeOutputWhole(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	in := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	got := execIn(t, g, "/api/apps/web/exec", in, "cat")
	if got.code != 0 || got.stdout != in {
		t.Errorf("cat of 1 MiB: exit %d, %d bytes back (equal: %v)", got.code, len(got.stdout), got.stdout == in)
	}
}

// The events name the instance, the command (never its environment)
// and who ran it, then how it ended.
func TestExecEventsNameTheCommand(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	execIn(t, g, "/api/apps/web/exec", "", "sh", "-c", "exit 3")
	var evs []telemetry.Event
	testutil.WaitFor(t, 5*time.Second, "exec and exec_exited events", func() bool {
		evs = g.Events(telemetry.EventExec, telemetry.EventExecExited)
		return len(evs) == 2
	})
	if evs[0].Type != telemetry.EventExec || evs[1].Type != telemetry.EventExecExited {
		t.Fatalf("events %+v, want exec then exec_exited", evs)
	}
	for _, ev := range evs {
		if ev.App != "web" || ev.Instance != "web-1" || ev.Value != "sh -c 'exit 3'" || !strings.HasPrefix(ev.Trigger, "127.0.0.1:") {
			t.Errorf("%s event %+v: want app web, instance web-1, value sh -c 'exit 3', trigger the client's address", ev.Type, ev)
		}
		if strings.Contains(ev.Detail, secret) || strings.Contains(ev.Detail, "GREETING") {
			t.Errorf("%s event shows the environment: %q", ev.Type, ev.Detail)
		}
	}
	if !strings.Contains(evs[0].Detail, "the admin token holder") {
		t.Errorf("exec detail %q does not say who ran it", evs[0].Detail)
	}
	if evs[1].ExitCode == nil || *evs[1].ExitCode != 3 {
		t.Errorf("exec_exited exit code %v, want 3", evs[1].ExitCode)
	}
}

// Without the token, exec is refused 401 and nothing runs.
func TestExecRefusedWithoutTheToken(t *testing.T) {
	t.Parallel()
	g, dir := startForExec(t)
	marker := filepath.Join(dir, "ran")
	for _, token := range []string{"", "wrong"} {
		var out bytes.Buffer
		_, err := admin.NewClient(g.AdminURL, token).Exec(context.Background(), "/api/apps/web/exec", []string{"touch", marker}, nil, &out, &out)
		var he *admin.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
			t.Errorf("exec with token %q: %v, want a 401", token, err)
		}
	}
	// A command run with the token after them: had one of the refused
	// ones run, its file would be there before this one ends.
	if got := execIn(t, g, "/api/apps/web/exec", "", "true"); got.code != 0 {
		t.Fatalf("exec true with the token: %+v", got)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused exec ran: %s: %v", marker, err)
	}
	if evs := g.Events(telemetry.EventExec); len(evs) != 1 {
		t.Errorf("%d exec events, want only the one with the token: %+v", len(evs), evs)
	}
}

// A program that is not there is refused as a shell would (127), and
// an unknown app or instance is a 404.
func TestExecRefusesWhatCannotRun(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	c := admin.NewClient(g.AdminURL, execToken)
	var out bytes.Buffer
	_, err := c.Exec(context.Background(), "/api/apps/web/exec", []string{"no-such-program-here"}, nil, &out, &out)
	var nr *admin.ExecNotRunError
	if !errors.As(err, &nr) || nr.Code != 127 {
		t.Errorf("exec of a missing program: %v, want exit code 127", err)
	}
	for _, path := range []string{"/api/apps/nope/exec", "/api/instances/web-9/exec"} {
		_, err := c.Exec(context.Background(), path, []string{"true"}, nil, &out, &out)
		var he *admin.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusNotFound {
			t.Errorf("exec at %s: %v, want a 404", path, err)
		}
	}
}

// lineWriter hands the first line written to it to first.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if l, _, ok := strings.Cut(w.buf.String(), "\n"); ok && w.first != nil {
		w.first <- l
		w.first = nil
	}
	return len(p), nil
}

// runUntilCancelled starts sh -c 'echo $$; exec sleep 1000' through exec
// and returns its pid once it printed it, with the cancel that ends the
// client and the channel of Exec's result.
func runUntilCancelled(t *testing.T, g *harness.Gatehouse) (int, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan string, 1)
	w := &lineWriter{first: first}
	res := make(chan error, 1)
	go func() {
		_, err := admin.NewClient(g.AdminURL, execToken).Exec(ctx, "/api/apps/web/exec", []string{"sh", "-c", "echo $$; exec sleep 1000"}, nil, w, w)
		res <- err
	}()
	select {
	case l := <-first:
		pid, err := strconv.Atoi(l)
		if err != nil {
			cancel()
			<-res
			t.Fatalf("first line %q", l)
		}
		return pid, cancel, res
	case err := <-res:
		cancel()
		t.Fatalf("exec ended before its first line: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		<-res
		t.Fatal("no first line within 15s")
	}
	return 0, cancel, res
}

// The client leaving (Ctrl-C closes its connection) kills the command.
func TestExecClientLeavingKillsTheCommand(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	pid, cancel, res := runUntilCancelled(t, g)
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("Exec after cancel: %v, want context.Canceled", err)
	}
	var ev telemetry.Event
	testutil.WaitFor(t, 10*time.Second, "exec_exited after the client left", func() bool {
		evs := g.Events(telemetry.EventExecExited)
		if len(evs) == 1 {
			ev = evs[0]
		}
		return len(evs) == 1
	})
	if ev.Signal != "SIGKILL" || ev.PID != pid || !strings.Contains(ev.Detail, "the client left") {
		t.Errorf("exec_exited %+v, want pid %d killed by SIGKILL as the client left", ev, pid)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still there after its exec ended: %v", pid, err)
	}
}

// Beyond the concurrent commands allowed, exec is refused 429 at once.
func TestExecRefusesBeyondTheLimit(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	var cancels []context.CancelFunc
	var results []<-chan error
	for range 8 {
		_, cancel, res := runUntilCancelled(t, g)
		cancels, results = append(cancels, cancel), append(results, res)
	}
	var out bytes.Buffer
	_, err := admin.NewClient(g.AdminURL, execToken).Exec(context.Background(), "/api/apps/web/exec", []string{"true"}, nil, &out, &out)
	var he *admin.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusTooManyRequests {
		t.Errorf("a 9th exec: %v, want a 429", err)
	}
	for i, cancel := range cancels {
		cancel()
		<-results[i]
	}
	// Their slots come back as they end.
	testutil.WaitFor(t, 10*time.Second, "the 8 commands ended", func() bool {
		return len(g.Events(telemetry.EventExecExited)) == 8
	})
	if got := execIn(t, g, "/api/apps/web/exec", "", "true"); got.code != 0 {
		t.Errorf("exec after the others ended: %+v", got)
	}
}

// gateWriter blocks every Write until open is closed.
type gateWriter struct {
	open   chan struct{}
	n      atomic.Int64
	wanted chan struct{} // closed at the first Write
	once   sync.Once
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.wanted) })
	<-w.open
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// procWchan is what process pid waits in ("pipe_write": a write to a
// full pipe), "" when it is gone.
func procWchan(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
	return string(b)
}

// procWritten is how many bytes process pid has written.
func procWritten(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// A client that does not read holds the command back: gatehouse keeps no
// more than a frame, the pipe and the socket's buffers of its output,
// and the command blocks in its write until the client reads again;
// then every byte arrives.
func TestExecCommandBlocksWhenTheClientDoesNotRead(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	const total = 256 << 20
	const bound = 32 << 20 // far beyond a pipe, a frame and loopback's socket buffers
	w := &gateWriter{open: make(chan struct{}), wanted: make(chan struct{})}
	first := make(chan string, 1)
	pidw := &lineWriter{first: first}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The command writes its output once it has read a line, after its
	// pid has arrived: the client, blocked in w, reads no frame after.
	stdin, start := io.Pipe()
	defer start.Close()
	res := make(chan error, 1)
	go func() {
		// exec replaces sh by head: $$ is the writer's pid.
		_, err := admin.NewClient(g.AdminURL, execToken).Exec(ctx, "/api/apps/web/exec",
			[]string{"sh", "-c", fmt.Sprintf("echo $$ >&2; read x; exec head -c %d /dev/zero", total)}, stdin, w, pidw)
		res <- err
	}()
	var pid int
	select {
	case l := <-first:
		pid, _ = strconv.Atoi(l)
	case err := <-res:
		t.Fatalf("exec ended early: %v", err)
	}
	if _, err := start.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	<-w.wanted
	testutil.WaitFor(t, 20*time.Second, "head blocked writing to its pipe", func() bool {
		return strings.Contains(procWchan(pid), "pipe_write")
	})
	t.Logf("the command blocked after writing %d bytes", procWritten(pid))
	if n := procWritten(pid); n < 0 || n > bound {
		t.Errorf("the command wrote %d bytes while its client read none; want at most %d", n, bound)
	}
	close(w.open)
	if err := <-res; err != nil {
		t.Fatalf("exec: %v", err)
	}
	if n := w.n.Load(); n != total {
		t.Errorf("the client got %d bytes, want %d", n, total)
	}
}

// Bytes no client sends (a frame longer than the limit) end the
// conversation as the client leaving does: the command is killed.
func TestExecGarbageFromTheClientKillsTheCommand(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.AdminURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"argv": ["sleep", "1000"]}`
	fmt.Fprintf(conn, "POST /api/apps/web/exec HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: gatehouse-exec\r\nContent-Length: %d\r\n\r\n%s", execToken, len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("exec answer: %v %v", resp, err)
	}
	testutil.WaitFor(t, 10*time.Second, "the exec event", func() bool { return len(g.Events(telemetry.EventExec)) == 1 })
	pid := g.Events(telemetry.EventExec)[0].PID
	conn.Write([]byte{0, 0xff, 0xff, 0xff, 0xff})
	testutil.WaitFor(t, 10*time.Second, "exec_exited", func() bool { return len(g.Events(telemetry.EventExecExited)) == 1 })
	if ev := g.Events(telemetry.EventExecExited)[0]; ev.Signal != "SIGKILL" || ev.PID != pid {
		t.Errorf("exec_exited %+v, want pid %d killed", ev, pid)
	}
	// The server closes the connection without an exit frame.
	if b, _ := io.ReadAll(br); len(b) != 0 {
		t.Errorf("after garbage the server sent %q", b)
	}
}

// gatehouse stopping ends a command still running through exec, and its
// client hears the end.
func TestExecEndsWhenGatehouseStops(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	pid, cancel, res := runUntilCancelled(t, g)
	defer cancel()
	g.Stop(t)
	select {
	case err := <-res:
		if err != nil {
			t.Errorf("Exec: %v, want the command's end (killed: 137)", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Exec still running 15s after gatehouse stopped")
	}
	evs := g.Events(telemetry.EventExecExited)
	if len(evs) != 1 || evs[0].Signal != "SIGKILL" || !strings.Contains(evs[0].Detail, "gatehouse stopped") {
		t.Errorf("exec_exited events %+v, want one: killed as gatehouse stopped", evs)
	}
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("pid %d gone", pid), func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
}

// zeros is a stdin that never ends.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// The client leaving is seen even while its stdin fills a command that
// does not read it: the command is killed all the same.
func TestExecClientLeavingKillsACommandThatIgnoresItsStdin(t *testing.T) {
	t.Parallel()
	g, _ := startForExec(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan string, 1)
	w := &lineWriter{first: first}
	res := make(chan error, 1)
	go func() {
		_, err := admin.NewClient(g.AdminURL, execToken).Exec(ctx, "/api/apps/web/exec", []string{"sh", "-c", "echo $$; exec sleep 1000"}, zeros{}, w, w)
		res <- err
	}()
	var pid int
	select {
	case l := <-first:
		pid, _ = strconv.Atoi(l)
	case err := <-res:
		t.Fatalf("exec ended before its first line: %v", err)
	}
	// Wait until the command's stdin pipe is full: gatehouse is blocked
	// writing to it.
	testutil.WaitFor(t, 10*time.Second, "the command's stdin full", func() bool {
		return pipeFull(pid)
	})
	cancel()
	<-res
	testutil.WaitFor(t, 10*time.Second, "exec_exited after the client left", func() bool {
		return len(g.Events(telemetry.EventExecExited)) == 1
	})
	if ev := g.Events(telemetry.EventExecExited)[0]; ev.Signal != "SIGKILL" || !strings.Contains(ev.Detail, "the client left") {
		t.Errorf("exec_exited %+v, want killed as the client left", ev)
	}
}

// pipeFull reports whether process pid's stdin pipe holds 64 KiB unread
// (FIONREAD, TIOCINQ, on a descriptor of it opened through /proc).
func pipeFull(pid int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd/0", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n >= 64<<10
}
