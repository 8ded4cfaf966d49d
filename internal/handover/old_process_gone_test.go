package handover_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

// goneRoleEnv makes the test binary play a part in the tests below
// instead of running the tests (see goneRole).
const goneRoleEnv = "HANDOVER_TEST_GONE_ROLE"

// goneRole is what the started process does, by role:
//
//	old     starts the test binary as its successor (role waiter), prints
//	        "successor PID" and waits for it to be ready
//	waiter  a successor: prints "waiter PID", waits until the old process
//	        closes its end of the channel, then says ready and prints what
//	        Ready returned ("ready: gone", "ready: ok", or "ready: error:
//	        MESSAGE")
func goneRole(role string) int {
	switch role {
	case "old":
		exe, err := os.Executable()
		if err != nil {
			return 2
		}
		env := append(os.Environ(), goneRoleEnv+"=waiter")
		succ, err := handover.Start(exe, nil, env, nil, os.Stdout, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("successor %d\n", succ.PID())
		succ.AwaitReady(context.Background(), time.Hour)
		return 0
	case "waiter":
		in, err := handover.FromEnv()
		if err != nil || in == nil {
			fmt.Fprintln(os.Stderr, "no handover:", err)
			return 2
		}
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
		case err != nil:
			fmt.Printf("ready: error: %v\n", err)
		default:
			fmt.Println("ready: ok")
		}
		return 0
	}
	return 2
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
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, line := outputFile(t)
	old := exec.Command(exe)
	old.Env = append(os.Environ(), goneRoleEnv+"=old")
	old.Stdout, old.Stderr = out, os.Stderr
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	// Not reaped until the successor has spoken: it must see the old
	// process gone while it is a zombie too.
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
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, line := outputFile(t)
	env := append(os.Environ(), goneRoleEnv+"=waiter")
	// The ":" after it keeps sh from exec'ing the last command.
	succ, err := handover.Start("/bin/sh", []string{"-c", `"$0"; :`, exe}, env, nil, out, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	waiter, _ := strconv.Atoi(line(waiterLine)[1])
	killWhenDone(t, waiter)
	calledOff, cancel := context.WithCancel(context.Background())
	cancel()
	if err := succ.AwaitReady(calledOff, wait); err == nil {
		t.Fatal("AwaitReady called off succeeded")
	}
	got := line(readyLine)[1]
	if want := regexp.MustCompile(`^error: .*broken pipe`); !want.MatchString(got) {
		t.Errorf("Ready to an old process that closed the channel: %q, want an error (%s)", got, want)
	}
}
