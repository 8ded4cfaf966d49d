package handover_test

// A successor started by handover.Start: the socket it is handed (which
// stays non-blocking in the old process), the descriptors each side holds
// once the sockets are handed over, and a successor under a wrapper.

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// nonBlocking reports whether ln's socket is in non-blocking mode.
func nonBlocking(t *testing.T, ln *net.TCPListener) bool {
	t.Helper()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	return flags&unix.O_NONBLOCK != 0
}

// answer reads the "ready" role's one answer on a new connection to addr,
// which lets it exit.
func answer(t *testing.T, addr string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(wait))
	return bufio.NewReader(c).ReadString('\n')
}

// The old process accepts on until the successor is ready, so its
// listener must stay non-blocking: a blocking socket (what passing
// (*TCPListener).File to exec would make of it, the mode being the
// socket's) ties a thread up in accept and ignores deadlines, so that
// the old process could not stop accepting. It is looked at before the
// successor takes the socket (net.FileListener would make it
// non-blocking again): the mode is Start's doing. The successor then
// serves on that very socket.
func TestHandedSocketStaysNonBlockingAndGoesToTheSuccessor(t *testing.T) {
	ln := listen(t)
	succ, out := startRole(t, "ready", handed(ln), holdEnv+"=1")
	if line, err := out.ReadString('\n'); err != nil || line != "holding\n" {
		t.Fatalf("the successor's first line: %q, %v; want holding", line, err)
	}
	if !nonBlocking(t, ln) {
		t.Error("the listener is in blocking mode after Start")
	}
	ln.SetDeadline(time.Now().Add(100 * time.Millisecond))
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		accepted <- err
	}()
	select {
	case err := <-accepted:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Accept with a deadline: %v, want a deadline error", err)
		}
	case <-time.After(wait):
		t.Error("Accept ignored its deadline: the listener blocks")
		// Unblock it: the holding successor does not accept.
		c, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
		if err == nil {
			c.Close()
		}
		<-accepted
	}
	ln.SetDeadline(time.Time{})

	if err := syscall.Kill(succ.PID(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := awaitReady(t, succ, time.Minute); err != nil {
		t.Fatalf("AwaitReady: %v", err)
	}
	// The old process stops accepting, as it does once the successor
	// serves; the connection is the successor's.
	ln.Close()
	if line, err := answer(t, ln.Addr().String()); err != nil || line != "new\n" {
		t.Fatalf("read %q, %v; want the successor's \"new\"", line, err)
	}
	waitReaped(t, succ.PID())
}

// The successor holds no handover descriptor beyond what it took: the
// control socket is closed once it said ready, the listener it took is one
// descriptor with close-on-exec (so that no app it starts inherits it),
// and nothing else it was given stays open.
func TestSuccessorKeepsNoStrayDescriptor(t *testing.T) {
	ln := listen(t)
	succ, out := startRole(t, "fds", handed(ln))
	if err := awaitReady(t, succ, time.Minute); err != nil {
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
	sc := bufio.NewScanner(out)
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
	if err := sc.Err(); err != nil {
		t.Fatalf("the successor's descriptors: %v", err)
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
	before := len(fds())
	ln := listen(t)
	afterListen := len(fds())
	succ, _ := startRole(t, "ready", handed(ln))
	if err := awaitReady(t, succ, time.Minute); err != nil {
		t.Fatalf("AwaitReady: %v", err)
	}
	answer(t, ln.Addr().String()) // lets the successor exit
	waitReaped(t, succ.PID())
	// The successor's pidfd goes once it is reaped, a moment after it
	// exits; the pipe of its stdout stays, for the test's end.
	afterListen++
	testutil.WaitFor(t, wait, fmt.Sprintf("the descriptors to be back to %d (%d before the listener, and its stdout's pipe)", afterListen, before),
		func() bool { return len(fds()) <= afterListen })
}

// The gatehouse at the executable's path may be a wrapper script that runs
// the real binary as its child rather than exec'ing it. The process that
// says ready is then the script's child: it serves, and the handover must
// be taken as done with it, not refused while it serves on beside the old
// process (which would take its instances back: two gatehouses on the same
// sockets and apps).
func TestAwaitReadyFromAWrappersChild(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	// The ":" after it keeps sh from exec'ing the last command.
	succ, _ := startExe(t, "/bin/sh", []string{"-c", `"$0"; :`, exe}, "ready", handed(ln))
	shell := succ.PID()
	if err := awaitReady(t, succ, time.Minute); err != nil {
		t.Fatalf("AwaitReady: %v", err)
	}
	if succ.PID() == shell {
		t.Errorf("PID() is the wrapper's (%d), not the process that serves", shell)
	}
	// Let the successor finish: it answers one connection and exits.
	ln.Close()
	answer(t, ln.Addr().String())
	waitReaped(t, succ.PID())
	waitReaped(t, shell)
}
