package procid

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReadStat(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.StartTicks == 0 || st.PGRP <= 0 || st.State == 'Z' || st.PPID != os.Getppid() {
		t.Errorf("ReadStat(self) = %+v", st)
	}
	if again := Of(os.Getpid()); again.StartTicks != st.StartTicks || !again.Alive() {
		t.Errorf("Of(self) = %+v, alive %v; want start ticks %d, alive", again, again.Alive(), st.StartTicks)
	}
	if _, err := ReadStat(1 << 30); err == nil {
		t.Error("ReadStat of no process: no error")
	}
	if (ID{PID: os.Getpid(), StartTicks: st.StartTicks + 1}).Alive() {
		t.Error("an ID with another start time is alive: a reused pid would be taken for the process")
	}
}

// A running process is not exiting; one dead and not yet reaped (a
// zombie) is.
func TestExitingSeesAnUnreapedDeath(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if st, err := ReadStat(pid); err != nil || st.Exiting() {
		t.Errorf("running: %+v, %v; want not exiting", st, err)
	}
	cmd.Process.Kill()
	var st Stat
	if !testutil.Eventually(10*time.Second, func() bool { st, _ = ReadStat(pid); return st.Exiting() }) {
		t.Errorf("killed, not reaped: %+v; want exiting", st)
	}
	cmd.Wait()
}

// Wait sees a process end whether it is a zombie (its parent, this test,
// has not reaped it) or gone, and a process it waits for that another
// waiter reaps.
func TestWaitSeesExit(t *testing.T) {
	for _, tc := range []struct {
		name string
		reap bool
	}{{"zombie", false}, {"reaped", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sleep", "0.3")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			id := Of(cmd.Process.Pid)
			if !id.Alive() {
				t.Fatalf("%+v not alive right after start", id)
			}
			reaped := make(chan struct{})
			if tc.reap {
				go func() { cmd.Wait(); close(reaped) }()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			if err := Wait(ctx, id); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if d := time.Since(start); d < 200*time.Millisecond {
				t.Errorf("Wait returned after %s, before the process could have ended", d)
			}
			if id.Alive() {
				t.Error("Wait returned while the process is alive")
			}
			if tc.reap {
				<-reaped
			} else {
				cmd.Wait()
			}
			if err := Wait(ctx, id); err != nil {
				t.Errorf("Wait on an ended process: %v", err)
			}
		})
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for _, f := range []func(context.Context, ID) error{Wait, pollWait} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := f(ctx, Of(cmd.Process.Pid))
		cancel()
		if err != context.DeadlineExceeded {
			t.Errorf("wait on a live process until the context ends: %v, want %v", err, context.DeadlineExceeded)
		}
	}
}

// Wait watches a process this one is not the parent of: a shell's
// background child, which the shell leaves behind when it exits.
func TestWaitNonChild(t *testing.T) {
	out, err := exec.Command("sh", "-c", `sleep 1 >/dev/null 2>&1 & echo $!`).Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("sh printed %q: %v", out, err)
	}
	id := Of(pid)
	st, err := ReadStat(pid)
	if err != nil || !id.Alive() {
		t.Fatalf("grandchild %d not running right after its start: %+v, %v", pid, st, err)
	}
	if st.PPID == os.Getpid() {
		t.Fatalf("grandchild %d is this process's child", pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := Wait(ctx, id); err != nil {
		t.Fatalf("Wait for a non-child: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("Wait returned after %s, before the process could have ended", d)
	}
	if id.Alive() {
		t.Error("Wait returned while the process is alive")
	}
}

// An ID whose start time is not the running process's names a process
// that has ended, its pid since reused: there is nothing to wait for.
func TestWaitReusedPID(t *testing.T) {
	self := Of(os.Getpid())
	for _, tc := range []struct {
		name string
		wait func(context.Context, ID) error
	}{{"Wait", Wait}, {"pollWait", pollWait}} {
		for _, wrong := range []struct {
			name  string
			ticks uint64
		}{{"earlier", self.StartTicks - 1}, {"later", self.StartTicks + 1}, {"zero", 0}} {
			t.Run(tc.name+"/"+wrong.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				start := time.Now()
				if err := tc.wait(ctx, ID{PID: self.PID, StartTicks: wrong.ticks}); err != nil {
					t.Errorf("wait: %v, want nil", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("wait took %s, want at once", d)
				}
			})
		}
	}
}
