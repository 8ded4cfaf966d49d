package handover

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/procid"
)

// pair is a successor's end of the handover channel, and this process's
// Successor for a stand-in process (sleep) that holds the other end: the
// two halves of a handover without a second gatehouse.
func pair(t *testing.T) (*Successor, *Inherited) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.SetNonblock(fds[0], true)
	ours, theirs := os.NewFile(uintptr(fds[0]), "handover"), os.NewFile(uintptr(fds[1]), "handover-successor")
	s, err := startSuccessor(exec.Command("sleep", "60"), ours)
	if err != nil {
		ours.Close()
		theirs.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.exited
	})
	in := &Inherited{parent: os.Getpid(), old: procid.Of(os.Getpid()), control: theirs, answers: true}
	return s, in
}

// readable waits until f has bytes to read.
func readable(t *testing.T, f *os.File) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int((10 * time.Second).Milliseconds())); n != 1 || err != nil {
		t.Fatalf("the ready line did not come: %d, %v", n, err)
	}
}

// A ready line on its way as the old process gives up (its timeout ends,
// or a stop calls the upgrade off, at that moment) must not leave the
// successor serving while the old one kills it or serves on: whichever
// way the old process decides, the successor's Ready says the same.
func TestReadyAgreesWithTheOldProcessGivingUp(t *testing.T) {
	t.Parallel()
	for range 20 {
		s, in := pair(t)
		ready := make(chan error, 1)
		go func() { ready <- in.Ready() }()
		readable(t, s.control)
		calledOff, cancel := context.WithCancel(context.Background())
		cancel()
		awaitErr := s.AwaitReady(calledOff, time.Minute)
		var readyErr error
		select {
		case readyErr = <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("Ready did not return within 10s of the old process's answer")
		}
		if (awaitErr == nil) != (readyErr == nil) {
			t.Fatalf("the old process's AwaitReady: %v; the successor's Ready: %v; want both to succeed or both to fail", awaitErr, readyErr)
		}
	}
}

// An old process of a version that does not answer the ready line (its
// spec says nothing of answers) reads it and goes on: the successor takes
// the line written as taken, and serves, rather than wait for an answer
// that never comes or take the closed channel for a refusal.
func TestReadyToAnOldProcessThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	s, in := pair(t)
	in.answers = false
	ready := make(chan error, 1)
	go func() { ready <- in.Ready() }()
	l, err := bufio.NewReader(s.control).ReadString('\n')
	if want := "ready " + strconv.Itoa(os.Getpid()) + "\n"; err != nil || l != want {
		t.Fatalf("the ready line: %q, %v; want %q", l, err, want)
	}
	s.control.Close()
	select {
	case err := <-ready:
		if err != nil {
			t.Errorf("Ready to an old process that does not answer: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ready waited for an answer from an old process that gives none")
	}
}
