package handover_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/handover"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// playOld is the "old" role: it starts the test binary as its successor
// (role waiter), prints "successor PID" and waits for it to be ready.
func playOld() int {
	exe, err := os.Executable()
	if err != nil {
		return 2
	}
	env := append(os.Environ(), roleEnv+"=waiter")
	succ, err := handover.Start(exe, nil, env, nil, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("successor %d\n", succ.PID())
	succ.AwaitReady(context.Background(), time.Hour)
	return 0
}

// playWaiter is the "waiter" role: it prints "waiter PID", waits until the
// old process closes its end of the channel, then says ready and prints
// what Ready returned ("gone", "gave up", "ok" or "error: MSG").
func playWaiter(in *handover.Inherited) int {
	fmt.Printf("waiter %d\n", os.Getpid())
	// The channel is fd 3 (see Start): it reads as ended once the old
	// process has closed its end.
	fds := []unix.PollFd{{Fd: 3, Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int(time.Minute/time.Millisecond)); n != 1 || err != nil {
		fmt.Println("ready: the old process never closed the channel")
		return 1
	}
	switch err := in.Ready(); {
	case errors.Is(err, handover.ErrOldProcessGone):
		fmt.Println("ready: gone")
	case errors.Is(err, handover.ErrGaveUp):
		fmt.Println("ready: gave up")
	case err != nil:
		fmt.Printf("ready: error: %v\n", err)
	default:
		fmt.Println("ready: ok")
	}
	return 0
}

// startOld starts this test binary as an old process in role, its
// output read by the line function outputFile returns. The caller waits
// for it.
func startOld(t *testing.T, role string) (*exec.Cmd, func(re *regexp.Regexp) []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, line := outputFile(t)
	old := exec.Command(exe)
	old.Env = append(os.Environ(), roleEnv+"="+role)
	old.Stdout, old.Stderr = out, os.Stderr
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	return old, line
}

// outputFile is a file for a started process's stdout, and a reader of
// the lines it wrote there.
func outputFile(t *testing.T) (*os.File, func(re *regexp.Regexp) []string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, func(re *regexp.Regexp) []string {
		var m []string
		testutil.WaitFor(t, wait, fmt.Sprintf("a line matching %s", re), func() bool {
			b, err := os.ReadFile(f.Name())
			m = re.FindStringSubmatch(string(b))
			return err == nil && m != nil
		})
		return m
	}
}

var (
	waiterLine = regexp.MustCompile(`(?m)^waiter (\d+)$`)
	readyLine  = regexp.MustCompile(`(?m)^ready: (.*)$`)
)

// killWhenDone kills pid, if it still runs, when the test ends: a
// successor whose parent is gone is nobody's child here.
func killWhenDone(t *testing.T, pid int) {
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		testutil.WaitFor(t, wait, fmt.Sprintf("pid %d to end", pid), func() bool { return !testutil.ProcessAlive(pid) })
	})
}

// An old process killed (SIGKILL) before it heard the ready line leaves
// the successor alone: Ready's error says the old process is gone, so
// that the successor, which holds the sockets, serves on.
func TestReadyAfterTheOldProcessWasKilledSaysItIsGone(t *testing.T) {
	testutil.SkipInShort(t)
	t.Parallel()
	// Not reaped until the successor has spoken: it must see the old
	// process gone while it is a zombie too.
	old, line := startOld(t, "old")
	defer old.Wait()
	defer old.Process.Kill()
	waiter, _ := strconv.Atoi(line(waiterLine)[1])
	killWhenDone(t, waiter)
	if err := old.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if got := line(readyLine)[1]; got != "gone" {
		t.Errorf("Ready after the old process was killed: %q, want it to say the old process is gone", got)
	}
}

// An old process that gave up on its successor (here, an upgrade called
// off) is still there when the successor's ready line finds the channel
// closed: Ready fails, not saying the old process is gone, so that the
// successor does not serve beside it. The successor is a wrapper
// script's child, which the old process's SIGKILL does not reach.
func TestReadyToAnOldProcessThatGaveUpFails(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The ":" after it keeps sh from exec'ing the last command.
	succ, out := startExe(t, "/bin/sh", []string{"-c", `"$0"; :`, exe}, "waiter", nil)
	line := func(re *regexp.Regexp) []string {
		t.Helper()
		l, err := out.ReadString('\n')
		m := re.FindStringSubmatch(l)
		if err != nil || m == nil {
			t.Fatalf("the successor's line %q, %v; want one matching %s", l, err, re)
		}
		return m
	}
	waiter, _ := strconv.Atoi(line(waiterLine)[1])
	killWhenDone(t, waiter)
	calledOff, cancel := context.WithCancel(context.Background())
	cancel()
	if err := succ.AwaitReady(calledOff, wait); err == nil {
		t.Fatal("AwaitReady called off succeeded")
	}
	if got := line(readyLine)[1]; got != "gave up" {
		t.Errorf("Ready to an old process that closed the channel: %q, want it to say the old process gave up", got)
	}
}

// playQuitter is the "quitter" role: an old process that calls its
// upgrade off and exits, as one stopped in the middle of it does. It
// starts the test binary as its successor (role waiter) under a wrapper
// script that its SIGKILL does not get past, prints "quitter PID", and on
// SIGUSR1 gives the successor up and exits.
func playQuitter() int {
	exe, err := os.Executable()
	if err != nil {
		return 2
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	env := append(os.Environ(), roleEnv+"=waiter")
	// The ":" after it keeps sh from exec'ing the last command.
	succ, err := handover.Start("/bin/sh", []string{"-c", `"$0"; :`, exe}, env, nil, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("quitter %d\n", os.Getpid())
	<-usr1
	calledOff, cancel := context.WithCancel(context.Background())
	cancel()
	succ.AwaitReady(calledOff, time.Hour)
	return 0
}

var quitterLine = regexp.MustCompile(`(?m)^quitter (\d+)$`)

// An old process that gave up on its successor and then exited (a stop
// in the middle of an upgrade, which stops the apps too) is gone by the
// time the successor, a wrapper script's child that its SIGKILL missed,
// says it is ready: Ready must still fail, not take the old process for
// one killed in the handover, or the successor would serve on, with the
// apps the stop stopped, after gatehouse was stopped.
func TestReadyAfterTheOldProcessGaveUpAndExitedFails(t *testing.T) {
	testutil.SkipInShort(t)
	t.Parallel()
	old, line := startOld(t, "quitter")
	defer old.Wait()
	defer old.Process.Kill()
	line(quitterLine)
	waiter, _ := strconv.Atoi(line(waiterLine)[1])
	killWhenDone(t, waiter)
	if err := old.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if got := line(readyLine)[1]; got != "gave up" {
		t.Errorf("Ready after the old process gave up on it and exited: %q, want it to say the old process gave up", got)
	}
}
