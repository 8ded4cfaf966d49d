package reaper_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/reaper"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestMain makes the test binary a child subreaper, so that orphans of
// the processes the tests start come to it, as they come to a PID 1.
func TestMain(m *testing.M) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "cannot become a child subreaper:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

// awaitZombie waits until pid has ended and is not yet reaped.
func awaitZombie(t *testing.T, pid int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("process %d to end", pid), func() bool {
		st, err := procid.ReadStat(pid)
		return err == nil && st.State == 'Z'
	})
}

// A child started through the reaper is never reaped by it, even as a
// zombie: its exit status is its Wait's.
func TestRegisteredChildKeepsItsStatus(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exit 3")
	if err := reaper.Start(cmd); err != nil {
		t.Fatal(err)
	}
	awaitZombie(t, cmd.Process.Pid)
	if got := reaper.Reap(); len(got) != 0 {
		t.Errorf("Reap took %v; the registered child is its Wait's", got)
	}
	var ee *exec.ExitError
	if err := reaper.Wait(cmd); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Wait: %v, want exit status 3", err)
	}
}

// An orphan (the grandchild of a double fork, reparented to this
// subreaper) is reaped, with how it ended.
func TestOrphanIsReaped(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 0.2 & echo $!")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var orphan int
	fmt.Sscan(string(out), &orphan)
	awaitZombie(t, orphan)
	got := reaper.Reap()
	want := []reaper.Reaped{{PID: orphan, Status: "exit 0"}}
	if !slices.Equal(got, want) {
		t.Errorf("Reap = %v, want %v", got, want)
	}
}

// Children started and waited for while the reaper runs, as fast as they
// come, each get their own exit status: the reaper never takes one.
func TestReaperRunsBesideWaits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reaper.Run(ctx, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 4 {
		wg.Go(func() {
			for j := range 25 {
				code := (i*25 + j) % 7
				// Each also leaves an orphan, for the reaper to be busy.
				cmd := exec.Command("sh", "-c", fmt.Sprintf("(true &); exit %d", code))
				if err := reaper.Start(cmd); err != nil {
					errs <- err
					return
				}
				err := reaper.Wait(cmd)
				var ee *exec.ExitError
				switch {
				case code == 0 && err != nil, code != 0 && (!errors.As(err, &ee) || ee.ExitCode() != code):
					errs <- fmt.Errorf("child %d exit %d: Wait returned %v", cmd.Process.Pid, code, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The orphans are all reaped in the end. Every registered child has
	// been waited for, so any child left is an orphan: one still running
	// may end at any moment, so the wait is for none at all, in any state.
	if !testutil.Eventually(10*time.Second, func() bool { return len(children(t)) == 0 }) {
		t.Errorf("children left (pid: state): %v", children(t))
	}
}

// children lists this process's children with their states.
func children(t *testing.T) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, pid := range procid.List() {
		if st, err := procid.ReadStat(pid); err == nil && st.PPID == os.Getpid() {
			out[pid] = string(st.State)
		}
	}
	return out
}
