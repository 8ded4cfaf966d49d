package handover_test

// A successor started by handover.Start: how AwaitReady learns that it
// failed, went silent or serves (from a wrapper's child too), and which
// descriptors each side holds once the sockets are handed over.

import (
	"bufio"
	"context"
	"errors"
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

	"github.com/gatehouse/gatehouse/internal/handover"
)

// roleEnv makes the test binary play a successor (see successor) instead
// of running the tests: a real process started by handover.Start.
const roleEnv = "HANDOVER_TEST_ROLE"

// successor is what the started process does, by role:
//
//	fail   says "error: config broken" and exits 1, as gatehouse run does
//	exit3  exits with code 3 without a word
//	ready  serves the "listen" socket (after HANDOVER_TEST_WAIT): says
//	       ready, answers one connection with "new", exits
//	fds    takes the "listen" socket, closes the others, says ready, and
//	       prints each descriptor it holds with its flags
func successor(role string) int {
	in, err := handover.FromEnv()
	if err != nil || in == nil {
		fmt.Fprintln(os.Stderr, "no handover:", err)
		return 2
	}
	switch role {
	case "fail":
		in.Fail(errors.New("config broken"))
		return 1
	case "exit3":
		return 3
	case "ready":
		if d, err := time.ParseDuration(os.Getenv("HANDOVER_TEST_WAIT")); err == nil {
			time.Sleep(d) // the old process looks at its socket meanwhile
		}
		ln, ok, err := in.Listener("listen", os.Getenv("HANDOVER_TEST_ADDR"))
		if !ok || err != nil {
			in.Fail(fmt.Errorf("no listen socket: %v", err))
			return 1
		}
		in.Close()
		if err := in.Ready(); err != nil {
			return 1
		}
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		c.Write([]byte("new\n"))
		c.Close()
		return 0
	case "fds":
		_, ok, err := in.Listener("listen", os.Getenv("HANDOVER_TEST_ADDR"))
		if !ok || err != nil {
			in.Fail(fmt.Errorf("no listen socket: %v", err))
			return 1
		}
		in.Close()
		if err := in.Ready(); err != nil {
			return 1
		}
		fmt.Print(describeFDs())
		return 0
	}
	return 2
}

// describeFDs lists this process's descriptors above 2 as "N TARGET
// cloexec|inherit" lines.
func describeFDs() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		if fd <= 2 {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			continue
		}
		mode := "inherit"
		if flags&unix.FD_CLOEXEC != 0 {
			mode = "cloexec"
		}
		fmt.Fprintf(&b, "%d %s %s\n", fd, target, mode)
	}
	return b.String()
}

// startSuccessor starts the test binary as a successor in role, handing it ln as
// "listen" (bound for its own address).
func startSuccessor(t *testing.T, role string, ln *net.TCPListener, stdout *os.File, env ...string) *handover.Successor {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env = append(append(os.Environ(), env...), roleEnv+"="+role, "HANDOVER_TEST_ADDR="+ln.Addr().String())
	succ, err := handover.Start(exe, nil, env, []handover.Listener{{Key: "listen", Addr: ln.Addr().String(), Ln: ln}}, stdout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return succ
}

// listenLoopback is a TCP listener on 127.0.0.1, closed when the test ends.
func listenLoopback(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// awaitReadyWithin runs AwaitReady, failing the test if it has not returned
// within bound (its goroutine is then left behind).
func awaitReadyWithin(t *testing.T, succ *handover.Successor, timeout, bound time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- succ.AwaitReady(context.Background(), timeout) }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Fatalf("AwaitReady(%v) has not returned after %v: the old gatehouse's upgrade hangs", timeout, bound)
		return nil
	}
}

// A successor that cannot take over (its config fails, its address is
// taken) says why, or exits; the old process must learn it at once, kill
// it, and say why, so that it takes its instances back and `gatehouse
// upgrade` exits 1 with the reason. It must not wait forever.
func TestAwaitReadyReturnsTheSuccessorsFailure(t *testing.T) {
	for _, tc := range []struct {
		role, reason string
	}{
		{"fail", "config broken"},
		{"exit3", "it exited with code 3 before it was ready"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			succ := startSuccessor(t, tc.role, listenLoopback(t), nil)
			err := awaitReadyWithin(t, succ, time.Minute, 20*time.Second)
			var he *handover.Error
			if !errors.As(err, &he) {
				t.Fatalf("AwaitReady = %v, want a *handover.Error", err)
			}
			if diff := cmp.Diff(tc.reason, he.Reason); diff != "" {
				t.Errorf("reason (-want +got):\n%s", diff)
			}
			if he.PID != succ.PID() {
				t.Errorf("error's pid %d, want %d", he.PID, succ.PID())
			}
		})
	}
}

// A successor that stays silent is killed after the timeout.
func TestAwaitReadyKillsASilentSuccessor(t *testing.T) {
	succ, err := handover.Start("/bin/sh", []string{"-c", "exec sleep 60"}, os.Environ(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = awaitReadyWithin(t, succ, 300*time.Millisecond, 20*time.Second)
	var he *handover.Error
	if !errors.As(err, &he) || !strings.Contains(he.Reason, "not ready within 300ms") {
		t.Fatalf("AwaitReady = %v, want not ready within 300ms", err)
	}
	if testProcessAlive(succ.PID()) {
		t.Errorf("the silent successor (pid %d) is still running", succ.PID())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("AwaitReady took %v", d)
	}
}

func testProcessAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// waitReaped waits until the successor pid, which exits on its own once
// served, is gone and reaped (by Start's goroutine, which then ends).
func waitReaped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for testProcessAlive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the successor (pid %d) has not exited", pid)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The successor serves on the very socket the old process listens on, and
// the old one's socket stays non-blocking (a blocking listening socket
// would tie up a thread in accept, and Close would no longer end it):
// exec's Fd() must not have switched the shared file description to
// blocking mode.
func TestSuccessorServesTheHandedSocketWhichStaysNonBlocking(t *testing.T) {
	ln := listenLoopback(t)
	// The successor waits before it takes the socket (net.FileListener
	// would make it non-blocking again): the mode is Start's doing.
	succ := startSuccessor(t, "ready", ln, nil, "HANDOVER_TEST_WAIT=1s")
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var nonblock bool
	rc.Control(func(fd uintptr) {
		fl, _ := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nonblock = fl&unix.O_NONBLOCK != 0
	})
	if !nonblock {
		t.Errorf("the old process's listening socket is in blocking mode after Start")
	}
	if err := awaitReadyWithin(t, succ, time.Minute, 20*time.Second); err != nil {
		t.Fatalf("AwaitReady: %v", err)
	}
	// The old process stops accepting, as it does once the successor
	// serves; the connection is the successor's.
	ln.Close()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatalf("dial after the old process closed its socket: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "new\n" {
		t.Fatalf("read %q, %v; want the successor's \"new\"", line, err)
	}
	waitReaped(t, succ.PID())
}

// The successor holds no handover descriptor beyond what it took: the
// control socket is closed once it said ready, the listener it took is one
// descriptor with close-on-exec (so that no app it starts inherits it),
// and nothing else it was given stays open.
func TestSuccessorKeepsNoStrayDescriptor(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ln := listenLoopback(t)
	succ := startSuccessor(t, "fds", ln, w)
	w.Close()
	if err := awaitReadyWithin(t, succ, time.Minute, 20*time.Second); err != nil {
		t.Fatalf("AwaitReady: %v", err)
	}
	// Descriptors this test process itself passes on (from whatever
	// started it) are not the handover's.
	ambient := map[string]bool{}
	for _, l := range strings.Split(describeFDs(), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[2] == "inherit" {
			ambient[f[0]] = true
		}
	}
	var sockets, inherited []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || ambient[f[0]] {
			continue
		}
		if strings.HasPrefix(f[1], "socket:") {
			sockets = append(sockets, f[0])
		}
		if f[2] != "cloexec" {
			inherited = append(inherited, sc.Text())
		}
	}
	if len(sockets) != 1 {
		t.Errorf("the successor holds %d sockets (%v), want 1: the listener it took", len(sockets), sockets)
	}
	if len(inherited) > 0 {
		t.Errorf("descriptors an app would inherit: %v", inherited)
	}
	waitReaped(t, succ.PID())
}

// The handed descriptors are not left open in the old process either:
// Start closes its copies once the successor has them.
func TestStartLeavesNoDescriptorInTheOldProcess(t *testing.T) {
	before := countOpenFDs(t)
	ln := listenLoopback(t)
	afterListen := countOpenFDs(t)
	succ := startSuccessor(t, "ready", ln, nil)
	if err := awaitReadyWithin(t, succ, time.Minute, 20*time.Second); err != nil {
		t.Fatalf("AwaitReady: %v", err)
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err == nil {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		bufio.NewReader(c).ReadString('\n') // lets the successor exit
		c.Close()
	}
	waitReaped(t, succ.PID())
	// The successor's pidfd goes once it is reaped, a moment after it
	// exits.
	deadline := time.Now().Add(10 * time.Second)
	for countOpenFDs(t) > afterListen && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := countOpenFDs(t); got > afterListen {
		t.Errorf("descriptors: %d before, %d with the listener, %d after the handover", before, afterListen, got)
	}
}

// countOpenFDs is the number of descriptors this process holds.
func countOpenFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// The gatehouse at the executable's path may be a wrapper script that runs
// the real binary as its child rather than exec'ing it. The process that
// says ready is then the script's child: it serves, and the handover must
// be taken as done with it, not refused while it serves on beside the old
// process (which would take its instances back: two gatehouses on the same
// sockets and apps).
func TestAwaitReadyFromAWrappersChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ln := listenLoopback(t)
	env := append(os.Environ(), roleEnv+"=ready", "HANDOVER_TEST_ADDR="+ln.Addr().String())
	// The ":" after it keeps sh from exec'ing the last command.
	succ, err := handover.Start("/bin/sh", []string{"-c", `"$0"; :`, exe}, env,
		[]handover.Listener{{Key: "listen", Addr: ln.Addr().String(), Ln: ln}}, nil, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	shell := succ.PID()
	if err := awaitReadyWithin(t, succ, time.Minute, 20*time.Second); err != nil {
		t.Fatalf("AwaitReady: %v", err)
	}
	if succ.PID() == shell {
		t.Errorf("PID() is the wrapper's (%d), not the process that serves", shell)
	}
	// Let the successor finish: it answers one connection and exits.
	ln.Close()
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		bufio.NewReader(c).ReadString('\n')
		c.Close()
	}
	waitReaped(t, succ.PID())
	waitReaped(t, shell)
}
