package procdump

import (
	"bytes"
	"context"
	"errors"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// TestCoreLoadsInGDB takes the core of a node, a Python and a Go program
// and loads each in gdb beside its executable; the program runs on.
func TestCoreLoadsInGDB(t *testing.T) {
	requireTools(t, "gcore", "gdb")
	for _, tc := range []struct {
		name    string
		start   func(*testing.T) *app
		runtime Runtime
	}{
		{"node", func(t *testing.T) *app { return startNode(t, nodeIdle) }, RuntimeNode},
		{"python", func(t *testing.T) *app { return startPython(t, pythonSleeping) }, RuntimePython},
		{"go", startGo, RuntimeGo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.start(t)
			var gz bytes.Buffer
			res, err := Take(context.Background(), KindCore, a.pid(), &gz, Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatalf("Take: %v", err)
			}
			exe, err := os.Readlink(procPath(a.pid(), "exe"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != KindCore || res.Runtime != tc.runtime || res.Tool != "gcore" || res.Exe != exe || res.Format != "core.gz" || res.Paused <= 0 {
				t.Errorf("Take = %+v, want a gcore core.gz of the %s program %s with its pause", res, tc.runtime, exe)
			}
			if why := a.notRunning(); why != "" {
				t.Errorf("the program does not run after its core was taken: %s", why)
			}
			gzSize := gz.Len()
			core := gunzip(t, &gz)
			fi, _ := os.Stat(core)
			t.Logf("%s: paused %v, core %d MB, gzipped %d KB, build id %q", tc.name, res.Paused.Round(time.Millisecond), fi.Size()>>20, gzSize>>10, res.BuildID)
			out, err := exec.Command("gdb", "-batch", "-nx", "-ex", "bt", res.Exe, core).CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("#0")) || bytes.Contains(out, []byte("not a core dump")) || bytes.Contains(out, []byte("is not in executable format")) {
				t.Errorf("gdb -batch -ex bt %s %s: %v\n%s", res.Exe, core, err, out)
			}
		})
	}
}

// gunzip writes the decompressed core into a test directory.
func gunzip(t *testing.T, r io.Reader) string {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("the core is not gzip: %v", err)
	}
	p := filepath.Join(t.TempDir(), "core")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, zr); err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return p
}

// TestCoreNamesTheGNUBuildID reads the build id readelf reads.
func TestCoreNamesTheGNUBuildID(t *testing.T) {
	requireTools(t, "readelf", systemPython)
	exe, err := filepath.EvalSymlinks(systemPython)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("readelf", "-n", exe).Output()
	if err != nil {
		t.Fatalf("readelf -n %s: %v", exe, err)
	}
	m := regexp.MustCompile(`Build ID: ([0-9a-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Skipf("%s has no GNU build id", exe)
	}
	if got := gnuBuildID(exe); got != string(m[1]) {
		t.Errorf("gnuBuildID(%s) = %q, readelf says %q", exe, got, m[1])
	}
}

// TestExitDuringCoreIsReported kills the program while gcore is attached
// to it: Take reports ErrExited at once, not after gcore's timeout.
func TestExitDuringCoreIsReported(t *testing.T) {
	requireTools(t, "gcore")
	// A gigabyte of touched pages keeps gcore busy for seconds.
	a := startPython(t, "b = bytearray(1 << 30)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('ready', flush=True)\nimport time\ntime.sleep(600)\n")
	done := make(chan outcome, 1)
	go func() {
		_, err := Take(context.Background(), KindCore, a.pid(), io.Discard, Options{TempDir: t.TempDir()})
		done <- outcome{err, time.Now()}
	}()
	waitTraced(t, a.pid(), done)
	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if !errors.Is(got.err, ErrExited) {
			t.Errorf("Take = %v, want ErrExited", got.err)
		}
		if d := got.at.Sub(killed); d > 5*time.Second {
			t.Errorf("ErrExited came %v after the exit", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Take did not return within 30s of the exit")
	}
}

// outcome is how a Take run aside ended, and when.
type outcome struct {
	err error
	at  time.Time
}

// waitTraced polls until a tracer (gcore's gdb) is attached to pid.
func waitTraced(t *testing.T, pid int, done <-chan outcome) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(procPath(pid, "status"))
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`(?m)^TracerPid:\s+(\d+)$`).FindSubmatch(b); m != nil && string(m[1]) != "0" {
			return
		}
		select {
		case got := <-done:
			t.Fatalf("Take returned before gcore attached: %v", got.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("gcore did not attach within 30s")
}

// hasLine reports whether text holds a line containing every one of subs.
func hasLine(text string, subs ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}

// A core that would not fit beside the store (gcore writes it whole
// first) is refused before gcore runs, saying how much it needs.
func TestCoreRefusedWithoutRoomForIt(t *testing.T) {
	requireTools(t, "gcore")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("a 1 MiB tmpfs for the test: %v (needs root)", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	a := startSleep(t)
	_, err := Take(context.Background(), KindCore, a.pid(), io.Discard, Options{TempDir: dir})
	var ns *NoSpaceError
	if !errors.As(err, &ns) || ns.Need == 0 || ns.Free > 1<<20 {
		t.Fatalf("Take in a 1 MiB filesystem: %v, want a NoSpaceError", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v in the filesystem", ents)
	}
	if why := a.notRunning(); why != "" {
		t.Errorf("the process does not run after the refusal: %s", why)
	}
}
