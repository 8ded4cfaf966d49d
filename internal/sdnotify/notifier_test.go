package sdnotify_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/sdnotify"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// notifySocket binds a unixgram socket in a temp dir, as systemd's
// notify socket, and points NOTIFY_SOCKET at it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("WATCHDOG_PID", "")
	return c
}

// receive reads one datagram, failing the test after d.
func receive(t *testing.T, c *net.UnixConn, d time.Duration) string {
	t.Helper()
	s, err := tryReceive(c, d)
	if err != nil {
		t.Fatalf("no notify datagram within %v: %v", d, err)
	}
	return s
}

// tryReceive reads one datagram within d.
func tryReceive(c *net.UnixConn, d time.Duration) (string, error) {
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	return string(buf[:n]), err
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

// Each message is one datagram with exactly these assignments; the
// reload's MONOTONIC_USEC is read while it is sent.
func TestMessages(t *testing.T) {
	sock := notifySocket(t)
	n := sdnotify.New(nil)
	if n == nil {
		t.Fatal("New returned nil with NOTIFY_SOCKET set")
	}
	for _, tc := range []struct {
		name string
		send func()
		want string
	}{
		{"ready", n.Ready, "READY=1\nSTATUS=serving\n"},
		{"reloading", n.Reloading, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=NOW\n"},
		{"stopping", n.Stopping, "STOPPING=1\nSTATUS=stopping: draining requests, then the apps\n"},
		{"main pid", func() { n.MainPID(4711) }, "MAINPID=4711\nREADY=1\nSTATUS=serving\n"},
		{"status", func() { n.Status("two\nlines") }, "STATUS=two lines\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := monotonicUsec(t)
			tc.send()
			after := monotonicUsec(t)
			got := receive(t, sock, 5*time.Second)
			got = checkMonotonic(t, got, before, after)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("datagram (-want +got):\n%s", diff)
			}
		})
	}
}

// checkMonotonic checks that a MONOTONIC_USEC in msg lies between before
// and after, and replaces its value with NOW.
func checkMonotonic(t *testing.T, msg string, before, after int64) string {
	t.Helper()
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		v, ok := strings.CutPrefix(l, "MONOTONIC_USEC=")
		if !ok {
			continue
		}
		usec, err := strconv.ParseInt(v, 10, 64)
		if err != nil || usec < before || usec > after {
			t.Errorf("MONOTONIC_USEC=%s, want CLOCK_MONOTONIC between %d and %d µs", v, before, after)
		}
		lines[i] = "MONOTONIC_USEC=NOW"
	}
	return strings.Join(lines, "\n")
}

// The watchdog pings every half of WATCHDOG_USEC while alive() holds,
// is silent while it does not, and stops with its context.
func TestWatchdog(t *testing.T) {
	sock := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := sdnotify.New(nil)
	var alive atomic.Bool
	var deadAsked atomic.Int64
	alive.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.RunWatchdog(ctx, func() bool {
			if alive.Load() {
				return true
			}
			deadAsked.Add(1)
			return false
		})
	}()

	start := time.Now()
	for range 4 {
		if got := receive(t, sock, 5*time.Second); got != "WATCHDOG=1\n" {
			t.Fatalf("watchdog sent %q, want WATCHDOG=1", got)
		}
	}
	// Four pings 100ms apart, the first at once: about 300ms.
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("4 pings in %v, want them every 100ms (half of WATCHDOG_USEC)", took)
	}

	// Not alive: once the watchdog has asked twice, whatever it sent
	// before is in the socket; after two more asks nothing is.
	alive.Store(false)
	testutil.WaitFor(t, 5*time.Second, "two ticks while not alive", func() bool { return deadAsked.Load() >= 2 })
	for {
		if _, err := tryReceive(sock, 0); err != nil {
			break
		}
	}
	asked := deadAsked.Load()
	testutil.WaitFor(t, 5*time.Second, "two more ticks while not alive", func() bool { return deadAsked.Load() >= asked+2 })
	if got, err := tryReceive(sock, 0); err == nil {
		t.Errorf("watchdog sent %q while alive() was false", got)
	}

	alive.Store(true)
	if got := receive(t, sock, 5*time.Second); got != "WATCHDOG=1\n" {
		t.Errorf("watchdog sent %q once alive again, want WATCHDOG=1", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog still running 5s after its context ended")
	}
}

// A successor started by an upgrade inherits WATCHDOG_PID naming the
// process it replaces: it stays silent until it has said it is the main
// process, then pings at once.
func TestWatchdogTakeover(t *testing.T) {
	sock := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getppid()))
	n := sdnotify.New(nil)
	var asked atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.RunWatchdog(ctx, func() bool { asked.Add(1); return true })
	}()
	defer func() { cancel(); <-done }()

	// Not watched: alive() is not even asked.
	if got, err := tryReceive(sock, 500*time.Millisecond); err == nil {
		t.Fatalf("watchdog sent %q while WATCHDOG_PID named another process", got)
	}
	if a := asked.Load(); a != 0 {
		t.Errorf("alive() asked %d times while not watched", a)
	}
	n.MainPID(os.Getpid())
	want := []string{"MAINPID=" + strconv.Itoa(os.Getpid()) + "\nREADY=1\nSTATUS=serving\n", "WATCHDOG=1\n"}
	got := []string{receive(t, sock, 5*time.Second), receive(t, sock, 5*time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after MainPID (-want +got):\n%s", diff)
	}
}

// Outside systemd every method does nothing, on a nil notifier (what New
// returns) and on a zero one; the watchdog waits for its context.
func TestNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	if n := sdnotify.New(nil); n != nil {
		t.Fatalf("New without NOTIFY_SOCKET = %v, want nil", n)
	}
	for _, tc := range []struct {
		name string
		n    *sdnotify.Notifier
	}{{"nil", nil}, {"zero", &sdnotify.Notifier{}}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.Ready()
			tc.n.Reloading()
			tc.n.Stopping()
			tc.n.Status("x")
			tc.n.MainPID(os.Getpid())
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			tc.n.RunWatchdog(ctx, func() bool { return true })
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Errorf("RunWatchdog returned before its context ended")
			}
		})
	}
}

// A notify socket that is gone costs one log line, however many
// messages fail.
func TestSendFailureLoggedOnce(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	var buf bytes.Buffer
	n := sdnotify.New(slog.New(slog.NewTextHandler(&buf, nil)))
	n.Ready()
	n.Reloading()
	n.Ready()
	n.Stopping()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "systemd notification failed") || !strings.Contains(lines[0], "gone") {
		t.Errorf("log = %q, want one line naming the socket", buf.String())
	}
}
