package cli_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// notifyListener is a unixgram socket standing where systemd's notify
// socket would; its datagrams arrive on msgs in order.
type notifyListener struct {
	path string
	msgs chan string
	// watchdogs counts the WATCHDOG=1 datagrams next skipped.
	watchdogs int
}

// listenNotify binds the socket in dir; cleanup closes it and waits for
// its reader.
func listenNotify(t *testing.T, dir string) *notifyListener {
	t.Helper()
	n := &notifyListener{path: filepath.Join(dir, "notify"), msgs: make(chan string, 1024)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			select {
			case n.msgs <- string(buf[:k]):
			default: // a test that stopped reading; drop
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// next returns the next datagram that is not a watchdog ping, failing
// the test after d.
func (n *notifyListener) next(t *testing.T, d time.Duration, what string) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-n.msgs:
			if m == "WATCHDOG=1\n" {
				n.watchdogs++
				continue
			}
			return m
		case <-timeout:
			t.Fatalf("no %s on the notify socket within %v", what, d)
			return ""
		}
	}
}

// monotonicUsec is CLOCK_MONOTONIC in µs, as systemd compares it.
func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// Under systemd (NOTIFY_SOCKET set, Type=notify) the real `gatehouse run`
// says READY=1 once its public listener answers, RELOADING=1 with
// MONOTONIC_USEC then READY=1 around a SIGHUP reload, STOPPING=1 on
// SIGTERM, and pings the watchdog meanwhile; its apps inherit none of
// systemd's variables.
func TestRunUnderSystemd(t *testing.T) {
	dir := t.TempDir()
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	testutil.BuildBinary(t, gatehousePkg)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cfgText := fmt.Sprintf(`listen: %q
admin: %q
data_dir: data
apps:
  web:
    command: [%q]
    instances: 1
    routes: ["/"]
    health: {path: /healthz, interval: 200ms, timeout: 1s}
    start_timeout: 10s
    stop_timeout: 2s
`, listen, adminAddr, fault)
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	sd := listenNotify(t, dir)
	// What systemd sets for a Type=notify unit with WatchdogSec=1s and
	// socket activation; WATCHDOG_PID unset means whoever reads it.
	for k, v := range map[string]string{
		"NOTIFY_SOCKET": sd.path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "",
		"LISTEN_FDS": "0", "LISTEN_PID": "1", "LISTEN_FDNAMES": "none",
	} {
		t.Setenv(k, v)
	}
	g := startGatehouse(t, dir, "run", "-c", cfgFile)
	c := httpClient(t, 40*time.Second)

	// READY=1: the public listener answers at once (the request waits
	// for the instance, within hold_timeout).
	if got := sd.next(t, 20*time.Second, "READY=1"); got != "READY=1\nSTATUS=serving\n" {
		t.Fatalf("first notify datagram %q, want READY=1", got)
	}
	resp, err := c.Get("http://" + listen + "/")
	if err != nil {
		t.Fatalf("public listener after READY=1: %v", err)
	}
	readBody(t, resp)
	adminURL := "http://" + adminAddr
	waitReady(t, c, adminURL, "web", 1, g)

	// The app's environment, by the pid `gatehouse status --json` gives.
	stdout, stderr, code := gatehouse(t, dir, "status", "--json", "--admin", adminURL)
	var st admin.StatusResponse
	if code != 0 || jsonUnmarshal(stdout, &st) != nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 {
		t.Fatalf("status --json: exit %d\n%s\n%s", code, stdout, stderr)
	}
	pid := st.Apps[0].Instances[0].PID
	g.track([]int{pid}, nil)
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]bool{}
	for _, kv := range bytes.Split(environ, []byte{0}) {
		k, _, _ := strings.Cut(string(kv), "=")
		env[k] = true
	}
	if !env["GATEHOUSE_INSTANCE"] {
		t.Fatalf("pid %d's environment has no GATEHOUSE_INSTANCE: not the instance?\n%q", pid, environ)
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
		if env[k] {
			t.Errorf("the app instance (pid %d) inherited %s", pid, k)
		}
	}

	// SIGHUP: RELOADING=1 with the time it was sent, then READY=1 once
	// the instance is replaced.
	before := monotonicUsec(t)
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloading := sd.next(t, 20*time.Second, "RELOADING=1")
	after := monotonicUsec(t)
	lines := strings.Split(reloading, "\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "MONOTONIC_USEC="); ok {
			if usec, err := strconv.ParseInt(v, 10, 64); err != nil || usec < before || usec > after {
				t.Errorf("MONOTONIC_USEC=%s, want CLOCK_MONOTONIC between %d and %d", v, before, after)
			}
			lines[i] = "MONOTONIC_USEC=NOW"
		}
	}
	if diff := cmp.Diff("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=NOW\n", strings.Join(lines, "\n")); diff != "" {
		t.Errorf("after SIGHUP (-want +got):\n%s", diff)
	}
	if got := sd.next(t, 30*time.Second, "READY=1 after the reload"); got != "READY=1\nSTATUS=serving\n" {
		t.Errorf("after RELOADING=1: %q, want READY=1", got)
	}
	if st := status(c, adminURL); st != nil {
		for _, in := range st.Apps[0].Instances {
			g.track([]int{in.PID}, nil)
		}
	}

	// The watchdog has been pinged every 0.5s meanwhile.
	if sd.watchdogs == 0 {
		t.Errorf("no WATCHDOG=1 with WATCHDOG_USEC=1000000")
	}

	// SIGTERM: STOPPING=1, then a clean exit.
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := sd.next(t, 20*time.Second, "STOPPING=1"); got != "STOPPING=1\nSTATUS=stopping: draining requests, then the apps\n" {
		t.Errorf("after SIGTERM: %q, want STOPPING=1", got)
	}
	if code := g.wait(t, 20*time.Second); code != 0 {
		t.Errorf("gatehouse exit %d after SIGTERM, want 0", code)
	}
	// Nothing but a last watchdog ping may follow.
	for {
		select {
		case m := <-sd.msgs:
			if m != "WATCHDOG=1\n" {
				t.Errorf("after STOPPING=1: %q", m)
			}
			continue
		default:
		}
		break
	}
}
