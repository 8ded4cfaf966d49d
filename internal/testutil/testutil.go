// Package testutil holds helpers the gatehouse test suites share: building
// helper binaries (such as the fault-injection app in ./faultapp), finding
// free ports, polling for conditions and checking whether a process lives.
package testutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FaultAppPkg is the import path of the fault-injection app, for BuildBinary.
const FaultAppPkg = "github.com/gatehouse/gatehouse/internal/testutil/faultapp"

// build is one package's binary, built at most once per test process.
type build struct {
	once sync.Once
	bin  string
	out  []byte
	err  error
}

var (
	buildMu  sync.Mutex
	builds   = map[string]*build{}
	binDir   string
	binDirEr error
)

// BuildBinary builds pkg (an import path) once per test process and returns
// the binary's path. The binary lives in a temp dir shared by every test of
// the process: t.TempDir would be removed after the first test. A failed
// build fails every caller with the compiler's output.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	SkipInShort(t)
	buildMu.Lock()
	b, ok := builds[pkg]
	if !ok {
		b = &build{}
		builds[pkg] = b
	}
	buildMu.Unlock()
	b.once.Do(func() { b.bin, b.out, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.bin
}

// SkipInShort skips a test that runs real processes when -short is set:
// the short tier is the in-process tests only, the full suite runs the rest.
func SkipInShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real processes; the full suite (without -short) runs it")
	}
}

// goBuild runs `go build -o DIR/NAME pkg`. `go test` puts its own GOROOT/bin
// first on PATH, so "go" is the toolchain running the tests.
func goBuild(pkg string) (bin string, out []byte, err error) {
	dir, err := sharedBinDir()
	if err != nil {
		return "", nil, err
	}
	name := strings.NewReplacer(".", "_", "/", "_").Replace(pkg)
	bin = filepath.Join(dir, name)
	out, err = exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	return bin, out, err
}

// sharedBinDir makes the per-process binary directory on first use, its
// name holding the process's pid, and removes those of test processes
// that are gone (killed, or timed out, before RemoveBinaries ran).
func sharedBinDir() (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir == "" && binDirEr == nil {
		removeDeadBinDirs(os.TempDir())
		binDir, binDirEr = os.MkdirTemp("", fmt.Sprintf("%s%d-", binDirPrefix, os.Getpid()))
	}
	return binDir, binDirEr
}

// binDirPrefix begins the name of every test process's binary directory:
// each holds a gatehouse binary (some 50 MB), so one left by every test
// run would fill the disk.
const binDirPrefix = "gatehouse-testbin-"

// RemoveBinaries removes the binaries BuildBinary built in this process.
// A package whose tests build them calls it as its tests end (see
// ExitRemovingBinaries); a later BuildBinary builds them again.
func RemoveBinaries() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	binDir, binDirEr = "", nil
	clear(builds)
}

// ExitRemovingBinaries is goleak.Cleanup's function for a TestMain whose
// tests build binaries: it removes them, then exits with code.
func ExitRemovingBinaries(code int) {
	RemoveBinaries()
	os.Exit(code)
}

// removeDeadBinDirs removes the binary directories in dir of test
// processes that no longer run.
func removeDeadBinDirs(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), binDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || ProcessAlive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// FreePort returns a loopback TCP port that was free a moment ago. Another
// process may take it before the caller binds it, so use it promptly.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortOn(t, "127.0.0.1")
}

// FreePortOn returns a TCP port that was free a moment ago on every one of
// ips. It is chosen below the kernel's ephemeral range, so that the
// outgoing connections of tests running meanwhile (whose local ports come
// from that range, thousands a second under load) cannot take it before
// the caller binds it; only another test choosing the same port at
// random can.
func FreePortOn(t testing.TB, ips ...string) int {
	t.Helper()
	const lowest = 10000
	highest := ephemeralLow() - 1
	for range 200 {
		port := lowest + rand.IntN(highest-lowest+1)
		if bindable(port, ips) {
			return port
		}
	}
	t.Fatalf("FreePortOn: no port free on %v below %d", ips, highest+1)
	return 0
}

// bindable reports whether port can be listened on at every one of ips.
func bindable(port int, ips []string) bool {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		held = append(held, l)
	}
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range
// (Linux's default 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 10001 {
				return n
			}
		}
	}
	return 32768
}

// WaitFor polls cond until it is true, and fails the test naming what it
// waited for if timeout passes first. Like t.Fatal, call it only from the
// test's own goroutine.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !pollUntil(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// ProcessAlive reports whether pid is a running process. A zombie (exited
// but not yet reaped by its parent) counts as dead: kill -0 still succeeds
// on it, so /proc/PID/stat's state is checked too.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// Without /proc (not Linux) kill -0 is all there is; on Linux the
		// process vanished between the two checks.
		_, statErr := os.Stat("/proc/self/stat")
		return statErr != nil
	}
	return procState(stat) != 'Z'
}

// procState is the state letter of a /proc/PID/stat line. The command name
// in parentheses may itself hold spaces or ')', so parse after the last ')'.
func procState(stat []byte) byte {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// ClosedAddr returns a loopback address nothing listens on: a port that
// was free a moment ago, for connection-refused cases.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// VmRSS reads a process's resident memory from /proc/PID/status, the
// number a user would compare gatehouse's figures with.
func VmRSS(t testing.TB, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
