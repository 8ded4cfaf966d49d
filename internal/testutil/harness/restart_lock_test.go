package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

// A gatehouse started on the data_dir of one this process stopped a
// moment before waits for the lock a process forked meanwhile still
// shares (until it execs; here, for as long as it runs), rather than
// failing as if another gatehouse held the data_dir.
func TestStartWaitsForALockAForkStillShares(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gatehouse and an app")
	}
	cfg, _ := FaultApp(t, 1)
	g := Start(t, cfg)
	g.WaitReady(t, "web", 1, 15*time.Second)
	lock := dupOpenFile(t, filepath.Join(cfg.DataDir, server.LockFile))
	child := exec.Command("sleep", "2")
	child.ExtraFiles = []*os.File{lock}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	exited := make(chan struct{})
	go func() { child.Wait(); close(exited) }()
	t.Cleanup(func() { child.Process.Kill(); <-exited })
	g.Stop(t)
	select {
	case <-exited:
		t.Skip("the child ended before the stop did; the lock was shared by no one")
	default:
	}
	next := Start(t, cfg)
	next.WaitReady(t, "web", 1, 15*time.Second)
	select {
	case <-exited:
	default:
		t.Fatal("the second gatehouse took the data_dir while the first's lock was still shared")
	}
}

// dupOpenFile is a new descriptor of this process's open file at path.
func dupOpenFile(t *testing.T, path string) *os.File {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == path {
			d, err := syscall.Dup(fd)
			if err != nil {
				t.Fatal(err)
			}
			syscall.CloseOnExec(d)
			return os.NewFile(uintptr(d), path)
		}
	}
	t.Fatalf("%s is not open", path)
	return nil
}
