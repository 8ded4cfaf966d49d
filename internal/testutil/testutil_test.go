package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestBuildBinaryCaches(t *testing.T) {
	first := BuildBinary(t, FaultAppPkg)
	if fi, err := os.Stat(first); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("binary %s: %v", first, err)
	}
	if again := BuildBinary(t, FaultAppPkg); again != first {
		t.Errorf("second build gave %s, want cached %s", again, first)
	}
}

func TestBuildBinaryFailureFailsTest(t *testing.T) {
	SkipInShort(t) // it runs go build
	ft := runFake(func(tb *fakeTB) { BuildBinary(tb, "github.com/gatehouse/gatehouse/no/such/pkg") })
	if !strings.Contains(ft.msg, "go build") {
		t.Errorf("failure message = %q", ft.msg)
	}
}

func TestFreePortIsBindable(t *testing.T) {
	port := FreePort(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d not bindable: %v", port, err)
	}
	ln.Close()
}

// fakeTB records a fatal failure instead of failing the real test.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runFake runs fn in its own goroutine, as Fatalf ends that goroutine.
func runFake(fn func(*fakeTB)) *fakeTB {
	ft := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ft)
	}()
	<-done
	return ft
}

func TestWaitFor(t *testing.T) {
	tests := []struct {
		name    string
		trueAt  int // the call number from which cond is true; 0 = never
		wantMsg string
	}{
		{"true at once", 1, ""},
		{"true after polls", 3, ""},
		{"never", 0, "timed out after 100ms waiting for the thing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			ft := runFake(func(tb *fakeTB) {
				WaitFor(tb, 100*time.Millisecond, "the thing", func() bool {
					calls++
					return tc.trueAt > 0 && calls >= tc.trueAt
				})
			})
			if ft.msg != tc.wantMsg {
				t.Errorf("failure = %q, want %q", ft.msg, tc.wantMsg)
			}
			if tc.trueAt > 0 && calls != tc.trueAt {
				t.Errorf("cond called %d times, want %d", calls, tc.trueAt)
			}
		})
	}
}

func TestProcessAlive(t *testing.T) {
	if !ProcessAlive(os.Getpid()) {
		t.Error("this process is not alive")
	}
	for _, pid := range []int{0, -1} {
		if ProcessAlive(pid) {
			t.Errorf("ProcessAlive(%d) = true", pid)
		}
	}

	cmd := exec.Command("sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Not yet waited for, the exited child is a zombie: kill -0 works on
	// it, but it must count as dead.
	WaitFor(t, 5*time.Second, "child to become a zombie", func() bool { return !ProcessAlive(pid) })
	cmd.Wait()
	if ProcessAlive(pid) {
		t.Error("reaped child is alive")
	}
}

func TestProcState(t *testing.T) {
	tests := []struct {
		stat string
		want byte
	}{
		{"42 (sleep) S 1 42 42", 'S'},
		{"42 (evil) Z name) Z 1 42", 'Z'},
		{"42 (a b) R 1", 'R'},
		{"garbage", 0},
		{"42 (x)", 0},
	}
	for _, tc := range tests {
		if got := procState([]byte(tc.stat)); got != tc.want {
			t.Errorf("procState(%q) = %q, want %q", tc.stat, got, tc.want)
		}
	}
}

// Every test process builds its binaries into a directory of its own,
// some 50 MB: they are removed as its tests end (RemoveBinaries), and a
// directory whose process is gone (killed, timed out) is removed when
// the next test process makes its own; a live process's stays.
func TestTestBinariesDoNotOutliveTheirProcess(t *testing.T) {
	t.Run("removed as the tests end", func(t *testing.T) {
		bin := BuildBinary(t, FaultAppPkg)
		RemoveBinaries()
		if _, err := os.Stat(filepath.Dir(bin)); !os.IsNotExist(err) {
			t.Errorf("the binaries' directory after RemoveBinaries: %v; want it gone", err)
		}
		again := BuildBinary(t, FaultAppPkg)
		if _, err := os.Stat(again); err != nil {
			t.Errorf("BuildBinary after RemoveBinaries: %v", err)
		}
	})
	t.Run("those of gone processes swept", func(t *testing.T) {
		dir := t.TempDir()
		gone := exec.Command("true")
		if err := gone.Run(); err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{ // name: whether it must stay
			fmt.Sprintf("%s%d-1", binDirPrefix, gone.Process.Pid): false,
			fmt.Sprintf("%s%d-2", binDirPrefix, os.Getpid()):      true,
			binDirPrefix + "not-a-pid":                            true,
			"something-else-1":                                    true,
		}
		for name := range names {
			if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		removeDeadBinDirs(dir)
		for name, stays := range names {
			_, err := os.Stat(filepath.Join(dir, name))
			if got := err == nil; got != stays {
				t.Errorf("%s: there after the sweep %t, want %t", name, got, stays)
			}
		}
	})
}
