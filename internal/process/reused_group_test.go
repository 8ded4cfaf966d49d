package process

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// startAtPID starts sleep as the leader of its own process group with
// pid pid, which must be free: the kernel hands out ns_last_pid+1 next
// (writable by root only). Other processes may fork in between, so it
// tries a few times; false when pid could not be had. ended closes
// once sleep has ended.
func startAtPID(t *testing.T, pid int) (ended <-chan struct{}, ok bool) {
	t.Helper()
	for range 50 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot choose the next pid (needs root): %v", err)
		}
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			t.Cleanup(func() { cmd.Process.Kill(); <-done })
			return done, true
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	return nil, false
}

// Once an app process has ended and nothing is left in its group, its
// pid (and so its group id) may be taken by another program's process
// group. Signalling the group then must reach nothing: gatehouse never
// touches a reused pid, whether it started the process or adopted it.
func TestSignalGroupSparesAReusedGroup(t *testing.T) {
	testutil.SkipInShort(t)
	tests := []struct {
		name string
		sig  syscall.Signal
	}{
		// onExit's SIGKILL, sent to the group of an app that crashed.
		{"sigkill after the app exited", syscall.SIGKILL},
		// shutdown's SIGTERM, sent to an app that ended meanwhile.
		{"sigterm after the app exited", syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// OwnsGroup as an instance's: it finds no member, and the
			// group had none as the app ended.
			p, err := Spawn(Spec{Argv: []string{"true"}, Dir: dir, Env: []string{"PATH=/usr/bin:/bin"}, Out: io.Discard,
				StatusPath: filepath.Join(dir, "status"), OwnsGroup: func() bool { return false }})
			if err != nil {
				t.Fatal(err)
			}
			<-p.Exited()
			ended, ok := startAtPID(t, p.PID())
			if !ok {
				t.Skipf("pid %d was taken by another process first", p.PID())
			}
			p.SignalGroup(tt.sig)
			// A signal is delivered as kill returns; the process it
			// killed is reaped soon after.
			select {
			case <-ended:
				t.Fatalf("%s sent to the group of pid %d, which had ended, killed another program's group of that id",
					unix.SignalName(tt.sig), p.PID())
			case <-time.After(500 * time.Millisecond):
			}
		})
	}
}

// A child the app left behind keeps its group: once the app has ended,
// the group is still signalled while OwnsGroup proves a member is the
// app's (it would hold the app's port, or leak), and not without it.
func TestSignalGroupReachesLeftBehindChildren(t *testing.T) {
	testutil.SkipInShort(t)
	tests := []struct {
		name      string
		ownsGroup func() bool
		killed    bool
	}{
		{"a member proves the group the app's", func() bool { return true }, true},
		// A member whose environment no longer shows the instance's
		// identity (a child that set its process title overwrites it):
		// it was in the group as the app ended, so the group is the app's.
		{"a member that was there as the app ended", func() bool { return false }, true},
		{"nothing proves the group the app's", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "child")
			script := "sleep 60 >/dev/null 2>&1 & echo $! > " + pidfile + "; exit 0"
			p, err := Spawn(Spec{Argv: []string{"sh", "-c", script}, Dir: dir, Env: []string{"PATH=/usr/bin:/bin"},
				Out: io.Discard, StatusPath: filepath.Join(dir, "status"), OwnsGroup: tt.ownsGroup})
			if err != nil {
				t.Fatal(err)
			}
			<-p.Exited()
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			child, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			id := procid.Of(child)
			t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
			p.SignalGroup(syscall.SIGKILL)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			// The child is the shim's orphan, reaped by init: ended once
			// its pidfd turns readable.
			killed := procid.Wait(ctx, id) == nil
			if killed != tt.killed {
				t.Fatalf("left-behind child %d killed = %v, want %v", child, killed, tt.killed)
			}
		})
	}
}
